"""Inference latency of biformer models against stock YOLO11, as ratios measured in one run.

Every model is fused (BatchNorm folded, as Ultralytics does for inference) and run in eval mode with batch 1 in
PyTorch on this machine's CPU. Models are timed in interleaved rounds, so a slow spell of a noisy machine hits all of
them alike, and each is reported as its median against the first model's. The timing is
:mod:`ultralytics_biformer.bench.latency`'s, the same as ``ultralytics-biformer compare``'s PyTorch latency.

Usage:
    python scripts/benchmark_latency.py [--imgsz 640] [--rounds 15] [--models yolo11n.yaml,yolo11n-biformer.yaml,...]
"""

from __future__ import annotations

import argparse

import torch
from ultralytics.nn.tasks import DetectionModel

import ultralytics_biformer  # noqa: F401  (registers the configs also where auto-activation is off)
from ultralytics_biformer.bench.latency import check_timing, torch_latency_ms

DEFAULT_MODELS = "yolo11n.yaml,yolo11n-biformer.yaml,yolo11n-biformer-backbone.yaml,yolo11n-biformer-neck.yaml,yolo12n.yaml"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model YAMLs; the first is the baseline")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    try:
        check_timing(args.warmup, args.rounds)
    except ValueError as e:  # before any model is built
        parser.error(str(e))

    names = args.models.split(",")
    models = {n: DetectionModel(n, verbose=False) for n in names}
    ms = torch_latency_ms(models, args.imgsz, args.warmup, args.rounds)

    base = ms[names[0]]
    print(f"CPU latency, batch 1, imgsz {args.imgsz}, fused, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"median of {args.rounds} interleaved rounds\n")
    print(f"| model | ms | vs {names[0]} |\n|---|---:|---:|")
    for n in names:
        print(f"| {n} | {ms[n]:.1f} | {ms[n] / base:.2f}x |")


if __name__ == "__main__":
    main()

"""Inference latency of biformer models against stock YOLO11, as ratios measured in one run.

Every model is fused (BatchNorm folded, as Ultralytics does for inference) and run in eval mode with batch 1 in
PyTorch on this machine's CPU. Models are timed in interleaved rounds, so a slow spell of a noisy machine hits all of
them alike, and each is reported as its median against the first model's.

Usage:
    python scripts/benchmark_latency.py [--imgsz 640] [--rounds 15] [--models yolo11n.yaml,yolo11n-biformer.yaml,...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from ultralytics.nn.tasks import DetectionModel

import ultralytics_biformer  # noqa: F401  (registers the configs also where auto-activation is off)

DEFAULT_MODELS = "yolo11n.yaml,yolo11n-biformer.yaml,yolo11n-biformer-backbone.yaml,yolo11n-biformer-neck.yaml,yolo12n.yaml"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model YAMLs; the first is the baseline")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    names = args.models.split(",")
    models = {n: DetectionModel(n, verbose=False).eval().fuse(verbose=False) for n in names}
    x = torch.rand(1, 3, args.imgsz, args.imgsz)
    times = {n: [] for n in names}
    with torch.inference_mode():
        for n in names:
            for _ in range(args.warmup):
                models[n](x)
        for _ in range(args.rounds):
            for n in names:
                start = time.perf_counter()
                models[n](x)
                times[n].append(time.perf_counter() - start)

    base = statistics.median(times[names[0]])
    print(f"CPU latency, batch 1, imgsz {args.imgsz}, fused, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"median of {args.rounds} interleaved rounds\n")
    print(f"| model | ms | vs {names[0]} |\n|---|---:|---:|")
    for n in names:
        med = statistics.median(times[n])
        print(f"| {n} | {1e3 * med:.1f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()

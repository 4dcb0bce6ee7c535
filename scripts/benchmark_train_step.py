"""Training-step time of biformer models against stock YOLO11, as ratios measured in one run.

A step is what Ultralytics' trainer does per batch: forward in train mode, its detection loss, backward and an SGD
step, on a batch of random images with random boxes (the content does not change the arithmetic). Models are timed
in interleaved rounds (:func:`ultralytics_biformer.bench.latency.median_ms`), each reported as its median against the first
model's. On CUDA every step synchronises, and ``--amp`` runs the forward and loss under bf16 autocast.

Usage:
    python scripts/benchmark_train_step.py [--device cpu|cuda] [--imgsz 320] [--batch 16] [--rounds 10]
"""

from __future__ import annotations

import argparse

import torch
from ultralytics.nn.tasks import DetectionModel

import ultralytics_biformer  # noqa: F401  (registers the configs also where auto-activation is off)
from ultralytics_biformer.bench.latency import check_timing, median_ms

DEFAULT_MODELS = "yolo11n.yaml,yolo11n-biformer.yaml"


def random_batch(batch: int, imgsz: int, device: torch.device, boxes_per_image: int = 8, nc: int = 80) -> dict:
    """Ultralytics' training batch layout: images in [0, 1], and per box its image index, class and xywh (0-1)."""
    generator = torch.Generator().manual_seed(0)
    n = batch * boxes_per_image
    xy = torch.rand(n, 2, generator=generator) * 0.8 + 0.1
    wh = torch.rand(n, 2, generator=generator) * 0.15 + 0.02
    return {
        "img": torch.rand(batch, 3, imgsz, imgsz, generator=generator).to(device),
        "batch_idx": torch.arange(batch).repeat_interleave(boxes_per_image).float().to(device),
        "cls": torch.randint(0, nc, (n, 1), generator=generator).float().to(device),
        "bboxes": torch.cat([xy, wh], 1).to(device),
    }


def train_step(model: DetectionModel, batch: dict, amp: bool):
    """One training step of ``model`` on ``batch``: a callable for :func:`median_ms`."""
    from ultralytics.cfg import get_cfg

    model.args = get_cfg()  # the loss reads its box/cls/dfl gains here, as the trainer sets them
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    device = batch["img"].device

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss, _ = model.loss(batch)
        loss.sum().backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model YAMLs; the first is the baseline")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast for the forward and the loss")
    args = parser.parse_args(argv)
    try:
        check_timing(args.warmup, args.rounds)
    except ValueError as e:
        parser.error(str(e))
    if args.imgsz % 32 or args.imgsz < 32:
        parser.error(f"--imgsz must be a positive multiple of 32, got {args.imgsz}")
    device = torch.device(args.device)
    names = args.models.split(",")
    batch = random_batch(args.batch, args.imgsz, device)
    steps = {n: train_step(DetectionModel(n, verbose=False).to(device), batch, args.amp) for n in names}
    ms = median_ms(steps, args.warmup, args.rounds)
    base = ms[names[0]]
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(
        f"Training step (forward, loss, backward, SGD), {device}{threads}, batch {args.batch}, imgsz {args.imgsz}, "
        f"{'bf16 autocast' if args.amp else 'fp32'}, torch {torch.__version__}, median of {args.rounds} interleaved "
        "rounds\n"
    )
    print(f"| model | ms | vs {names[0]} |\n|---|---:|---:|")
    for n in names:
        print(f"| {n} | {ms[n]:.1f} | {ms[n] / base:.2f}x |")
    return ms


if __name__ == "__main__":
    main()

"""What the biformer configs cost and keep: parameters and GFLOPs against their stock twins, and weight transfer.

Prints two Markdown tables:

1. every scale of yolo11-biformer and yolo26-biformer against stock: parameters, GFLOPs at 640 (Ultralytics' own count,
   which includes the attention products), and the relative overhead;
2. every shipped config against its stock twin at scale n: Ultralytics' ``Transferred X/Y items`` when the stock
   model's weights are loaded into it, and whether every stock tensor found a home.

The tables go to stdout; a progress line per model goes to stderr (the whole run takes minutes on a CPU).

Usage:
    python scripts/model_overhead.py [--imgsz 640] [--scales nsmlx]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import torch
from ultralytics.nn.tasks import ClassificationModel, DetectionModel, OBBModel, PoseModel, SegmentationModel
from ultralytics.utils import LOGGER
from ultralytics.utils.torch_utils import get_flops

import ultralytics_biformer

MODEL_CLASSES = {"": DetectionModel, "-seg": SegmentationModel, "-pose": PoseModel, "-obb": OBBModel, "-cls": ClassificationModel}


def progress(i: int, total: int, what: str, start: float) -> None:
    """One line on stderr as item ``i`` of ``total`` starts, so a run of minutes shows where it is."""
    print(f"[{i}/{total}] {what} (elapsed {time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)


def stock_twin(config: str) -> str:
    """``yolo11n-biformer-seg.yaml`` -> ``yolo11n-seg.yaml``; ablations map to the plain detector."""
    name = config.replace("-biformer", "")
    return name.replace("-backbone", "").replace("-neck", "")


def build(config: str):
    task = next((t for t in MODEL_CLASSES if t and config.endswith(f"{t}.yaml")), "")
    torch.manual_seed(0)
    return MODEL_CLASSES[task](config, verbose=False)


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def overhead_table(scales: str, imgsz: int) -> str:
    rows = ["| model | params | stock params | params + | GFLOPs | stock GFLOPs | GFLOPs + |", "|---|---:|---:|---:|---:|---:|---:|"]
    names = [f"{family}{scale}" for family in ("yolo11", "yolo26") for scale in scales]
    start = time.perf_counter()
    for i, name in enumerate(names, 1):
        progress(i, len(names), f"{name}-biformer.yaml against {name}.yaml: parameters and GFLOPs at {imgsz}", start)
        ours, stock = build(f"{name}-biformer.yaml"), build(f"{name}.yaml")
        p, ps = params(ours), params(stock)
        g, gs = get_flops(ours, imgsz), get_flops(stock, imgsz)
        rows.append(
            f"| {name}-biformer | {p / 1e6:.2f}M | {ps / 1e6:.2f}M | {100 * (p / ps - 1):+.1f}% "
            f"| {g:.1f} | {gs:.1f} | {100 * (g / gs - 1):+.1f}% |"
        )
    return "\n".join(rows)


class _TransferLine(logging.Handler):
    def __init__(self):
        super().__init__()
        self.line = None

    def emit(self, record):
        if record.getMessage().startswith("Transferred"):
            self.line = record.getMessage()


def transfer_table(configs: list[str] | None = None) -> str:
    """The weight-transfer table for ``configs`` (scale-n names of shipped configs; default: every one)."""
    if configs is None:
        configs = [p.name.replace("-biformer", "n-biformer", 1) for p in sorted(ultralytics_biformer.config_dir().glob("*.yaml"))]
    rows = ["| config (scale n) | stock twin | Ultralytics reports | stock tensors transferred |", "|---|---|---|---:|"]
    capture = _TransferLine()
    LOGGER.addHandler(capture)
    start = time.perf_counter()
    try:
        for i, config in enumerate(configs, 1):
            progress(i, len(configs), f"{config}: loading {stock_twin(config)} weights into it", start)
            ours, stock = build(config), build(stock_twin(config))
            ours.load(stock, verbose=True)
            transferred = int(capture.line.split()[1].split("/")[0])
            n_stock = len(stock.state_dict())
            rows.append(f"| {config} | {stock_twin(config)} | `{capture.line}` | {transferred}/{n_stock} ({100 * transferred / n_stock:.0f}%) |")
    finally:
        LOGGER.removeHandler(capture)
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--scales", default="nsmlx")
    args = parser.parse_args()
    overhead = overhead_table(args.scales, args.imgsz)
    transfer = transfer_table()
    print(f"\n## Overhead at imgsz={args.imgsz}\n\n{overhead}\n\n## Transfer of stock weights\n\n{transfer}")


if __name__ == "__main__":
    main()

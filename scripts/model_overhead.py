"""What the biformer configs cost and keep: parameters and GFLOPs against their stock twins, and weight transfer.

Prints two Markdown tables:

1. every scale of yolo11-biformer and yolo26-biformer against stock: parameters, GFLOPs at 640 (Ultralytics' own count,
   which includes the attention products), and the relative overhead;
2. every shipped config against its stock twin at scale n: Ultralytics' ``Transferred X/Y items`` when the stock
   model's weights are loaded into it, and whether every stock tensor found a home.

Usage:
    python scripts/model_overhead.py [--imgsz 640] [--scales nsmlx]
"""

from __future__ import annotations

import argparse
import logging

import torch
from ultralytics.nn.tasks import ClassificationModel, DetectionModel, OBBModel, PoseModel, SegmentationModel
from ultralytics.utils import LOGGER
from ultralytics.utils.torch_utils import get_flops

import ultralytics_biformer

MODEL_CLASSES = {"": DetectionModel, "-seg": SegmentationModel, "-pose": PoseModel, "-obb": OBBModel, "-cls": ClassificationModel}


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
    for family in ("yolo11", "yolo26"):
        for scale in scales:
            ours, stock = build(f"{family}{scale}-biformer.yaml"), build(f"{family}{scale}.yaml")
            p, ps = params(ours), params(stock)
            g, gs = get_flops(ours, imgsz), get_flops(stock, imgsz)
            rows.append(
                f"| {family}{scale}-biformer | {p / 1e6:.2f}M | {ps / 1e6:.2f}M | {100 * (p / ps - 1):+.1f}% "
                f"| {g:.1f} | {gs:.1f} | {100 * (g / gs - 1):+.1f}% |"
            )
            print(rows[-1], flush=True)
    return "\n".join(rows)


class _TransferLine(logging.Handler):
    def __init__(self):
        super().__init__()
        self.line = None

    def emit(self, record):
        if record.getMessage().startswith("Transferred"):
            self.line = record.getMessage()


def transfer_table() -> str:
    configs = [p.name.replace("-biformer", "n-biformer", 1) for p in sorted(ultralytics_biformer.config_dir().glob("*.yaml"))]
    rows = ["| config (scale n) | stock twin | Ultralytics reports | stock tensors transferred |", "|---|---|---|---:|"]
    capture = _TransferLine()
    LOGGER.addHandler(capture)
    try:
        for config in configs:
            ours, stock = build(config), build(stock_twin(config))
            ours.load(stock, verbose=True)
            transferred = int(capture.line.split()[1].split("/")[0])
            n_stock = len(stock.state_dict())
            rows.append(f"| {config} | {stock_twin(config)} | `{capture.line}` | {transferred}/{n_stock} ({100 * transferred / n_stock:.0f}%) |")
            print(rows[-1], flush=True)
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

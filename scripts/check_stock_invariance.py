"""Check that every model YAML shipped with the installed Ultralytics builds identically with and without our hook.

For each stock YAML (default scale), the model is built twice from the same seed, once with the hook registered and
once after ``unregister()``, and both the parameter count and the output on a fixed input must match exactly. Exits
non-zero listing any model that differs. (The test suite runs a sample of these; this checks them all.)

Usage:
    python scripts/check_stock_invariance.py
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch
import ultralytics
from ultralytics.nn import tasks

import ultralytics_biformer


def build(cfg):
    torch.manual_seed(0)
    task = tasks.guess_model_task(cfg)
    model_cls = {
        "detect": tasks.DetectionModel,
        "segment": tasks.SegmentationModel,
        "pose": tasks.PoseModel,
        "obb": tasks.OBBModel,
        "classify": tasks.ClassificationModel,
    }.get(task, tasks.DetectionModel)
    model = model_cls(copy.deepcopy(cfg), verbose=False).eval()
    size = 64 if task == "classify" else 128
    with torch.no_grad():
        out = model(torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)))
    while isinstance(out, (tuple, list, dict)):  # the first tensor of whatever the head returns
        out = next(iter(out.values())) if isinstance(out, dict) else out[0]
    return sum(p.numel() for p in model.parameters()), out


def main():
    root = Path(ultralytics.__file__).parent / "cfg" / "models"
    failures, checked = [], 0
    for path in sorted(root.rglob("*.yaml")):
        cfg = tasks.yaml_model_load(path)
        ultralytics_biformer.unregister()
        try:
            plain = build(cfg)
        except Exception as e:  # some stock YAMLs need extras (text encoders, ...) to build at all
            print(f"skip  {path.relative_to(root)}: does not build without the hook either ({type(e).__name__})")
            continue
        finally:
            ultralytics_biformer.register()
        checked += 1
        try:
            hooked = build(cfg)
            same = hooked[0] == plain[0] and torch.equal(hooked[1], plain[1])
        except Exception as e:
            hooked, same = (f"{type(e).__name__}: {e}",), False
        print(f"{'ok   ' if same else 'DIFF '} {path.relative_to(root)}  params={hooked[0]}")
        if not same:
            failures.append(str(path))
    print(f"\n{checked} stock models checked, {len(failures)} differ")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

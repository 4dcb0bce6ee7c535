"""``ultralytics-biformer dataset``: generate (once) the bundled benchmark dataset and print its data YAML's path.

Only the path goes to stdout, so ``yolo train data=$(ultralytics-biformer dataset) ...`` works; progress goes to stderr.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from ..data.synthetic import CACHE_ENV, CLASS_NAMES, DatasetSpec, ensure_dataset
from .args import Option, choice, non_negative_int, parse_options, positive_int

__all__ = ["OPTIONS", "run", "usage"]

PRESET_SPECS = {"full": DatasetSpec(), "quick": DatasetSpec(train=160, val=40, imgsz=256)}

OPTIONS = [
    Option("preset", choice(*PRESET_SPECS), "full", "the dataset of compare's preset: full or quick"),
    Option("seed", non_negative_int, None, "generator seed (default 0)"),
    Option("train", positive_int, None, "train images (preset)"),
    Option("val", positive_int, None, "val images (preset)"),
    Option("imgsz", positive_int, None, "image width and height in pixels (preset)"),
]


def usage() -> str:
    """The help text of ``dataset``."""
    keys = "\n".join(f"  {o.key:<7}  {o.help}" for o in OPTIONS)
    presets = "\n".join(
        f"  {name:<7}  {s.train} train + {s.val} val images, {s.imgsz}px, seed {s.seed}"
        for name, s in PRESET_SPECS.items()
    )
    return (
        "usage: ultralytics-biformer dataset [key=value ...]\n\n"
        "Generate the context-tokens detection benchmark (if not cached yet) and print the path of its data YAML.\n"
        f"Classes: {', '.join(CLASS_NAMES)}. Small identical tokens are classed by the zone they sit in, which only\n"
        "context shows; rings give medium and large objects; unlabelled clutter surrounds them. Cached under\n"
        f"${CACHE_ENV} or ~/.cache/ultralytics-biformer.\n\n"
        f"keys:\n{keys}\n\npresets:\n{presets}\n\nexample: yolo train data=$(ultralytics-biformer dataset) model=yolo11n.yaml\n"
    )


def run(tokens: list[str]) -> int:
    """Run ``dataset`` with its ``key=value`` arguments; return the exit code."""
    values = parse_options(tokens, OPTIONS, "dataset")
    spec = PRESET_SPECS[values.pop("preset")]
    try:
        spec = replace(spec, **{k: v for k, v in values.items() if v is not None})
    except ValueError as e:
        from .args import ArgumentError

        raise ArgumentError(str(e)) from None
    print(ensure_dataset(spec))
    sys.stdout.flush()
    return 0

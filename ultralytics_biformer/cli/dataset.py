"""``ultralytics-biformer dataset``: generate (once) a bundled benchmark dataset and print its ``data=`` path.

Only the path goes to stdout, so ``yolo train data=$(ultralytics-biformer dataset) ...`` works; which dataset was
chosen, and whether it was generated or reused, goes to stderr.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from ..data.presets import PRESET_SPECS
from ..data.synthetic import CACHE_ENV, CLASS_NAMES, STYLES, TASKS, VERSIONS, cached_dataset, ensure_dataset
from .args import ArgumentError, ExitCode, Option, choice, non_negative_int, parse_options, positive_int, usage_text

__all__ = ["OPTIONS", "run", "usage"]

DEFAULT_PRESET = "quick"  # compare's default too, so that both commands give the same dataset unless told
CONTEXT_PRESET = "context"  # the default preset of style=context
SIZE_KEYS = ("seed", "train", "val", "imgsz", "version", "distance")

OPTIONS = [
    Option(
        "preset",
        choice(*PRESET_SPECS),
        None,
        f"sizes: {', '.join(PRESET_SPECS)} (default {DEFAULT_PRESET}, as compare's; {CONTEXT_PRESET} with style=context)",
    ),
    Option("task", choice(*TASKS), "detect", f"labels for this YOLO task: {', '.join(TASKS)}"),
    Option(
        "style",
        choice(*STYLES),
        None,
        "tokens (the benchmark; default), pretrain (another domain) or context (the context-range benchmark, detect "
        "only)",
    ),
    Option("distance", non_negative_int, None, "style=context: pixels from a token to the nearest evidence (preset)"),
    Option("seed", non_negative_int, None, "generator seed (preset)"),
    Option("train", positive_int, None, "train images (preset)"),
    Option("val", positive_int, None, "val images (preset)"),
    Option("imgsz", positive_int, None, "image width and height in pixels (preset)"),
    Option("version", lambda raw: int(choice(*map(str, VERSIONS))(raw)), None, "drawing version (preset)"),
]


def usage() -> str:
    """The help text of ``dataset``."""
    presets = [
        (
            name,
            f"{s.train} train + {s.val} val images, {s.imgsz}px, seed {s.seed}, "
            + (f"style context, distance {s.distance}" if s.style == "context" else f"drawing v{s.version}"),
        )
        for name, s in PRESET_SPECS.items()
    ]
    return usage_text(
        "dataset",
        "[key=value ...]",
        "Generate a context-tokens benchmark dataset (if not cached yet) and print the path to pass as data=: the\n"
        "data YAML, or for task=classify the dataset folder.\n"
        f"Classes: {', '.join(CLASS_NAMES)}. Small identical tokens are classed by the zone they sit in, which only\n"
        "context shows; rings give medium and large objects; unlabelled clutter surrounds them. task=classify labels\n"
        "each image by the zone under its one marked token. style=pretrain draws the same classes in another look,\n"
        "to pre-train on before fine-tuning. Drawing version 2 labels what it draws; version 1, which the ablation\n"
        "study (preset=study) was measured on, draws rings up to 2 px off their labels.\n"
        "style=context (default preset context) is the context-range benchmark: tokens classed token-in-stripes or\n"
        "token-in-plain by the background of their scene, which starts distance= pixels from every token centre.\n"
        f"Cached under ${CACHE_ENV} or ~/.cache/ultralytics-biformer.",
        OPTIONS,
        [
            "yolo train data=$(ultralytics-biformer dataset preset=quick) model=yolo11n.yaml",
            "yolo train data=$(ultralytics-biformer dataset preset=quick task=pose) model=yolo11n-pose.yaml",
            "yolo train data=$(ultralytics-biformer dataset style=context distance=48) model=yolo11n-biformer.yaml",
        ],
        {"presets": presets},
    )


def run(tokens: list[str]) -> int:
    """Run ``dataset`` with its ``key=value`` arguments; return the exit code."""
    values = parse_options(tokens, OPTIONS, "dataset")
    preset = values.pop("preset")
    given = {key: value for key, value in values.items() if value is not None}
    default = CONTEXT_PRESET if given.get("style") == "context" else DEFAULT_PRESET
    try:
        spec = replace(PRESET_SPECS[preset or default], **given)
    except ValueError as e:
        raise ArgumentError(str(e)) from None
    if preset:
        origin = f"preset {preset}"
    elif default == CONTEXT_PRESET:
        origin = f"preset {CONTEXT_PRESET} (the default of style=context)"
    else:
        origin = f"preset {DEFAULT_PRESET} (the default, as compare's; preset=full is the large one)"
    if changed := [f"{key}={given[key]}" for key in SIZE_KEYS if key in given]:
        origin += f" with {' '.join(changed)}"
    state = "reusing the cached copy" if cached_dataset(spec) is not None else "generating it (once)"
    print(f"ultralytics-biformer dataset: {spec.describe()}; {origin}; {state}", file=sys.stderr)
    print(ensure_dataset(spec))
    sys.stdout.flush()
    return ExitCode.OK

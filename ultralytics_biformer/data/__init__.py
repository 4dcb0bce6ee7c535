"""Datasets: the generated context-tokens benchmark, for every YOLO task, and its named presets."""

from .presets import PRESET_SPECS, preset_spec
from .synthetic import (
    CLASS_NAMES,
    CLASSIFY_NAMES,
    STYLES,
    TASKS,
    DatasetSpec,
    cache_dir,
    cached_dataset,
    ensure_dataset,
    generate_dataset,
    render_image,
)

__all__ = [
    "CLASS_NAMES",
    "CLASSIFY_NAMES",
    "PRESET_SPECS",
    "STYLES",
    "TASKS",
    "DatasetSpec",
    "cache_dir",
    "cached_dataset",
    "ensure_dataset",
    "generate_dataset",
    "preset_spec",
    "render_image",
]

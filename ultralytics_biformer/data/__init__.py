"""Datasets: the generated context-tokens detection benchmark."""

from .synthetic import CLASS_NAMES, DatasetSpec, cache_dir, ensure_dataset, generate_dataset, render_image

__all__ = ["CLASS_NAMES", "DatasetSpec", "cache_dir", "ensure_dataset", "generate_dataset", "render_image"]

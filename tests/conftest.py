"""Shared fixtures: a tiny generated YOLO dataset, so no test reaches for the network."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

# Ultralytics must never try the network from tests: no font, weight or dataset downloads, no update checks.
os.environ.setdefault("YOLO_OFFLINE", "1")


def write_tiny_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: int = 64, seed: int = 0) -> Path:
    """Write a 2-class YOLO detection dataset of coloured boxes on noise and return its data YAML path."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            labels = []
            for _ in range(rng.integers(1, 4)):
                cls = int(rng.integers(0, 2))
                w, h = rng.integers(size // 8, size // 3, 2)
                x, y = rng.integers(0, size - w), rng.integers(0, size - h)
                cv2.rectangle(image, (int(x), int(y)), (int(x + w), int(y + h)), (255, 60, 60) if cls else (60, 255, 60), -1)
                labels.append(f"{cls} {(x + w / 2) / size:.6f} {(y + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}")
            cv2.imwrite(str(root / "images" / split / f"{i}.png"), image)
            (root / "labels" / split / f"{i}.txt").write_text("\n".join(labels) + "\n")
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: green\n  1: red\n")
    return data


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Path of the data YAML of a tiny generated detection dataset (8 train, 4 val images of 64x64)."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny_dataset"))

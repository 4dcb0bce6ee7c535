"""Shared fixtures: tiny generated YOLO datasets (no test reaches for the network) and the hook left registered.

Plain helpers shared by several test modules are in helpers.py. Test modules mirror the package: see docs/design.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import TASKS, write_tiny_dataset

from ultralytics_biformer import config_dir
from ultralytics_biformer.data import synthetic
from ultralytics_biformer.data.synthetic import DatasetSpec, ensure_dataset, render_image

# Ultralytics must never try the network from tests: no font, weight or dataset downloads, no update checks.
os.environ.setdefault("YOLO_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Path of the data YAML of a tiny generated detection dataset (8 train, 4 val images of 64x64)."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny_dataset"))


@pytest.fixture
def registered():
    """Leave the hook registered after the test, whatever the test did to it."""
    yield
    import ultralytics_biformer

    ultralytics_biformer.register()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A tiny generated dataset per task (8 train and 4 val images of 64 px), in a cache of this module's own."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(synthetic.CACHE_ENV, str(cache))
        yield {
            task: ensure_dataset(DatasetSpec(seed=3, train=8, val=4, imgsz=64, task=task), log=lambda message: None)
            for task in TASKS
        }


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own empty dataset cache."""
    monkeypatch.setenv(synthetic.CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    """A random-noise image, 100x40 (wide), as a PNG file."""
    path = tmp_path_factory.mktemp("image") / "scene.png"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (40, 100, 3), dtype=np.uint8))
    return path


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory):
    """Model files routes must refuse, by name."""
    root = tmp_path_factory.mktemp("models")
    import torch
    from ultralytics import YOLO

    (root / "syntax.yaml").write_text("nc: 80\nbackbone: [[-1, 1, Conv, [64, 3, 2]]\n")
    biformer = (config_dir() / "yolo11-biformer.yaml").read_text()
    assert "[1024, 2, 2]] # 10" in biformer
    (root / "yolo11n-zero-windows.yaml").write_text(biformer.replace("[1024, 2, 2]] # 10", "[1024, 0, 2]] # 10"))
    (root / "corrupt.pt").write_bytes(b"not a checkpoint" * 8)
    torch.save({"weights": torch.zeros(3)}, root / "foreign.pt")
    YOLO("yolo11n.yaml").save(root / "stock.pt")
    cv2.imwrite(str(root / "picture.png"), np.zeros((32, 32, 3), np.uint8))
    return root


@pytest.fixture(scope="module")
def scene_image(tmp_path_factory):
    """A rendered benchmark scene, 200x160 (not square), as a JPEG file."""
    import cv2

    path = tmp_path_factory.mktemp("image") / "scene.jpg"
    image, _ = render_image(np.random.default_rng(7), 160)
    cv2.imwrite(str(path), cv2.resize(image, (200, 160)))  # not square: exercises the letterbox
    return path

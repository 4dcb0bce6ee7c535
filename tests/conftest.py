"""Shared fixtures: tiny generated YOLO datasets (no test reaches for the network) and the hook left registered.

Plain helpers shared by several test modules are in helpers.py. Test modules mirror the package: see docs/design.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import write_tiny_dataset

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

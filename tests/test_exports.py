"""Every name a module lists in ``__all__`` exists, so ``from module import *`` and documented imports work."""

from __future__ import annotations

import importlib
import pkgutil

import ultralytics_biformer


def test_every_module_exports_what_its_all_names():
    missing = []
    for info in pkgutil.walk_packages(ultralytics_biformer.__path__, "ultralytics_biformer."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        missing += [f"{info.name}.{name}" for name in getattr(module, "__all__", []) if not hasattr(module, name)]
    assert not missing, missing

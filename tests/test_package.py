"""Tests of the package's top level, ``ultralytics_biformer/__init__.py``: importing the package (or the cli) imports no
Ultralytics until something of ours needs it, any first import of ours still registers, its exports resolve to the
defining modules, and every module exports what its ``__all__`` names."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import textwrap

import pytest
from helpers import env_without_yolo_offline

import ultralytics_biformer


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", textwrap.dedent(code)]
    proc = subprocess.run(command, env=env_without_yolo_offline(**env), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_importing_the_package_and_the_cli_imports_no_ultralytics():
    out = _python(
        """
        import sys
        import ultralytics_biformer, ultralytics_biformer.cli, ultralytics_biformer.cli.args
        print(sorted(m for m in sys.modules if m == "ultralytics" or m.startswith("ultralytics.")))
        """
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "first_import",
    [
        "import ultralytics_biformer",
        "from ultralytics_biformer import BRA, C2PSA_BRA, C3k2_BRA, BiLevelRoutingAttention, bilevel_routing_attention",
        "from ultralytics_biformer.modules import BRA",
        "from ultralytics_biformer import integration",
        "import ultralytics_biformer.cli.routes",
    ],
)
def test_any_import_of_ours_registers_once_ultralytics_is_used(first_import, tmp_path):
    """With the autoload off, importing anything of ours is what registers, whichever import comes first."""
    out = _python(
        f"""
        {first_import}
        from ultralytics import YOLO
        from ultralytics.nn import tasks
        import ultralytics_biformer
        from ultralytics_biformer import integration
        print(ultralytics_biformer.is_registered(), tasks.parse_model is integration._parse_model)
        print(type(YOLO("yolo11n-biformer.yaml").model.model[10]).__name__)
        """,
        ULTRALYTICS_BIFORMER_AUTOLOAD="0",
    ).stdout.split("\n")
    assert out[:2] == ["True True", "C2PSA_BRA"]


def test_import_after_ultralytics_registers_at_once():
    out = _python(
        """
        from ultralytics.nn import tasks
        import ultralytics_biformer
        from ultralytics_biformer import integration
        print(tasks.parse_model is integration._parse_model)
        """,
        ULTRALYTICS_BIFORMER_AUTOLOAD="0",
    ).stdout
    assert out.strip() == "True"


def test_package_exports_resolve_to_the_defining_modules():
    import ultralytics_biformer
    from ultralytics_biformer import functional, integration, modules

    for name in ultralytics_biformer.__all__:
        home = functional if hasattr(functional, name) else integration if hasattr(integration, name) else modules
        assert getattr(ultralytics_biformer, name) is getattr(home, name), name
    assert set(ultralytics_biformer.__all__) <= set(dir(ultralytics_biformer))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ultralytics_biformer.nope  # noqa: B018


def test_every_module_exports_what_its_all_names():
    missing = []
    for info in pkgutil.walk_packages(ultralytics_biformer.__path__, "ultralytics_biformer."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        missing += [f"{info.name}.{name}" for name in getattr(module, "__all__", []) if not hasattr(module, name)]
    assert not missing, missing

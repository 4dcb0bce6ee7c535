"""The ``ultralytics-biformer`` commands stay offline even when ``YOLO_OFFLINE`` is not set, and importing the package
imports no Ultralytics until something of ours needs it (while ``import ultralytics_biformer`` still registers)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from helpers import NETWORK_GUARD

from ultralytics_biformer.data.synthetic import CACHE_ENV


def _environment(**extra: str) -> dict[str, str]:
    """This process's environment without ``YOLO_OFFLINE`` (conftest.py sets it for every test), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "YOLO_OFFLINE"}
    return {**env, **extra}


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", textwrap.dedent(code)]
    proc = subprocess.run(command, env=_environment(**env), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_commands_use_no_network_without_yolo_offline(tmp_path):
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NETWORK_GUARD)
    log = tmp_path / "attempts.log"
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8))
    env = _environment(
        PYTHONPATH=os.pathsep.join([str(guard), *filter(None, [os.environ.get("PYTHONPATH")])]),
        NETWORK_GUARD_LOG=str(log),
        **{CACHE_ENV: str(tmp_path / "cache")},
    )
    script = shutil.which("ultralytics-biformer")
    assert script, "the ultralytics-biformer console script is not installed"
    commands = [
        ["compare", "help"],
        ["dataset", "preset=quick", "train=2", "val=1", "imgsz=64"],
        ["routes", "model=yolo11n-biformer.yaml", f"source={image}", "imgsz=64", f"out={tmp_path / 'routes.png'}"],
    ]
    for command in commands:
        proc = subprocess.run([script, *command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "routes.png").is_file()
    assert not log.exists(), log.read_text()[:3000]


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

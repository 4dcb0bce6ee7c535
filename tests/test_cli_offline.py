"""Tests of ``ultralytics_biformer.cli.offline``: the ``ultralytics-biformer`` commands stay offline even when
``YOLO_OFFLINE`` is not set."""

from __future__ import annotations

import os
import shutil
import subprocess

import cv2
import numpy as np
from helpers import NETWORK_GUARD, env_without_yolo_offline

from ultralytics_biformer.data.synthetic import CACHE_ENV


def test_commands_use_no_network_without_yolo_offline(tmp_path):
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NETWORK_GUARD)
    log = tmp_path / "attempts.log"
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8))
    env = env_without_yolo_offline(
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

"""Plain helpers shared by the test modules (``from helpers import ...``; pytest puts this folder on ``sys.path``),
so that each exists once; fixtures live in conftest.py.

``write_tiny_dataset`` is also the tiny dataset of ``scripts/smoke_ultralytics.py``, which imports it from here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

if TYPE_CHECKING:  # the smoke script imports this module before Ultralytics may be imported
    from ultralytics_biformer.bench.inputs import ModelEntry
    from ultralytics_biformer.bench.plan import Plan

TASKS = ["detect", "segment", "pose", "obb", "classify"]
# Each task's default models in compare (its stock model and its biformer twin), written out independently of the code.
DEFAULT_MODELS = {
    "detect": ["yolo11n.yaml", "yolo11n-biformer.yaml"],
    "segment": ["yolo11n-seg.yaml", "yolo11n-biformer-seg.yaml"],
    "pose": ["yolo11n-pose.yaml", "yolo11n-biformer-pose.yaml"],
    "obb": ["yolo11n-obb.yaml", "yolo11n-biformer-obb.yaml"],
    "classify": ["yolo11n-cls.yaml", "yolo11n-biformer-cls.yaml"],
}
LARGE = 300.0  # q, k and v scale: |q.k| * scale reaches ~1e5, past fp16's 65504


# Written as sitecustomize.py on PYTHONPATH by the network tests: every process they start records, then refuses, any
# attempt to use the network.
NETWORK_GUARD = """
import os, socket, traceback

def _refuse(what):
    def refuse(*args, **kwargs):
        with open(os.environ["NETWORK_GUARD_LOG"], "a") as f:
            f.write(f"{what} {args[:2]!r}\\n{''.join(traceback.format_stack(limit=12))}\\n")
        raise OSError(f"network use refused by the test guard: {what}")
    return refuse

socket.getaddrinfo = _refuse("getaddrinfo")
socket.create_connection = _refuse("create_connection")
socket.socket.connect = _refuse("connect")
socket.socket.connect_ex = _refuse("connect_ex")
"""


def write_tiny_dataset(
    root: Path,
    n_train: int = 8,
    n_val: int = 4,
    size: int = 64,
    seed: int = 0,
    shapes: Sequence[tuple[int, int]] | None = None,
) -> Path:
    """Write a 2-class YOLO detection dataset of coloured boxes on noise and return its data YAML path.

    Images are ``size`` x ``size``, ``n_train`` and ``n_val`` of them; or, with ``shapes``, one image of each
    ``(height, width)`` in both splits (``n_train``, ``n_val`` and ``size`` are then unused).
    """
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i, (height, width) in enumerate(shapes or [(size, size)] * count):
            image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
            labels = []
            for _ in range(rng.integers(1, 4)):
                cls = int(rng.integers(0, 2))
                w = rng.integers(max(width // 8, 1), max(width // 3, 2))
                h = rng.integers(max(height // 8, 1), max(height // 3, 2))
                x, y = rng.integers(0, width - w), rng.integers(0, height - h)
                colour = (255, 60, 60) if cls else (60, 255, 60)
                cv2.rectangle(image, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1)
                labels.append(
                    f"{cls} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} {w / width:.6f} {h / height:.6f}"
                )
            cv2.imwrite(str(root / "images" / split / f"{i}.png"), image)
            (root / "labels" / split / f"{i}.txt").write_text("\n".join(labels) + "\n")
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: green\n  1: red\n")
    return data



def wake_branches(model: torch.nn.Module) -> torch.nn.Module:
    """Give every BRA block's residual branches weight, in place, and return the model.

    A new BRA block is the identity (the last BatchNorm of each branch is zero), so it would contribute nothing to
    outputs or gradients, and a test could not tell it apart from a missing block.
    """
    from ultralytics_biformer import BRA

    for block in model.modules():
        if isinstance(block, BRA):
            for branch_end in (block.pos, block.attn.proj, block.mlp[-1]):
                torch.nn.init.uniform_(branch_end.bn.weight, 0.5, 1.5)
    return model


def randomize_bn_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm random affine parameters and running statistics, in place, and return the module.

    Fresh BatchNorms in eval mode are the identity (and zero-initialised ones are zero), which would hide a wrongly
    wired or wrongly folded normalisation; random ones make the output depend on every one of them.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            for tensor, low, high in ((bn.weight, 0.5, 1.5), (bn.bias, -0.2, 0.2)):
                tensor.copy_(torch.empty(tensor.shape).uniform_(low, high, generator=gen))
            bn.running_mean.copy_(torch.empty(bn.num_features).uniform_(-0.2, 0.2, generator=gen))
            bn.running_var.copy_(torch.empty(bn.num_features).uniform_(0.5, 1.5, generator=gen))
    return module


def routing_layers(model: torch.nn.Module) -> list:
    """Every ``BiLevelRoutingAttention`` inside ``model``, in module order."""
    from ultralytics_biformer import BiLevelRoutingAttention

    return [m for m in model.modules() if isinstance(m, BiLevelRoutingAttention)]


def detection_batch(seed: int, n: int = 2, size: int = 64, device: str = "cpu") -> dict:
    """A detection batch in the trainer's format, drawn from ``seed``: ``n`` images, four boxes (two per image of the
    first two), normalised xywh, of 2 classes."""
    g = torch.Generator().manual_seed(seed)
    boxes = torch.rand(4, 4, generator=g) * 0.4 + torch.tensor([0.3, 0.3, 0.1, 0.1])
    return {
        "img": torch.rand(n, 3, size, size, generator=g).to(device),
        "batch_idx": torch.tensor([0.0, 0.0, 1.0, 1.0], device=device),
        "cls": torch.randint(0, 2, (4, 1), generator=g).float().to(device),
        "bboxes": boxes.to(device),
    }


def load_script(name: str):
    """The module ``scripts/<name>.py``, imported by path (scripts/ is no package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve a class's annotations through its module's entry
    spec.loader.exec_module(module)
    return module


def plan_with_record(run_dir: Path, model: ModelEntry, record: dict, **train_args) -> Plan:
    """A one-run plan of ``model`` whose run folder already holds ``record`` (seed 0 unless it says) for that run."""
    from ultralytics_biformer.bench.plan import Plan

    plan = Plan(run_dir, [model], [0], train_args, {"imgsz": 64}, {"device": "cpu"})
    plan.train_record(model, 0).parent.mkdir(parents=True)
    plan.train_record(model, 0).write_text(json.dumps({"seed": 0, **record}))
    return plan


YOLO_CLI = str(Path(sys.executable).parent / "yolo") if (Path(sys.executable).parent / "yolo").exists() else "yolo"


def run(args, env=None, cwd=None, check=True):
    """Run a command with this interpreter's environment plus ``env``; return the completed process."""
    full_env = {**os.environ, "YOLO_OFFLINE": "1", **(env or {})}
    proc = subprocess.run(args, env=full_env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if check and proc.returncode:
        raise AssertionError(f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


def python(code, **kwargs):
    return run([sys.executable, "-c", textwrap.dedent(code)], **kwargs)


def env_without_yolo_offline(**extra: str) -> dict[str, str]:
    """This process's environment without ``YOLO_OFFLINE`` (conftest.py sets it for every test), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "YOLO_OFFLINE"}
    return {**env, **extra}


def png_size(path: Path) -> tuple[int, int]:
    """The (width, height) of a PNG file, which must be one."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size

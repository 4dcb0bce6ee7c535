"""Loading the model a command's ``model=`` names: a model YAML (built with random weights) or a local checkpoint."""

from __future__ import annotations

from pathlib import Path

from .args import ArgumentError

__all__ = ["CHECKPOINT", "MODEL_YAML", "load_model", "one_line"]

MODEL_YAML = {".yaml", ".yml"}
CHECKPOINT = {".pt", ".pth"}


def one_line(e: Exception) -> str:
    """An exception as one line: its class name and its message with the whitespace collapsed."""
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


def load_model(spec: str, command: str, example: str = "yolo11n-biformer.yaml"):
    """Build or load the model ``model=spec`` names, in float32 eval mode. Raises ArgumentError, with one line.

    Args:
        spec (str): A model YAML (stock or bundled name, or a path) or a local .pt checkpoint; never downloaded.
        command (str): The command asking, named in the errors.
        example (str): A model to suggest in the errors.
    """
    suffix = Path(spec).suffix.lower()
    if suffix not in MODEL_YAML | CHECKPOINT:
        raise ArgumentError(
            f"model={spec}: expected a model YAML (.yaml, .yml) or a local checkpoint (.pt, .pth), e.g. {example}"
        )
    if suffix in CHECKPOINT and not Path(spec).is_file():
        raise ArgumentError(f"model={spec}: no such file ({command} never downloads weights)")
    from ultralytics import YOLO

    try:
        net = YOLO(spec).model
    except FileNotFoundError:
        raise ArgumentError(
            f"model={spec}: no such file, and no stock or bundled model YAML has that name; give a model YAML "
            f"(e.g. {example}) or a local .pt checkpoint"
        ) from None
    except Exception as e:  # noqa: BLE001 - whatever a YAML or a checkpoint does wrong is a bad model= argument
        what = "could not be loaded" if suffix in CHECKPOINT else "does not build"
        raise ArgumentError(f"model={spec} {what}: {one_line(e)}") from None
    return net.float().eval()

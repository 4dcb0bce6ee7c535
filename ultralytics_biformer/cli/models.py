"""Loading the model a command's ``model=`` names: a model YAML (built with random weights) or a local checkpoint."""

from __future__ import annotations

from pathlib import Path

from .args import ArgumentError

__all__ = [
    "CHECKPOINT",
    "MODEL_YAML",
    "checkpoint_problem",
    "describe_weights",
    "inference_size",
    "load_model",
    "load_yolo",
    "one_line",
]

DEFAULT_IMGSZ = 640  # Ultralytics' own default, for a model that does not say what it was trained at

MODEL_YAML = {".yaml", ".yml"}
CHECKPOINT = {".pt", ".pth"}


def one_line(e: BaseException, limit: int | None = None) -> str:
    """An exception as one line: its class name and its message with the whitespace collapsed, cut to ``limit``
    characters if given.

    Examples:
        >>> one_line(ValueError("bad   value"))
        'ValueError: bad value'
    """
    text = f"{type(e).__name__}: {' '.join(str(e).split()) or 'no message'}"
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def checkpoint_problem(e: Exception) -> str:
    """Why a checkpoint did not load, as one plain clause: Ultralytics' reason without its ``ERROR`` prefix, its
    advice to download an official model (never what a user of ours needs) or exception class names.

    Examples:
        >>> checkpoint_problem(TypeError("ERROR x.pt is not a loadable checkpoint (EOFError: Ran out of input). "
        ...                              "Recommended fixes are to re-download ..., i.e. 'yolo predict model=yolo26n.pt'"))
        'x.pt is not a loadable checkpoint (Ran out of input).'
    """
    import re

    text = " ".join(str(e).split())
    text = re.sub(r"^ERROR\s*(?:[^\w\s/.~\\]+\s*)?", "", text)  # the prefix and its emoji, not a path's "/"
    text = re.split(r" (?:Recommended fixes|Use an official|Please )", text)[0]
    text = re.sub(r"\((?:\w+\.)*\w+(?:Error|Exception): ([^.)]*)[^)]*\)", r"(\1)", text)  # its first clause
    if len(text) > 240:  # torch's zip reader explains itself at length
        text = text[:237] + "..."
    return text or f"{type(e).__name__} without a message"


def suggestion(e: FileNotFoundError) -> str:
    """``"did you mean '...'?"`` as the check_yaml hook words it for a near miss of a bundled name, else ``""``."""
    import re

    found = re.search(r"did you mean '[^']+'", str(e))
    return f"{found[0]}?" if found else ""


def load_yolo(
    spec: str,
    command: str,
    *,
    example: str = "yolo11n-biformer.yaml",
    subject: str | None = None,
    accepted: str | None = None,
):
    """Build or load the Ultralytics ``YOLO`` that ``spec`` names, quietly. Raises ArgumentError, with one line.

    Every command's model argument goes through here, so that a missing, misspelt, unbuildable or corrupt model gets
    the same words everywhere.

    Args:
        spec (str): A model YAML (stock or bundled name, or a path) or a local .pt checkpoint; never downloaded.
        command (str): The command asking, named in the errors.
        example (str): A model to suggest in the errors.
        subject (str, optional): How the errors name the argument; ``model=<spec>`` by default.
        accepted (str, optional): What the errors say is accepted instead.
    """
    subject = subject or f"model={spec}"
    accepted = accepted or f"give a model YAML (e.g. {example}) or a local .pt checkpoint"
    suffix = Path(spec).suffix.lower()
    if suffix not in MODEL_YAML | CHECKPOINT:
        raise ArgumentError(
            f"{subject}: expected a model YAML (.yaml, .yml) or a local checkpoint (.pt, .pth); {accepted}"
        )
    if suffix in CHECKPOINT and not Path(spec).is_file():
        raise ArgumentError(f"{subject}: no such file ({command} never downloads weights); {accepted}")
    import logging

    from ultralytics import YOLO

    logger = logging.getLogger("ultralytics")
    level = logger.level
    logger.setLevel(logging.WARNING)  # a classification model prints its layer table even with verbose=False
    try:
        return YOLO(spec, verbose=False)
    except FileNotFoundError as e:
        advice = f"{hint} Or {accepted}" if (hint := suggestion(e)) else accepted
        raise ArgumentError(
            f"{subject}: no such file, and no stock or bundled model YAML has that name; {advice}"
        ) from None
    except Exception as e:  # noqa: BLE001 - whatever a YAML or a checkpoint does wrong is a bad model argument
        if suffix in CHECKPOINT:
            raise ArgumentError(f"{subject} could not be loaded: {checkpoint_problem(e)}") from None
        raise ArgumentError(f"{subject} does not build: {one_line(e)}") from None
    finally:
        logger.setLevel(level)


def load_model(spec: str, command: str, example: str = "yolo11n-biformer.yaml"):
    """The network ``model=spec`` names (see :func:`load_yolo`), in float32 eval mode. Raises ArgumentError."""
    return load_yolo(spec, command, example=example).model.float().eval()


def inference_size(model, spec: str, asked: int | None) -> tuple[int, str]:
    """The input size to run ``model`` at, a multiple of 32, and where it came from.

    ``asked`` (the command's imgsz=) wins; else a checkpoint's training imgsz, which Ultralytics keeps in
    ``model.args``; else DEFAULT_IMGSZ.
    """
    import math

    train_args = getattr(model, "args", None) if Path(spec).suffix.lower() in CHECKPOINT else None
    trained_at = train_args.get("imgsz") if isinstance(train_args, dict) else None
    if asked is not None:
        size, origin = asked, "imgsz= as given"
    elif isinstance(trained_at, int) and not isinstance(trained_at, bool) and trained_at > 0:
        size, origin = trained_at, "the checkpoint's training imgsz"
    else:
        size, origin = DEFAULT_IMGSZ, "the default"
    rounded = math.ceil(size / 32) * 32
    return rounded, origin + ("" if rounded == size else f", {size} rounded up to a multiple of 32")


def describe_weights(spec: str) -> str:
    """Whose weights run: a checkpoint's (as saved, trained or not), or a YAML's, which are random."""
    if Path(spec).suffix.lower() in CHECKPOINT:
        return "the checkpoint's weights"
    return "random weights (a YAML: not trained)"

"""``ultralytics-biformer erf``: measure and draw the effective receptive field of a model's detection levels.

For each detection level (P3, P4, P5) the gradient of its centre position with respect to the input, averaged over
images (see :mod:`ultralytics_biformer.erf`), is drawn as a heat map with the disks that hold 50% and 90% of it,
and the two radii are printed and written next to the figure as JSON. Any detection model works: stock, biformer or
YOLO12, trained (.pt) or not (YAML, whose weights are random: said in the output).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .args import ArgumentError, ExitCode, Option, parse_options, positive_int, text, usage_text
from .models import CHECKPOINT, DEFAULT_IMGSZ, describe_weights, inference_size, load_model

__all__ = ["OPTIONS", "run", "usage"]

MASSES = (0.5, 0.9)  # the radii reported: r50 and r90

OPTIONS = [
    Option("model", text, None, "a detection model: model YAML (random weights) or a trained .pt (required)"),
    Option("source", text, None, "an image file, or a folder whose images (sorted by name) are averaged (required)"),
    Option("images", positive_int, 16, "at most this many images of a folder"),
    Option(
        "imgsz",
        positive_int,
        None,
        f"input size, rounded up to a multiple of 32 (default: a checkpoint's training imgsz, else {DEFAULT_IMGSZ})",
    ),
    Option(
        "out", text, None, "output figure, .png (default runs/erf/<model>.png); the radii go to the same name .json"
    ),
]


def usage() -> str:
    """The help text of ``erf``."""
    return usage_text(
        "erf",
        "model=... source=... [key=value ...]",
        "Measure the effective receptive field (Luo et al., 2016) of each detection level: the mean absolute\n"
        "gradient of the level's centre position with respect to the input image. Prints, per level, the radii in\n"
        "input pixels of the disks around the centre that hold 50% and 90% of it, and draws the fields.",
        OPTIONS,
        ["ultralytics-biformer erf model=runs/detect/train/weights/best.pt source=val/images"],
    )


def _image_files(source: str, limit: int) -> list[Path]:
    from ultralytics.data.utils import IMG_FORMATS

    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix[1:].lower() in IMG_FORMATS)
        if files:
            return files[:limit]
        raise ArgumentError(f"source={source}: the folder holds no images ({', '.join(sorted(IMG_FORMATS))})")
    raise ArgumentError(f"source={source}: no such image file or folder")


def _letterboxed(files: list[Path], size: int):
    import cv2
    import torch

    from .routes import letterbox

    batch = []
    for file in files:
        image = cv2.imread(str(file))
        if image is None:
            raise ArgumentError(f"source: {file} is not a readable image")
        batch.append(torch.from_numpy(letterbox(image, size)[..., ::-1].copy()).permute(2, 0, 1).float() / 255)
    return torch.stack(batch)


def _figure(fields, radii: dict[str, tuple[float, ...]], title: str, out: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    fig = Figure(figsize=(4.2 * len(fields), 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, field in zip(np.atleast_1d(fig.subplots(1, len(fields))), fields):
        # The square root shows the tails, which hold much of the mass but little of the peak.
        ax.imshow(np.sqrt(field.grid), cmap="magma", extent=(0, field.grid.shape[1], field.grid.shape[0], 0))
        for radius, style in zip(radii[field.name], ("-", "--")):
            ax.add_patch(Circle(field.centre, radius, fill=False, color="cyan", ls=style, lw=1.2))
        r50, r90 = radii[field.name]
        ax.set_title(f"{field.name} (stride {field.stride}): 50% within {r50:.0f} px, 90% within {r90:.0f} px", size=9)
        ax.set(xticks=[], yticks=[])
    fig.suptitle(title, fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def run(tokens: list[str]) -> int:
    """Run ``erf`` with its ``key=value`` arguments; return the exit code."""
    from ..erf import detection_levels, effective_receptive_field

    values = parse_options(tokens, OPTIONS, "erf")
    for key in ("model", "source"):
        if values[key] is None:
            raise ArgumentError(f"erf needs {key}=...")
    if values["out"] is not None and Path(values["out"]).suffix.lower() != ".png":
        raise ArgumentError(f"out={values['out']}: expected a .png file name")
    files = _image_files(values["source"], values["images"])
    from .offline import offline_ultralytics

    offline_ultralytics()
    model = load_model(values["model"], "erf", example="yolo11n.yaml")
    try:
        detection_levels(model)
    except ValueError:
        raise ArgumentError(f"model={values['model']} is not a detection model with P3-P5 levels") from None
    trained = Path(values["model"]).suffix.lower() in CHECKPOINT
    size, origin = inference_size(model, values["model"], values["imgsz"])
    weights = describe_weights(values["model"])
    fields = effective_receptive_field(model, _letterboxed(files, size))
    out = Path(values["out"] or Path("runs/erf") / f"{Path(values['model']).stem}.png")
    title = f"{values['model']}: effective receptive field, {weights}, imgsz {size} ({origin}), {len(files)} image(s)"
    radii = {field.name: tuple(field.radius(mass) for mass in MASSES) for field in fields}
    for field in fields:
        r50, r90 = radii[field.name]
        print(f"{field.name} (stride {field.stride}): 50% within {r50:.1f} px, 90% within {r90:.1f} px")
    summary = {
        "model": values["model"],
        "weights": "checkpoint" if trained else "random",
        "imgsz": size,
        "images": [f.name for f in files],
        "levels": {f.name: {"stride": f.stride, "r50": radii[f.name][0], "r90": radii[f.name][1]} for f in fields},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    print(f"{title}\n{_figure(fields, radii, title, out)}")
    return ExitCode.OK

"""Generated Ultralytics datasets where small objects need context to be classified, for every YOLO task.

Every image is a background of a few large zones (a Voronoi tiling). Each zone blends the same two kinds of random
colours, either along long-period stripes or along a slow gradient, so a zone's kind cannot be read from a few local
pixels: a window smaller than about half a stripe period looks the same in both. On it sit:

- **tokens**, many small identical squares (light fill, dark rim). A token is ``token-on-stripes`` or
  ``token-on-plain`` by the kind of zone it lies in, so its class is decided by context, never by its own pixels;
- **rings**, a few hollow circles of medium to large size (class ``ring``), so every COCO area bucket has objects;
- **clutter**, unlabelled shapes of token-like size and colour (discs, triangles, crosses, hollow squares), so an
  object detector must also look at shape.

A :class:`DatasetSpec` says what to write: the seed, the split sizes, the image size, the look (``style``, see
:mod:`.scene`) and the YOLO ``task``. Every task keeps the point of the benchmark, a token's class (or the image's)
read from its zone:

- ``detect``: ``cls xc yc w h`` boxes;
- ``segment``: the same images as ``detect``; ``cls x1 y1 ...`` polygons, a ring's hole joined to its outline by a
  zero-width cut so that one polygon fills just the ring;
- ``obb`` and ``pose``: one rotated scene (tokens are bars with a dark front cap, rings are ellipses with a gap at the
  front); ``obb`` labels ``cls x1 y1 ... x4 y4`` corners, ``pose`` labels ``cls xc yc w h`` then four keypoints
  ``x y 2`` (front, right, back, left; nothing hides them, so all are visible);
- ``classify``: ImageFolder ``{train,val}/<class>/*.jpg``. One token per image wears a marker colour; the image's
  class is the kind of zone under it (``token-on-plain`` or ``token-on-stripes``), so the marked token must be found
  and then its surroundings read. Classes alternate with the image index, so every split holds both.

Images are drawn with numpy and OpenCV from a seed alone (no fonts, no downloads), by one of two versions of the
drawing (``version``; see :mod:`.scene`): 2, the default, labels what it draws; 1 is kept because the ablation study
was measured on it, and its ring labels and filled shapes are up to 2 px and about 0.7 px off their pixels. Each image
gets its own random stream keyed by ``(seed, split, index)``, so a dataset's images do not depend on how many there
are. Datasets are written once to a cache folder and reused; see :func:`cache_dir` and :func:`ensure_dataset`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .._int_checks import check_int_at_least, is_int_at_least
from . import scene
from .context import CONTEXT_CLASS_NAMES, render_context_scene
from .scene import (  # noqa: F401 - importable from here as before the split
    KEYPOINT_FLIP_IDX,
    KEYPOINT_NAMES,
    PLAIN,
    REFERENCE_SIZE,
    RING,
    STRIPES,
    TOKEN_FILL,
    TOKEN_RIM,
    VERSION,
    VERSIONS,
    SceneObject,
    render_scene,
)

__all__ = [
    "CLASSIFY_NAMES",
    "CLASS_NAMES",
    "STYLES",
    "TASKS",
    "VERSION",
    "VERSIONS",
    "DatasetSpec",
    "cache_dir",
    "cached_dataset",
    "context_scene",
    "dataset_path",
    "ensure_dataset",
    "generate_dataset",
    "render_image",
]

NAME = "context-tokens"
# Revisions of everything that is not the detection benchmark itself: bump one when its drawing or labels change.
# Each appears in the folder name of the datasets it concerns, so the benchmark's own folder name never changes.
# A new drawing version (scene.VERSIONS) changes every folder name instead.
REVISIONS = {"pretrain": 1, "context": 1, "segment": 1, "pose": 1, "obb": 1, "classify": 1}
CLASS_NAMES = ("token-on-stripes", "token-on-plain", "ring")
CLASSIFY_NAMES = CLASS_NAMES[:2]  # an image's class is the zone kind under its marked token
TASKS = ("detect", "segment", "pose", "obb", "classify")
# The scene looks of :mod:`.scene`, and ``context``: the context-range benchmark of :mod:`.context` (detect only).
STYLES = (*scene.STYLES, "context")
CACHE_ENV = "ULTRALYTICS_BIFORMER_CACHE"
_SPLITS = {"train": 0, "val": 1}
_ABANDONED_AFTER_S = 24 * 3600  # a temp folder untouched this long was left by a killed generation, not a running one
_ROTATED_TASKS = ("obb", "pose")  # a square's or a circle's oriented box has no angle; these need elongated objects
assert (STRIPES, PLAIN, RING) == (0, 1, 2) and len(CLASS_NAMES) == 3


@dataclass(frozen=True)
class DatasetSpec:
    """What to generate.

    Attributes:
        seed (int): The generator seed.
        train (int): Number of train images.
        val (int): Number of val images.
        imgsz (int): Square image size in pixels, at least 32.
        style (str): The look, one of STYLES: ``tokens`` (the benchmark), ``pretrain`` (another domain with the
            same classes, to pre-train on before fine-tuning on ``tokens``) or ``context`` (the context-range
            benchmark, detect only: a token's class is decided at least ``distance`` pixels away).
        task (str): The YOLO task the labels are for, one of TASKS.
        version (int): The drawing's version, one of VERSIONS: the latest by default; 1 reproduces the study.
        distance (int | None): For style ``context`` only, and required there: the radius in pixels of the clearing
            around every token, the distance from its centre to the nearest evidence of its class.
    """

    seed: int = 0
    train: int = 2000
    val: int = 400
    imgsz: int = 320
    style: str = "tokens"
    task: str = "detect"
    version: int = VERSION
    distance: int | None = None

    def __post_init__(self):
        for key in ("seed", "train", "val", "imgsz"):
            check_int_at_least(f"dataset {key}", getattr(self, key), 0 if key == "seed" else 1)
        if self.imgsz < 32:
            raise ValueError(f"dataset imgsz must be at least 32 pixels, got {self.imgsz}")
        if self.style not in STYLES:
            raise ValueError(f"dataset style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if self.task not in TASKS:
            raise ValueError(f"dataset task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if not (is_int_at_least(self.version, 1) and self.version in VERSIONS):  # True == 1, but is no version
            raise ValueError(f"dataset version must be one of {', '.join(map(str, VERSIONS))}, got {self.version!r}")
        if self.style == "context":
            if self.task != "detect":
                raise ValueError(f"dataset style context has detection labels only (task detect), got {self.task!r}")
            if self.distance is None:
                raise ValueError("dataset style context needs a distance in pixels, e.g. distance=48")
            check_int_at_least("dataset distance", self.distance, 0)
            if self.distance > self.imgsz:
                raise ValueError(f"dataset distance must be at most imgsz ({self.imgsz}), got {self.distance}")
        elif self.distance is not None:
            raise ValueError(f"dataset distance applies to style context only, not to style {self.style!r}")
        if self.task == "classify" and min(self.train, self.val) < len(CLASSIFY_NAMES):
            raise ValueError(
                f"a classify dataset needs at least {len(CLASSIFY_NAMES)} train and {len(CLASSIFY_NAMES)} val images "
                f"(every class in every split), got train={self.train}, val={self.val}"
            )

    @property
    def folder_name(self) -> str:
        """The cache folder name, unique per spec and generator version; the benchmark's own has no suffix."""
        suffix = "".join(f"-{part}-v{REVISIONS[part]}" for part in (self.style, self.task) if part in REVISIONS)
        if self.distance is not None:
            suffix += f"-d{self.distance}"
        return f"{NAME}-v{self.version}-seed{self.seed}-{self.train}x{self.val}-{self.imgsz}px{suffix}"

    def describe(self) -> str:
        """One line for messages, e.g. ``detect, 160 train + 40 val images, 256px, seed 0, style tokens, v2``."""
        distance = "" if self.distance is None else f", distance {self.distance}px"
        return (
            f"{self.task}, {self.train} train + {self.val} val images, {self.imgsz}px, seed {self.seed}, "
            f"style {self.style}{distance}, v{self.version}"
        )


def cache_dir() -> Path:
    """The root of our caches: ``$ULTRALYTICS_BIFORMER_CACHE`` if set, else ``~/.cache/ultralytics-biformer``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "ultralytics-biformer"


def _data_path(spec: DatasetSpec, folder: Path) -> Path:
    """What Ultralytics' ``data=`` takes: the folder itself for classification, else its ``data.yaml``."""
    return folder if spec.task == "classify" else folder / "data.yaml"


def _done_marker(spec: DatasetSpec, folder: Path) -> Path:
    """The file written last, whose presence marks a complete dataset."""
    return folder / ("dataset.json" if spec.task == "classify" else "data.yaml")


def _datasets_root(root: Path | None) -> Path:
    return Path(root) if root is not None else cache_dir() / "datasets"


def dataset_path(spec: DatasetSpec) -> Path:
    """The ``data=`` path ``spec``'s dataset has in the cache, whether it is generated yet or not."""
    return _data_path(spec, _datasets_root(None) / spec.folder_name)


def cached_dataset(spec: DatasetSpec, root: Path | None = None) -> Path | None:
    """The ``data=`` path of ``spec``'s dataset if it is complete in the cache, else None; generates nothing.

    Args:
        spec (DatasetSpec): The dataset to look for.
        root (Path, optional): Folder holding the datasets; ``cache_dir() / "datasets"`` when None.
    """
    final = _datasets_root(root) / spec.folder_name
    return _data_path(spec, final) if _done_marker(spec, final).is_file() else None


def ensure_dataset(
    spec: DatasetSpec = DatasetSpec(), root: Path | None = None, log: Callable[[str], None] | None = None
) -> Path:
    """Return the ``data=`` path of ``spec``'s dataset, generating it first if it is not cached yet.

    The dataset is written to a temporary folder and renamed into place when complete, so an interrupted or
    concurrent generation never leaves a partial dataset behind. Temporary folders of this spec that a killed
    generation left (untouched for a day) are deleted first.

    Args:
        spec (DatasetSpec): The dataset to provide.
        root (Path, optional): Folder holding the datasets; ``cache_dir() / "datasets"`` when None.
        log (Callable[[str], None], optional): Receives progress messages; stderr when None.

    Returns:
        (Path): The dataset's ``data.yaml``, or for ``task="classify"`` its folder; usable as Ultralytics' ``data=``.
    """
    log = log or (lambda message: print(message, file=sys.stderr))
    root = _datasets_root(root)
    if (cached := cached_dataset(spec, root)) is not None:
        return cached
    final = root / spec.folder_name
    root.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(root, spec)
    if final.exists():  # only a finished dataset is ever renamed here, so its marker went missing (a cut-short copy?)
        log(f"Replacing {final}: it lacks {_done_marker(spec, final).name}, so it is incomplete")
        stale = Path(tempfile.mkdtemp(prefix=f".{spec.folder_name}-stale-", dir=root))
        with contextlib.suppress(FileNotFoundError):  # another process moved it first
            final.rename(stale / "dataset")
        shutil.rmtree(stale, ignore_errors=True)
    log(f"Generating the {NAME} dataset ({spec.describe()}) in {final}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.folder_name}-", dir=root))
    try:
        generate_dataset(spec, tmp)
        try:
            tmp.rename(final)
        except OSError:  # another process finished first; its copy is identical
            if not _done_marker(spec, final).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _data_path(spec, final)


def _remove_abandoned(root: Path, spec: DatasetSpec) -> None:
    # Exactly the names mkdtemp gives this spec's temp and stale folders: another spec's folder name may extend ours.
    ours = re.compile(re.escape(f".{spec.folder_name}-") + r"(stale-)?[a-z0-9_]{8}")
    for folder in root.iterdir():
        if not ours.fullmatch(folder.name):
            continue
        with contextlib.suppress(FileNotFoundError):  # another process removed it, or a file of it, first
            # A folder's own time changes only when an entry is added to it, so a running generation shows its
            # progress in the times of the files it writes.
            newest = max(path.stat().st_mtime for path in (folder, *folder.rglob("*")))
            if time.time() - newest > _ABANDONED_AFTER_S:
                shutil.rmtree(folder, ignore_errors=True)


def generate_dataset(spec: DatasetSpec, out_dir: Path) -> Path:
    """Write ``spec``'s images, labels, ``dataset.json`` and (except classify) ``data.yaml`` into ``out_dir``.

    ``data.yaml`` has no ``path:`` key, so Ultralytics resolves the splits relative to the YAML's own folder and the
    dataset can be moved as a whole.

    Returns:
        (Path): The ``data=`` path: ``out_dir / "data.yaml"``, or ``out_dir`` for classify.
    """
    out_dir = Path(out_dir)
    rotated = spec.task in _ROTATED_TASKS
    for split, count in (("train", spec.train), ("val", spec.val)):
        if spec.task == "classify":
            for name in CLASSIFY_NAMES:
                (out_dir / split / name).mkdir(parents=True, exist_ok=True)
        else:
            (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
            (out_dir / "labels" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            rng = _image_rng(spec, split, index)
            stem = f"{index:06d}"
            if spec.task == "classify":
                marked = index % len(CLASSIFY_NAMES)
                scene = render_scene(rng, spec.imgsz, spec.style, marked=marked, version=spec.version)
                _write_image(out_dir / split / CLASSIFY_NAMES[scene.marked] / f"{stem}.jpg", scene.image)
                continue
            if spec.style == "context":  # lossless: JPEG's 8x8 blocks would carry texture into the clearings
                scene = _context_scene(spec, rng, index)
                _write_image(out_dir / "images" / split / f"{stem}.png", scene.image)
            else:
                scene = render_scene(rng, spec.imgsz, spec.style, rotated=rotated, version=spec.version)
                _write_image(out_dir / "images" / split / f"{stem}.jpg", scene.image)
            line = _LABEL_LINES[spec.task]
            (out_dir / "labels" / split / f"{stem}.txt").write_text("".join(line(o, spec.imgsz) for o in scene.objects))
    info = {"name": NAME, "version": spec.version, **asdict(spec)}  # version second, as before it joined the spec
    if spec.task == "classify":
        (out_dir / "dataset.json").write_text(json.dumps(info, indent=2))  # last: marks a complete dataset
        return out_dir
    (out_dir / "dataset.json").write_text(json.dumps(info, indent=2))
    (out_dir / "data.yaml").write_text(_data_yaml(spec))  # last: its presence marks a complete dataset
    return out_dir / "data.yaml"


def _image_rng(spec: DatasetSpec, split: str, index: int) -> np.random.Generator:
    """The random stream of image ``index`` of ``split``: one per image, so any image can be drawn again alone."""
    return np.random.default_rng([spec.seed, _SPLITS[split], index])


def _context_scene(spec: DatasetSpec, rng: np.random.Generator, index: int):
    return render_context_scene(rng, spec.imgsz, spec.distance, kind=index % len(CONTEXT_CLASS_NAMES))


def context_scene(spec: DatasetSpec, split: str, index: int):
    """The scene behind image ``index`` of ``split`` ("train" or "val") of a style ``context`` dataset, exactly as
    :func:`generate_dataset` draws it (its ``image`` is BGR, as written), with the token boxes its clearings are
    centred on: for analyses that need what the image file does not say, such as where the evidence lies."""
    if spec.style != "context":
        raise ValueError(f"context_scene needs a dataset of style context, got style {spec.style!r}")
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {', '.join(_SPLITS)}, got {split!r}")
    count = spec.train if split == "train" else spec.val
    if not (is_int_at_least(index, 0) and index < count):
        raise ValueError(f"{split} image index must be an integer from 0 to {count - 1}, got {index!r}")
    return _context_scene(spec, _image_rng(spec, split, index), index)


def _write_image(path: Path, image: np.ndarray) -> None:
    """Write a JPEG (quality 95) or a PNG, by ``path``'s suffix."""
    options = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix == ".jpg" else []
    if not cv2.imwrite(str(path), image, options):  # cv2 reports failure only this way
        raise OSError(f"could not write {path}; was its folder removed during generation?")


def _data_yaml(spec: DatasetSpec) -> str:
    variant = "" if (spec.style, spec.task) == ("tokens", "detect") else f" ({spec.task}, style {spec.style})"
    class_names = CONTEXT_CLASS_NAMES if spec.style == "context" else CLASS_NAMES
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(class_names))
    text = f"# {NAME} v{spec.version}{variant}, generated by ultralytics_biformer.data.synthetic\n"
    text += f"train: images/train\nval: images/val\nnames:\n{names}\n"
    if spec.task == "pose":
        kpt_names = "\n".join(f"  {i}: [{', '.join(KEYPOINT_NAMES)}]" for i in range(len(CLASS_NAMES)))
        text += f"kpt_shape: [{len(KEYPOINT_NAMES)}, 3]\nflip_idx: {list(KEYPOINT_FLIP_IDX)}\nkpt_names:\n{kpt_names}\n"
    return text


def _label_line(cls: int, xc: float, yc: float, w: float, h: float) -> str:
    return f"{cls} {xc:.6f} {yc:.6f} {w:.6f} {h:.6f}\n"


def _yolo_box(obj: SceneObject, size: int) -> tuple[int, float, float, float, float]:
    x0, y0, x1, y1 = obj.box
    return obj.cls, (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size


def _points(points: np.ndarray, size: int) -> str:
    return " ".join(f"{v:.6f}" for v in np.clip(points / size, 0, 1).reshape(-1))


def _segment_line(obj: SceneObject, size: int) -> str:
    polygon = obj.outline
    if obj.hole is not None:  # around the outline, in along a cut, around the hole backwards, out along the cut
        polygon = np.concatenate([obj.outline, obj.outline[:1], obj.hole[:1], obj.hole[::-1]])
    return f"{obj.cls} {_points(polygon, size)}\n"


def _pose_line(obj: SceneObject, size: int) -> str:
    # Visibility 2 (labelled and visible): objects never overlap, so nothing hides a keypoint.
    keypoints = " ".join(f"{x:.6f} {y:.6f} 2" for x, y in np.clip(obj.keypoints / size, 0, 1))
    return f"{_label_line(*_yolo_box(obj, size)).rstrip()} {keypoints}\n"


_LABEL_LINES = {
    "detect": lambda obj, size: _label_line(*_yolo_box(obj, size)),
    "segment": _segment_line,
    "obb": lambda obj, size: f"{obj.cls} {_points(obj.corners, size)}\n",
    "pose": _pose_line,
}


def render_image(
    rng: np.random.Generator, size: int, style: str = "tokens"
) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
    """Draw one ``size x size`` detection scene.

    Args:
        rng (np.random.Generator): The image's random stream; the same stream always draws the same scene.
        size (int): Image width and height in pixels.
        style (str): The look, one of STYLES.

    Returns:
        (np.ndarray): The BGR uint8 image.
        (list[tuple]): YOLO labels ``(class, x_center, y_center, width, height)``, normalised to the image size.
    """
    scene = render_scene(rng, size, style)
    return scene.image, [_yolo_box(obj, size) for obj in scene.objects]


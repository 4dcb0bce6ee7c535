"""A generated YOLO-format detection benchmark where small objects need context to be classified.

Every image is a background of a few large zones (a Voronoi tiling). Each zone blends the same two kinds of random
colours, either along long-period stripes or along a slow gradient, so a zone's kind cannot be read from a few local
pixels: a window smaller than about half a stripe period looks the same in both. On it sit:

- **tokens**, many small identical squares (light fill, dark rim). A token is ``token-on-stripes`` or
  ``token-on-plain`` by the kind of zone it lies in, so its class is decided by context, never by its own pixels;
- **rings**, a few hollow circles of medium to large size (class ``ring``), so every COCO area bucket has objects;
- **clutter**, unlabelled shapes of token-like size and colour (discs, triangles, crosses, hollow squares), so an
  object detector must also look at shape.

Images are drawn with numpy and OpenCV from a seed alone (no fonts, no downloads). Each image gets its own random
stream keyed by ``(seed, split, index)``, so a dataset's images do not depend on how many there are. Datasets are
written once to a cache folder and reused; see :func:`cache_dir` and :func:`ensure_dataset`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

__all__ = [
    "CLASS_NAMES",
    "DatasetSpec",
    "cache_dir",
    "ensure_dataset",
    "generate_dataset",
    "render_image",
]

NAME = "context-tokens"
VERSION = 1  # bump whenever the rendering changes, so stale caches are not reused
CLASS_NAMES = ("token-on-stripes", "token-on-plain", "ring")
CACHE_ENV = "ULTRALYTICS_BIFORMER_CACHE"

STRIPES, PLAIN = 0, 1  # zone kinds; a token's class id is the kind of its zone
RING = 2
REFERENCE_SIZE = 320  # object sizes below are in pixels of a REFERENCE_SIZE image and scale with the image
TOKEN_FILL, TOKEN_RIM = (228, 228, 228), (24, 24, 24)
_SPLITS = {"train": 0, "val": 1}


@dataclass(frozen=True)
class DatasetSpec:
    """What to generate: the seed, the number of train and val images, and the square image size in pixels."""

    seed: int = 0
    train: int = 2000
    val: int = 400
    imgsz: int = 320

    def __post_init__(self):
        for key, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "seed" else 1):
                raise ValueError(
                    f"dataset {key} must be a {'non-negative' if key == 'seed' else 'positive'} integer, got {value!r}"
                )
        if self.imgsz < 32:
            raise ValueError(f"dataset imgsz must be at least 32 pixels, got {self.imgsz}")

    @property
    def folder_name(self) -> str:
        """The cache folder name, unique per spec and generator version."""
        return f"{NAME}-v{VERSION}-seed{self.seed}-{self.train}x{self.val}-{self.imgsz}px"


def cache_dir() -> Path:
    """The root of our caches: ``$ULTRALYTICS_BIFORMER_CACHE`` if set, else ``~/.cache/ultralytics-biformer``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "ultralytics-biformer"


def ensure_dataset(
    spec: DatasetSpec = DatasetSpec(), root: Path | None = None, log: Callable[[str], None] | None = None
) -> Path:
    """Return the data YAML of ``spec``'s dataset, generating it first if it is not cached yet.

    The dataset is written to a temporary folder and renamed into place when complete, so an interrupted or
    concurrent generation never leaves a partial dataset behind.

    Args:
        spec (DatasetSpec): The dataset to provide.
        root (Path, optional): Folder holding the datasets; ``cache_dir() / "datasets"`` when None.
        log (Callable[[str], None], optional): Receives progress messages; stderr when None.

    Returns:
        (Path): The dataset's ``data.yaml``, usable as Ultralytics' ``data=``.
    """
    log = log or (lambda message: print(message, file=sys.stderr))
    root = Path(root) if root is not None else cache_dir() / "datasets"
    final = root / spec.folder_name
    if (final / "data.yaml").is_file():
        return final / "data.yaml"
    root.mkdir(parents=True, exist_ok=True)
    log(f"Generating the {NAME} dataset ({spec.train} train + {spec.val} val images, seed {spec.seed}) in {final}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.folder_name}-", dir=root))
    try:
        generate_dataset(spec, tmp)
        try:
            tmp.rename(final)
        except OSError:  # another process finished first; its copy is identical
            if not (final / "data.yaml").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / "data.yaml"


def generate_dataset(spec: DatasetSpec, out_dir: Path) -> Path:
    """Write ``spec``'s images, YOLO labels, ``data.yaml`` and ``dataset.json`` into ``out_dir``; return the YAML.

    ``data.yaml`` has no ``path:`` key, so Ultralytics resolves the splits relative to the YAML's own folder and the
    dataset can be moved as a whole.
    """
    out_dir = Path(out_dir)
    for split, count in (("train", spec.train), ("val", spec.val)):
        (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
        (out_dir / "labels" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, labels = render_image(np.random.default_rng([spec.seed, _SPLITS[split], index]), spec.imgsz)
            stem = f"{index:06d}"
            cv2.imwrite(str(out_dir / "images" / split / f"{stem}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            (out_dir / "labels" / split / f"{stem}.txt").write_text("".join(_label_line(*label) for label in labels))
    (out_dir / "dataset.json").write_text(json.dumps({"name": NAME, "version": VERSION, **asdict(spec)}, indent=2))
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(CLASS_NAMES))
    yaml_text = f"# {NAME} v{VERSION}, generated by ultralytics_biformer.data.synthetic\n"
    yaml_text += f"train: images/train\nval: images/val\nnames:\n{names}\n"
    (out_dir / "data.yaml").write_text(yaml_text)  # last: its presence marks a complete dataset
    return out_dir / "data.yaml"


def _label_line(cls: int, xc: float, yc: float, w: float, h: float) -> str:
    return f"{cls} {xc:.6f} {yc:.6f} {w:.6f} {h:.6f}\n"


def render_image(
    rng: np.random.Generator, size: int
) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
    """Draw one ``size x size`` scene.

    Args:
        rng (np.random.Generator): The image's random stream; the same stream always draws the same scene.
        size (int): Image width and height in pixels.

    Returns:
        (np.ndarray): The BGR uint8 image.
        (list[tuple]): YOLO labels ``(class, x_center, y_center, width, height)``, normalised to the image size.
    """
    scale = size / REFERENCE_SIZE
    zones, kinds = _zones(rng, size)
    image = np.clip(_background(rng, zones, kinds, scale), 0, 255).astype(np.uint8)
    occupied = np.zeros((size, size), dtype=bool)
    boxes = [(RING, box) for box in _draw_rings(rng, image, occupied, scale)]
    _draw_clutter(rng, image, occupied, scale)
    boxes += _draw_tokens(rng, image, occupied, zones, kinds, scale)
    noise = np.frombuffer(rng.bytes(image.size), dtype=np.uint8).reshape(image.shape) >> 4  # uniform 0..15
    image = np.clip(image.astype(np.int16) + noise - 8, 0, 255).astype(np.uint8)
    labels = [
        (cls, (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size)
        for cls, (x0, y0, x1, y1) in boxes
    ]
    return image, labels


def _zones(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A Voronoi tiling into 2-4 zones: the ``(size, size)`` zone-id map and each zone's kind, both kinds present."""
    n = int(rng.integers(2, 5))
    seeds = rng.uniform(0, size, (n, 2)).astype(np.float32)
    axis = np.arange(size, dtype=np.float32)
    dx, dy = (axis[:, None] - seeds[:, 0]) ** 2, (axis[:, None] - seeds[:, 1]) ** 2  # (size, n) each
    zones = (dy[:, None, :] + dx[None, :, :]).argmin(-1)  # (rows = y, cols = x)
    kinds = np.array([STRIPES, PLAIN, *rng.integers(0, 2, n - 2)])
    return zones, rng.permutation(kinds)


def _background(rng: np.random.Generator, zones: np.ndarray, kinds: np.ndarray, scale: float) -> np.ndarray:
    """Fill each zone with a blend of two random colours, along stripes or along a slow gradient (float32)."""
    size = zones.shape[0]
    xs, ys = np.arange(size, dtype=np.float32)[None, :], np.arange(size, dtype=np.float32)[:, None]
    a, b = rng.uniform(40, 215, (2, len(kinds), 3)).astype(np.float32)  # per zone: the two colours it blends
    t = np.empty((size, size), dtype=np.float32)  # per pixel: the blend weight of b
    for zone, kind in enumerate(kinds):
        theta = rng.uniform(0, np.pi)
        along = xs * np.float32(np.cos(theta)) + ys * np.float32(np.sin(theta))
        if kind == STRIPES:
            period = rng.uniform(28, 56) * scale
            t_zone = 0.5 + 0.5 * np.sin(along * np.float32(2 * np.pi / period) + np.float32(rng.uniform(0, 2 * np.pi)))
        else:  # the same two colours, blended over a distance of 1-2 image sizes: locally just as smooth
            t_zone = np.clip(along / np.float32(rng.uniform(1, 2) * size) + np.float32(rng.uniform(-0.5, 0.5)), 0, 1)
        np.copyto(t, t_zone, where=zones == zone)
    a, b = np.take(a, zones, axis=0), np.take(b, zones, axis=0)
    return a + t[..., None] * (b - a)


def _place(rng: np.random.Generator, occupied: np.ndarray, w: int, h: int, margin: int, tries: int = 20):
    """A free ``(x0, y0, x1, y1)`` box of size ``w x h`` (plus a margin kept clear), or None after ``tries``."""
    size = occupied.shape[0]
    if w + 2 * margin > size or h + 2 * margin > size:
        return None
    for _ in range(tries):
        x0, y0 = int(rng.integers(margin, size - w - margin + 1)), int(rng.integers(margin, size - h - margin + 1))
        if not occupied[y0 - margin : y0 + h + margin, x0 - margin : x0 + w + margin].any():
            return x0, y0, x0 + w, y0 + h
    return None


def _mark(occupied: np.ndarray, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    occupied[y0:y1, x0:x1] = True


def _scaled(rng: np.random.Generator, low: float, high: float, scale: float, minimum: int = 3) -> int:
    return max(minimum, round(rng.uniform(low, high) * scale))


def _draw_rings(rng: np.random.Generator, image: np.ndarray, occupied: np.ndarray, scale: float) -> list:
    """0-2 hollow circles, 24-128 px across at the reference size; returns their boxes."""
    boxes = []
    for _ in range(int(rng.integers(0, 3))):
        d = _scaled(rng, 24, 128, scale, minimum=8)
        box = _place(rng, occupied, d, d, margin=2)
        if box is None:
            continue
        x0, y0, _, _ = box
        r = d / 2
        colour = (
            tuple(float(c) for c in rng.choice([0, 255], 3)) if rng.random() < 0.5 else tuple(rng.uniform(0, 255, 3))
        )
        thickness = max(2, round(d / 10))
        cv2.circle(
            image, (round(x0 + r - 0.5), round(y0 + r - 0.5)), round(r - thickness / 2), colour, thickness, cv2.LINE_AA
        )
        _mark(occupied, box)
        boxes.append(box)
    return boxes


def _draw_clutter(rng: np.random.Generator, image: np.ndarray, occupied: np.ndarray, scale: float) -> None:
    """15-40 unlabelled token-sized shapes: discs, triangles, crosses and hollow squares."""
    for _ in range(int(rng.integers(15, 41))):
        s = _scaled(rng, 6, 16, scale)
        box = _place(rng, occupied, s, s, margin=1)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        light = rng.random() < 0.6  # most clutter wears the token's colours, so colour alone is not enough
        fill = TOKEN_FILL if light else tuple(rng.uniform(0, 255, 3))
        rim = TOKEN_RIM if light else tuple(rng.uniform(0, 255, 3))
        shape = int(rng.integers(0, 4))
        if shape == 0:  # disc
            centre, radius = (round((x0 + x1 - 1) / 2), round((y0 + y1 - 1) / 2)), max(1, s // 2)
            cv2.circle(image, centre, radius, fill, -1, cv2.LINE_AA)
            cv2.circle(image, centre, radius, rim, 1, cv2.LINE_AA)
        elif shape == 1:  # triangle
            points = np.array([[x0, y1 - 1], [x1 - 1, y1 - 1], [(x0 + x1) // 2, y0]], dtype=np.int32)
            cv2.fillPoly(image, [points], fill, cv2.LINE_AA)
            cv2.polylines(image, [points], True, rim, 1, cv2.LINE_AA)
        elif shape == 2:  # cross
            t = max(1, s // 4)
            cv2.line(image, (x0, (y0 + y1) // 2), (x1 - 1, (y0 + y1) // 2), fill, t)
            cv2.line(image, ((x0 + x1) // 2, y0), ((x0 + x1) // 2, y1 - 1), fill, t)
        else:  # hollow square
            cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), fill, max(1, s // 6))
        _mark(occupied, box)


def _draw_tokens(rng, image, occupied, zones, kinds, scale) -> list:
    """12-40 identical small squares; each is labelled by the kind of the zone holding all of it."""
    boxes = []
    for _ in range(int(rng.integers(12, 41))):
        s = _scaled(rng, 6, 14, scale)
        box = _place(rng, occupied, s, s, margin=1)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        zone_ids = np.unique(zones[y0:y1, x0:x1])
        if len(zone_ids) != 1:  # straddles a zone border: its class would be ambiguous
            continue
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), TOKEN_FILL, -1)
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), TOKEN_RIM, max(1, s // 6))
        _mark(occupied, box)
        boxes.append((int(kinds[zone_ids[0]]), box))
    return boxes

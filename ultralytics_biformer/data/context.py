"""The context-range scenes: small tokens whose class is decided only by evidence at least ``distance`` pixels away.

Every image is one **scene** of one of two kinds, drawn over the whole image as a blend of two random colours:
``stripes`` (fine straight stripes, a few pixels show them) or ``plain`` (a slow linear gradient, flat to the eye
over any small window). These are the zone kinds of the bundled benchmark, whose tokens every model learns to tell
apart. On it sit a few identical **tokens** (light squares with a dark rim), each at the centre of a flat
**clearing** of radius ``distance`` filled with the two colours' mean, and a few unlabelled **clutter** shapes. A token is ``token-in-stripes`` or ``token-in-plain`` by the kind of its scene, so
its class can only be read from the background at least ``distance`` pixels from its centre.

The design closes the shortcuts a detector could take instead of reaching that far:

- **Own pixels and surroundings.** The kind is a parameter, not a random draw, and both kinds consume the random
  stream identically. Drawn from the same stream, the two kinds give the same image at every pixel closer than
  ``distance`` to a token centre, the same tokens and the same clutter: only the texture outside the clearings differs.
- **Colour statistics.** Both kinds blend the same two colours, drawn alike for both, with a blend weight whose
  mean is 0.5 over scenes for both, and the clearings take the colours' mean: the mean colour of an image carries no
  class. The spread of colours within the background differs (stripes swing between the two colours within a few
  pixels), but that spread is the evidence itself and lies only outside the clearings.
- **Position, density, count and balance.** Token count, sizes and positions, and the clutter, are drawn before and
  independently of both the kind and ``distance``: the same stream at any two distances gives the same labels. The
  dataset alternates the kind with the image index, so the classes are balanced in every split.
- **Scale and orientation.** Stripes of 8-14 px at 256 px stay stripes under Ultralytics' scale augmentation
  (0.5-1.5x) and a gradient over one to two image widths stays flat, so augmentation cannot turn one kind into the
  other.

The relation is the general one of scene context (the class of a small object depends on what surrounds it), with
the nearest evidence pushed out to ``distance``. Nothing in it is aligned with any model's grid or regions: positions,
angles, periods and colours are continuous and random.
"""

from __future__ import annotations

import numpy as np

from .scene import TOKEN_FILL, Scene, _draw_clutter, _draw_square_token, _legacy_token, _mark, _place

__all__ = [
    "CONTEXT_CLASS_NAMES",
    "CONTEXT_REFERENCE_SIZE",
    "PLAIN",
    "STRIPES",
    "clearing_mask",
    "render_context_scene",
    "token_centres",
]

STRIPES, PLAIN = 0, 1  # scene kinds; every token's class id is its scene's kind
CONTEXT_CLASS_NAMES = ("token-in-stripes", "token-in-plain")
CONTEXT_REFERENCE_SIZE = 256  # token, clutter and texture sizes are in pixels of a 256 px image and scale with it
_TOKENS = (4, 9)  # tokens per image, high excluded: clearings of 64 px still leave 18% of the image or more (5th pct)
_CLUTTER = (4, 13)
_TOKEN_SIZE = (8, 13)  # side in pixels at the reference size, high excluded
_PERIOD = (8.0, 14.0)  # texture period in pixels at the reference size
_NOISE_SHIFT = 4  # per-pixel uniform noise of 16 grey levels, centred, as the benchmark's


def render_context_scene(rng: np.random.Generator, size: int, distance: int, kind: int) -> Scene:
    """Draw one ``size x size`` context-range scene.

    Args:
        rng (np.random.Generator): The image's random stream; the same stream draws the same tokens, clutter, colours
            and noise whatever ``distance`` and ``kind`` are.
        size (int): Image width and height in pixels.
        distance (int): Radius in pixels of the clearing around every token centre; no texture lies closer.
        kind (int): STRIPES or PLAIN, the class of every token.

    Returns:
        (Scene): The image, its tokens (class ``kind``) and ``zone_kinds``, a map that is ``kind`` everywhere.
    """
    if kind not in (STRIPES, PLAIN):
        raise ValueError(f"context scene kind must be {STRIPES} (stripes) or {PLAIN} (plain), got {kind!r}")
    if not (isinstance(distance, (int, np.integer)) and not isinstance(distance, bool) and distance >= 0):
        raise ValueError(f"context distance must be a non-negative integer of pixels, got {distance!r}")
    scale = size / CONTEXT_REFERENCE_SIZE
    colours = rng.uniform(40, 215, (2, 3)).astype(np.float32)
    texture = _texture(rng, size, scale, kind)
    occupied = np.zeros((size, size), dtype=bool)
    boxes = []
    for _ in range(int(rng.integers(*_TOKENS))):
        side = max(4, round(rng.uniform(*_TOKEN_SIZE) * scale))
        box = _place(rng, occupied, side, side, margin=2)
        if box is not None:
            _mark(occupied, box)
            boxes.append(box)
    clearing = clearing_mask(size, boxes, distance)
    weight = np.where(clearing, np.float32(0.5), texture)
    image = colours[0] + weight[..., None] * (colours[1] - colours[0])
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    for box in boxes:
        _draw_square_token(image, box, TOKEN_FILL)
    _draw_clutter(rng, image, occupied, scale * CONTEXT_REFERENCE_SIZE / 320, count=_CLUTTER)
    noise = np.frombuffer(rng.bytes(image.size), dtype=np.uint8).reshape(image.shape) >> _NOISE_SHIFT
    image = np.clip(image.astype(np.int16) + noise - (1 << (7 - _NOISE_SHIFT)), 0, 255).astype(np.uint8)
    objects = [_legacy_token(kind, box) for box in boxes]
    return Scene(image, objects, np.full((size, size), kind, dtype=np.uint8))


def token_centres(boxes) -> np.ndarray:
    """``(N, 2)`` centres ``(x, y)`` of ``(x0, y0, x1, y1)`` boxes, in continuous pixel coordinates."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def clearing_mask(size: int, boxes, distance: int) -> np.ndarray:
    """``(size, size)`` boolean map of the clearings: pixels whose centre lies closer than ``distance`` to the centre
    of some ``(x0, y0, x1, y1)`` token box. Everywhere else a context scene shows its kind's texture (or clutter)."""
    clear = np.zeros((size, size), dtype=bool)
    axis = np.arange(size, dtype=np.float64) + 0.5
    for cx, cy in token_centres(boxes):
        clear |= (axis[:, None] - cy) ** 2 + (axis[None, :] - cx) ** 2 < distance**2
    return clear


def _texture(rng: np.random.Generator, size: int, scale: float, kind: int) -> np.ndarray:
    """The blend weight in [0, 1] of every pixel: fine stripes, or a slow gradient along the same direction.

    Both kinds draw the same five numbers, so the random stream after this call does not depend on ``kind``.
    """
    theta, phase = rng.uniform(0, 2 * np.pi, 2)
    period = rng.uniform(*_PERIOD) * scale
    length, offset = rng.uniform(1, 2) * size, rng.uniform(-0.5, 0.5)
    axis = np.arange(size, dtype=np.float64) + 0.5
    along = axis[None, :] * np.cos(theta) + axis[:, None] * np.sin(theta)
    if kind == STRIPES:
        weight = 0.5 + 0.5 * np.sin(along * (2 * np.pi / period) + phase)
    else:  # over one to two image sizes, centred on the image: about as flat as the clearing within a few pixels
        centre = size / 2 * (np.cos(theta) + np.sin(theta))
        weight = np.clip(0.5 + (along - centre) / length + offset, 0, 1)
    return weight.astype(np.float32)

"""The context-range scenes: small tokens whose class is decided only by evidence at least ``distance`` pixels away.

Every image is one **scene** of one of two kinds, drawn over the whole image as a wave texture blending two random
colours: ``stripes`` (straight stripes) or ``checks`` (a checkerboard of the same period and angle). On it sit a
few identical **tokens** (light squares with a dark rim), each at the centre of a flat **clearing** of radius ``distance`` filled with the texture's mean colour, and a few
unlabelled **clutter** shapes. A token is ``token-in-stripes`` or ``token-in-checks`` by the kind of its scene, so its
class can only be read from texture at least ``distance`` pixels from its centre.

The design closes the shortcuts a detector could take instead of reaching that far:

- **Own pixels and surroundings.** The kind is a parameter, not a random draw, and both kinds consume the random
  stream identically. Drawn from the same stream, the two kinds give the same image at every pixel closer than
  ``distance`` to a token centre, the same tokens and the same clutter: only the texture outside the clearings differs.
- **Colour statistics.** Both textures are soft-edged square waves between the same two colours, each colour
  covering half the texture, so both kinds have the same mean colour, and the clearings take that mean. Whole-image
  colour means carry no class; the spread differs by a fraction of a grey level (a checkerboard has more edge
  pixels), which is structure, read only where the texture is.
- **Position, density, count and balance.** Token count, sizes and positions, and the clutter, are drawn before and
  independently of both the kind and ``distance``: the same stream at any two distances gives the same labels. The
  dataset alternates the kind with the image index, so the classes are balanced in every split.
- **Scale and orientation.** The kinds differ in the structure of the texture (1-D or 2-D), not in its period or
  angle, so Ultralytics' scale and rotation augmentation cannot turn one kind into the other.

The relation is the general one of scene context (the class of a small object depends on what surrounds it), with
the nearest evidence pushed out to ``distance``. Nothing in it is aligned with any model's grid or regions: positions,
angles, periods and colours are continuous and random.
"""

from __future__ import annotations

import numpy as np

from .scene import TOKEN_FILL, Scene, _draw_clutter, _draw_square_token, _legacy_token, _mark, _place

__all__ = [
    "CHECKS",
    "CONTEXT_CLASS_NAMES",
    "CONTEXT_REFERENCE_SIZE",
    "STRIPES",
    "render_context_scene",
    "token_centres",
]

STRIPES, CHECKS = 0, 1  # scene kinds; every token's class id is its scene's kind
CONTEXT_CLASS_NAMES = ("token-in-stripes", "token-in-checks")
CONTEXT_REFERENCE_SIZE = 256  # token, clutter and texture sizes are in pixels of a 256 px image and scale with it
_TOKENS = (2, 5)  # tokens per image, high excluded: few enough that clearings of 80 px leave texture to see
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
        kind (int): STRIPES or CHECKS, the class of every token.

    Returns:
        (Scene): The image, its tokens (class ``kind``) and ``zone_kinds``, a map that is ``kind`` everywhere.
    """
    if kind not in (STRIPES, CHECKS):
        raise ValueError(f"context scene kind must be {STRIPES} (stripes) or {CHECKS} (checks), got {kind!r}")
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
    clearing = _clearing(size, boxes, distance)
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


def _clearing(size: int, boxes: list, distance: int) -> np.ndarray:
    """Pixels whose centre lies closer than ``distance`` to some token centre."""
    clear = np.zeros((size, size), dtype=bool)
    axis = np.arange(size, dtype=np.float64) + 0.5
    for cx, cy in token_centres(boxes):
        clear |= (axis[:, None] - cy) ** 2 + (axis[None, :] - cx) ** 2 < distance**2
    return clear


def _texture(rng: np.random.Generator, size: int, scale: float, kind: int) -> np.ndarray:
    """The blend weight in [0, 1] of every pixel: stripes, or a checkerboard of the same period and angle.

    Both are square waves between the two colours with edges under a pixel wide, so each covers half the image with
    either colour (mirroring a weight about 0.5 maps either texture onto itself), and a window of a few pixels already
    tells them apart: straight edges only, or corners. Both kinds draw the same four numbers, so the random stream
    after this call does not depend on ``kind``.
    """
    theta, phase, cross_phase = rng.uniform(0, 2 * np.pi, 3)
    period = rng.uniform(*_PERIOD) * scale
    axis = np.arange(size, dtype=np.float64) + 0.5
    xs, ys = axis[None, :], axis[:, None]
    sharpness = (
        period  # edges 2 * period / (2 pi sharpness) = 1/3 px wide: the kinds' spreads differ by ~1% of contrast
    )

    def square(coordinate: np.ndarray, offset: float) -> np.ndarray:
        return np.clip(sharpness * np.sin(coordinate * (2 * np.pi / period) + offset), -1, 1)

    wave = square(xs * np.cos(theta) + ys * np.sin(theta), phase)
    if kind == CHECKS:
        wave = wave * square(-xs * np.sin(theta) + ys * np.cos(theta), cross_phase)
    return (0.5 + 0.5 * wave).astype(np.float32)

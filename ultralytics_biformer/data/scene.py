"""The scenes behind the generated datasets: zones, their textures, and objects that know their own geometry.

A scene is a background of a few large zones (a Voronoi tiling) of two kinds, a periodic texture or a smooth blend of
the same colours, with objects on it: many small identical **tokens**, classed ``token-on-stripes`` or
``token-on-plain`` by the kind of the zone holding them (so only context decides), a few hollow **rings**, and
unlabelled **clutter** of token-like size and colour. :func:`render_scene` draws one and returns, for every labelled
object, all the geometry the tasks need (box, outline and hole, oriented box, keypoints), so that each task's labels
are read off the drawing rather than re-derived.

Two looks (``style``) exist. ``tokens`` is the benchmark's own: light squares with a dark rim, round rings, zones of
straight stripes or linear gradients. ``pretrain`` stands in for another source domain, as COCO does for a user's
data: the same classes with the same meaning, but dark-rimmed yellow diamonds, hexagonal rings, zones of a two-way
plaid or a radial gradient, other sizes, counts and colours, a slight blur and stronger noise.

With ``rotated=True`` every object takes a random orientation: tokens become bars with a dark cap at their front end
and rings become ellipses with a gap at their front, so that an oriented box has a meaningful angle (a square's or a
circle's has none) and keypoints (front, right, back, left) are defined over a full turn.

The drawing has two versions. Version 2 (the default) draws what its labels say: filled shapes cover each pixel by
the fraction of it inside their outline, and the benchmark's rings are labelled with the circle OpenCV actually drew.
A rotated ring's box and oriented box enclose the whole ellipse, the gap at its front included, where its front
keypoint lies.
Version 1 is kept, pixel for pixel, so that results measured on it stay reproducible: its rings' labels are up to 2 px
off the drawn ring, and its filled shapes bleed about 0.7 px past their outlines (``cv2.fillPoly`` with ``LINE_AA``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "PLAIN",
    "REFERENCE_SIZE",
    "RING",
    "STRIPES",
    "STYLES",
    "VERSION",
    "VERSIONS",
    "Scene",
    "SceneObject",
    "render_scene",
]

STRIPES, PLAIN = 0, 1  # zone kinds; a token's class id is the kind of its zone
RING = 2
REFERENCE_SIZE = 320  # object sizes below are in pixels of a REFERENCE_SIZE image and scale with the image
TOKEN_FILL, TOKEN_RIM = (228, 228, 228), (24, 24, 24)
STYLES = ("tokens", "pretrain")
VERSIONS = (1, 2)  # of the drawing; see the module docstring
VERSION = VERSIONS[-1]
KEYPOINT_NAMES = ("front", "right", "back", "left")
# A mirror image turns clockwise into counter-clockwise: front and back stay, right and left swap.
KEYPOINT_FLIP_IDX = (0, 3, 2, 1)

_SUBPIXEL = 4  # cv2 drawing shift: polygon vertices are placed to 1/16 pixel
# Exact fills rasterise at this many samples per pixel side. cv2 also fills the samples its right and bottom edges
# touch, so a shape grows by 1/_SUPERSAMPLE px (and a hole shrinks by as much) there: well under a label's precision.
_SUPERSAMPLE = 16
_SQUARE = np.array([[1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=np.float64)
_DIAMOND = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.float64)
_TRIANGLE = np.array([[1, 0], [-1, 1], [-1, -1]], dtype=np.float64)
_BAR = np.array([[1, -0.3], [1, 0.3], [-1, 0.3], [-1, -0.3]], dtype=np.float64)
_CARDINAL = np.array([0, np.pi / 2, np.pi, 3 * np.pi / 2])  # the keypoint directions, front first, clockwise on screen


@dataclass(frozen=True)
class _Look:
    """Everything a style decides. Sizes are in pixels at REFERENCE_SIZE; ``(low, high)`` counts exclude high."""

    zones: tuple[int, int]
    token_shape: np.ndarray  # unit outline in the object's frame, extremes at +-1 on both axes
    token_cap: np.ndarray  # the dark front end of a rotated token, in the same frame
    token_inset: float  # how far, in rim widths, the light fill is scaled in from the outline
    token_size: tuple[float, float]  # side of an axis-aligned token
    rotated_token_size: tuple[float, float]  # short side of a rotated token; the long side is 1.8-2.6 times it
    token_colours: tuple[tuple, tuple]  # fill, rim
    marker_fill: tuple  # the fill of classify's one marked token, worn by nothing else
    ring_shape: str  # "circle" or "hexagon"
    ring_size: tuple[float, float]  # outer diameter (of the major axis when rotated)
    ring_thickness: float  # rim width as a fraction of the (minor) diameter
    clutter_size: tuple[float, float]
    counts: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]  # rings, clutter, tokens
    blur: float  # Gaussian sigma in pixels at REFERENCE_SIZE, 0 for none
    noise_shift: int  # per-pixel uniform noise is random byte >> noise_shift, centred


_LOOKS = {
    "tokens": _Look(
        zones=(2, 5),
        token_shape=_SQUARE,
        token_cap=np.array([[1, -1], [1, 1], [0.45, 1], [0.45, -1]]),
        token_inset=1.0,
        token_size=(6, 14),
        rotated_token_size=(5, 10),
        token_colours=(TOKEN_FILL, TOKEN_RIM),
        marker_fill=(0, 0, 255),
        ring_shape="circle",
        ring_size=(24, 128),
        ring_thickness=0.1,
        clutter_size=(6, 16),
        counts=((0, 3), (15, 41), (12, 41)),
        blur=0.0,
        noise_shift=4,
    ),
    "pretrain": _Look(
        zones=(3, 7),
        token_shape=_DIAMOND,
        token_cap=np.array([[1, 0], [0.45, 0.55], [0.45, -0.55]]),
        token_inset=1.45,
        token_size=(9, 18),
        rotated_token_size=(7, 12),
        token_colours=((70, 205, 245), (40, 45, 125)),
        marker_fill=(255, 90, 0),
        ring_shape="hexagon",
        ring_size=(32, 150),
        ring_thickness=0.15,
        clutter_size=(8, 18),
        counts=((0, 4), (10, 31), (10, 33)),
        blur=0.7,
        noise_shift=3,
    ),
}
_RING_GAP = np.radians(22)  # half the angle a rotated ring leaves open at its front


@dataclass(frozen=True)
class SceneObject:
    """One labelled object and its geometry, in continuous pixel coordinates (pixel ``i`` spans ``[i, i + 1]``).

    Attributes:
        cls (int): The class id: STRIPES or PLAIN (a token, by its zone) or RING.
        box (tuple[float, float, float, float]): The axis-aligned box ``(x0, y0, x1, y1)``.
        outline (np.ndarray): ``(P, 2)`` outer boundary polygon.
        hole (np.ndarray | None): ``(Q, 2)`` boundary of the hole of a closed ring, else None.
        corners (np.ndarray): ``(4, 2)`` oriented box along the object's own axes, in drawing order.
        keypoints (np.ndarray): ``(4, 2)`` front, right, back and left points: on a token's outline, on a ring's
            centre line. Front is the capped end or the ring's gap when the scene is rotated.
    """

    cls: int
    box: tuple[float, float, float, float]
    outline: np.ndarray
    hole: np.ndarray | None
    corners: np.ndarray
    keypoints: np.ndarray


@dataclass(frozen=True)
class Scene:
    """A drawn scene.

    Attributes:
        image (np.ndarray): The BGR uint8 image.
        objects (list[SceneObject]): Its labelled objects (the marked token, if any, is not among them).
        zone_kinds (np.ndarray): ``(size, size)`` uint8, the kind of zone (STRIPES or PLAIN) under every pixel.
        marked (int | None): The kind of the zone under the one marked token (classify's label), or None.
        marked_box (tuple[int, int, int, int] | None): The pixels ``(x0, y0, x1, y1)`` the marked token lies in.
    """

    image: np.ndarray
    objects: list[SceneObject]
    zone_kinds: np.ndarray
    marked: int | None = None
    marked_box: tuple[int, int, int, int] | None = None


def render_scene(
    rng: np.random.Generator,
    size: int,
    style: str = "tokens",
    rotated: bool = False,
    marked: int | None = None,
    version: int = VERSION,
) -> Scene:
    """Draw one ``size x size`` scene.

    ``render_scene(rng, size)`` draws the detection benchmark: the same stream gives the same pixels. Both versions
    draw the benchmark's own images identically; version 2 changes its rings' labels and every other look's pixels.

    Args:
        rng (np.random.Generator): The image's random stream; the same stream always draws the same scene.
        size (int): Image width and height in pixels.
        style (str): One of STYLES.
        rotated (bool): Give every object a random orientation and a marked front.
        marked (int, optional): Also draw one token in a marker colour, on a zone of this kind (STRIPES or PLAIN).
        version (int): The drawing's version, one of VERSIONS.

    Returns:
        (Scene): The image and its objects.
    """
    if style not in _LOOKS:
        raise ValueError(f"unknown style {style!r}; accepted: {', '.join(STYLES)}")
    if version not in VERSIONS:
        raise ValueError(f"unknown drawing version {version!r}; accepted: {', '.join(map(str, VERSIONS))}")
    look = _LOOKS[style]
    fill = _fill_antialiased if version == 1 else _fill_exact
    scale = size / REFERENCE_SIZE
    occupied = np.zeros((size, size), dtype=bool)
    if marked is None:
        zones, kinds = _zones(rng, size, *look.zones)
    else:  # the marked token's place is chosen before anything else, so a free spot in a zone of its kind exists
        zones, kinds, spot = _zones_with_spot(rng, size, look, scale, marked, rotated)
    texture = _background if style == "tokens" else _plaid_background
    image = np.clip(texture(rng, zones, kinds, scale), 0, 255).astype(np.uint8)
    legacy = style == "tokens" and not rotated
    if marked is not None:  # not a labelled object: classify labels the image, by this token's zone
        box, centre, a, b, theta, rim = spot
        if legacy:  # drawn like its neighbours, so that only its colour marks it
            _draw_square_token(image, box, look.marker_fill)
            _mark(occupied, box)
        else:
            token = (marked, box, centre, a, b, theta, rim)
            _draw_generic_token(image, occupied, *token, look, rotated, fill, look.marker_fill)
    if legacy:  # the benchmark's own drawing, kept call for call
        ring = _predicted_ring if version == 1 else _drawn_ring
        objects = [ring(*drawn, size) for drawn in _draw_rings(rng, image, occupied, scale)]
        _draw_clutter(rng, image, occupied, scale)
        objects += [_legacy_token(cls, box) for cls, box in _draw_tokens(rng, image, occupied, zones, kinds, scale)]
    else:
        objects = _draw_generic_rings(rng, image, occupied, scale, look, rotated, fill)
        _draw_generic_clutter(rng, image, occupied, scale, look, rotated, fill)
        objects += _draw_generic_tokens(rng, image, occupied, zones, kinds, scale, look, rotated, fill)
    if look.blur:
        image = cv2.GaussianBlur(image, (0, 0), look.blur * max(scale, 0.5))
    noise = np.frombuffer(rng.bytes(image.size), dtype=np.uint8).reshape(image.shape) >> look.noise_shift
    centre = 1 << (7 - look.noise_shift)  # half the noise range, so the noise has zero mean
    image = np.clip(image.astype(np.int16) + noise - centre, 0, 255).astype(np.uint8)
    return Scene(image, objects, kinds[zones].astype(np.uint8), marked, None if marked is None else spot[0])


# --- zones and textures ---------------------------------------------------------------------------------------------


def _zones(rng: np.random.Generator, size: int, low: int = 2, high: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A Voronoi tiling into ``low`` to ``high - 1`` zones: the zone-id map and each zone's kind, both kinds present."""
    n = int(rng.integers(low, high))
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


def _plaid_background(rng: np.random.Generator, zones: np.ndarray, kinds: np.ndarray, scale: float) -> np.ndarray:
    """The pretrain look: periodic zones are a two-way plaid, smooth ones a radial blend of the same colours."""
    size = zones.shape[0]
    xs, ys = np.arange(size, dtype=np.float32)[None, :], np.arange(size, dtype=np.float32)[:, None]
    a, b = rng.uniform(25, 230, (2, len(kinds), 3)).astype(np.float32)
    t = np.empty((size, size), dtype=np.float32)
    for zone, kind in enumerate(kinds):
        if kind == STRIPES:
            t_zone = np.full((size, size), 0.5, dtype=np.float32)
            theta = rng.uniform(0, np.pi)
            for turn in (0.0, rng.uniform(np.pi / 3, 2 * np.pi / 3)):  # two crossing waves
                along = xs * np.float32(np.cos(theta + turn)) + ys * np.float32(np.sin(theta + turn))
                phase = np.float32(rng.uniform(0, 2 * np.pi))
                t_zone += 0.25 * np.sin(along * np.float32(2 * np.pi / (rng.uniform(22, 44) * scale)) + phase)
        else:  # a radial blend around a random point, possibly outside the image: locally smooth
            cx, cy = rng.uniform(-0.5, 1.5, 2) * size
            distance = np.sqrt((xs - np.float32(cx)) ** 2 + (ys - np.float32(cy)) ** 2)
            t_zone = np.clip(distance / np.float32(rng.uniform(1, 2) * size) + np.float32(rng.uniform(-0.4, 0.2)), 0, 1)
        np.copyto(t, t_zone, where=zones == zone)
    a, b = np.take(a, zones, axis=0), np.take(b, zones, axis=0)
    return a + t[..., None] * (b - a)


# --- placement ------------------------------------------------------------------------------------------------------


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


def _one_zone(zones: np.ndarray, box: tuple[int, int, int, int]) -> int | None:
    """The zone holding all of ``box``, or None when the box straddles a border (its class would be ambiguous)."""
    x0, y0, x1, y1 = box
    zone_ids = np.unique(zones[y0:y1, x0:x1])
    return int(zone_ids[0]) if len(zone_ids) == 1 else None


# --- the benchmark's own drawing (style "tokens", axis-aligned); its random draws and calls must not change ---------


def _draw_rings(rng: np.random.Generator, image: np.ndarray, occupied: np.ndarray, scale: float) -> list:
    """0-2 hollow circles, 24-128 px across at the reference size; returns ``(box, centre, radius, thickness)``."""
    rings = []
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
        centre, radius = (round(x0 + r - 0.5), round(y0 + r - 0.5)), round(r - thickness / 2)
        cv2.circle(image, centre, radius, colour, thickness, cv2.LINE_AA)
        _mark(occupied, box)
        rings.append((box, centre, radius, thickness))
    return rings


def _draw_clutter(
    rng: np.random.Generator, image: np.ndarray, occupied: np.ndarray, scale: float, count: tuple[int, int] = (15, 41)
) -> None:
    """``count`` (15-40) unlabelled token-sized shapes: discs, triangles, crosses and hollow squares."""
    for _ in range(int(rng.integers(*count))):
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
        zone = _one_zone(zones, box)
        if zone is None:
            continue
        _draw_square_token(image, box, TOKEN_FILL)
        _mark(occupied, box)
        boxes.append((int(kinds[zone]), box))
    return boxes


def _draw_square_token(image: np.ndarray, box: tuple[int, int, int, int], fill) -> None:
    x0, y0, x1, y1 = box
    cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), fill, -1)
    cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), TOKEN_RIM, max(1, (x1 - x0) // 6))


def _legacy_token(cls: int, box: tuple[int, int, int, int]) -> SceneObject:
    x0, y0, x1, y1 = box
    outline = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    centre, half = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), (x1 - x0) / 2
    keypoints = centre + half * np.stack([np.cos(_CARDINAL), np.sin(_CARDINAL)], 1)
    return SceneObject(cls, box, outline, None, outline, keypoints)


def _predicted_ring(box, centre, radius, thickness, size) -> SceneObject:
    """Version 1: the placement box, and the circle cv2 was asked for (it draws about a pixel wider)."""
    c = np.array(centre, dtype=np.float64) + 0.5
    outer = np.clip(c + (radius + thickness / 2) * _unit_ring("circle"), 0, size)
    inner = c + max(radius - thickness / 2, 0.5) * _unit_ring("circle")
    keypoints = c + radius * np.stack([np.cos(_CARDINAL), np.sin(_CARDINAL)], 1)
    x0, y0, x1, y1 = box
    corners = np.array([[x1, y0], [x1, y1], [x0, y1], [x0, y0]], dtype=np.float64)
    return SceneObject(RING, box, outer, inner, corners, keypoints)


def _drawn_ring(box, centre, radius, thickness, size) -> SceneObject:
    """Version 2: the ring cv2 drew, measured from its coverage, since its thick anti-aliased stroke is not the one
    asked for (about a pixel wider, and lopsided on small circles).

    An annulus of radii ``r_in < r_out`` covers ``pi (r_out^2 - r_in^2)`` and its points lie at a mean squared
    distance ``(r_out^2 + r_in^2) / 2`` from its centre, the centroid of the coverage; two equations, two radii.
    """
    drawn = np.zeros((size, size), dtype=np.uint8)
    cv2.circle(drawn, centre, radius, 255, thickness, cv2.LINE_AA)
    ys, xs = np.nonzero(drawn)
    coverage = drawn[ys, xs] / 255.0
    points = np.stack([xs, ys], 1) + 0.5  # pixel centres
    area = coverage.sum()
    c = coverage @ points / area
    mean_square = coverage @ ((points - c) ** 2).sum(1) / area
    r_out = np.sqrt(mean_square + area / (2 * np.pi))
    r_in = np.sqrt(max(mean_square - area / (2 * np.pi), 0.25))
    outer = np.clip(c + r_out * _unit_ring("circle"), 0, size)
    inner = c + r_in * _unit_ring("circle")
    keypoints = c + (r_out + r_in) / 2 * np.stack([np.cos(_CARDINAL), np.sin(_CARDINAL)], 1)
    x0, y0, x1, y1 = _bounds(outer)
    corners = np.array([[x1, y0], [x1, y1], [x0, y1], [x0, y0]], dtype=np.float64)
    return SceneObject(RING, (x0, y0, x1, y1), outer, inner, corners, keypoints)


# --- the generic drawing: the pretrain look, and rotated objects in either look -------------------------------------


def _ring_radius(shape: str, phi: np.ndarray) -> np.ndarray:
    """The unit ring's radius towards ``phi``: 1 for a circle; a hexagon with a vertex at the front."""
    if shape == "circle":
        return np.ones_like(phi)
    return np.cos(np.pi / 6) / np.cos(np.mod(phi, np.pi / 3) - np.pi / 6)


def _unit_ring(shape: str, phi: np.ndarray | None = None) -> np.ndarray:
    phi = np.arange(48) * (2 * np.pi / 48) if phi is None else phi  # 48 steps keep every hexagon vertex
    return _ring_radius(shape, phi)[:, None] * np.stack([np.cos(phi), np.sin(phi)], 1)


def _frame(unit: np.ndarray, centre, a: float, b: float, theta: float) -> np.ndarray:
    """Map ``unit`` points of an object's frame (front along +x) to the image: scaled by ``(a, b)``, turned by theta."""
    u = np.array([np.cos(theta), np.sin(theta)])
    v = np.array([-np.sin(theta), np.cos(theta)])  # 90 degrees clockwise from u on screen, where y points down
    return np.asarray(centre, dtype=np.float64) + unit[:, :1] * a * u + unit[:, 1:] * b * v


def _fill_exact(image: np.ndarray, polygons: list[np.ndarray], colour) -> None:
    """Fill polygons given in continuous coordinates, blending each pixel by the fraction of it they cover.

    Several polygons fill their symmetric difference (holes). Coverage is counted on a grid of _SUPERSAMPLE^2 samples
    per pixel over the polygons' bounds only, so the cost grows with the shape, not the image.
    """
    height, width = image.shape[:2]
    corners = np.concatenate(polygons)
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, (width, height))
    if x1 <= x0 or y1 <= y0:
        return
    samples = np.zeros(((y1 - y0) * _SUPERSAMPLE, (x1 - x0) * _SUPERSAMPLE), dtype=np.uint8)
    # A sample's cv2 coordinate is its index; its centre lies half a sample past the index in continuous terms.
    points = [np.round(((p - (x0, y0)) * _SUPERSAMPLE - 0.5) * (1 << _SUBPIXEL)).astype(np.int32) for p in polygons]
    cv2.fillPoly(samples, points, 255, cv2.LINE_8, _SUBPIXEL)
    coverage = cv2.resize(samples, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA) / np.float32(255)
    region = image[y0:y1, x0:x1].astype(np.float32)
    coverage = coverage.reshape(coverage.shape + (1,) * (region.ndim - 2))  # one weight for all channels
    region += coverage * (np.asarray(colour, dtype=np.float32) - region)
    image[y0:y1, x0:x1] = np.round(region).astype(np.uint8)


def _fill_antialiased(image: np.ndarray, polygons: list[np.ndarray], colour) -> None:
    """Version 1's fill: cv2's anti-aliased ``fillPoly``, which also colours every pixel its outline touches."""
    points = [np.round((p - 0.5) * (1 << _SUBPIXEL)).astype(np.int32) for p in polygons]
    cv2.fillPoly(image, points, colour, cv2.LINE_AA, _SUBPIXEL)


def _fit(rng, occupied, corners: np.ndarray, margin: int):
    """Place a shape whose extent is ``corners`` (relative to its centre); returns ``(box, centre)`` or None."""
    low, high = corners.min(0), corners.max(0)
    w, h = (int(np.ceil(v)) for v in high - low)
    box = _place(rng, occupied, w, h, margin)
    if box is None:
        return None
    centre = np.array(box[:2], dtype=np.float64) - low + (np.array([w, h]) - (high - low)) / 2
    return box, centre


def _token_geometry(rng, look: _Look, scale: float, rotated: bool):
    """Draw a token's size and turn: ``(a, b, theta, rim)``, half length along its front, half width, angle, rim."""
    if rotated:
        s = _scaled(rng, *look.rotated_token_size, scale)
        return s / 2 * rng.uniform(1.8, 2.6), s / 2, rng.uniform(0, 2 * np.pi), max(1.0, s / 6)
    s = _scaled(rng, *look.token_size, scale)
    return s / 2, s / 2, 0.0, max(1.0, s / 6)


def _draw_generic_token(
    image, occupied, cls, box, centre, a, b, theta, rim, look, rotated, fill, fill_colour=None
) -> SceneObject:
    """Draw a token (rim, then its fill, then its dark front cap when rotated) and return its geometry."""
    token_fill, rim_colour = look.token_colours
    outline = _frame(look.token_shape, centre, a, b, theta)
    fill(image, [outline], rim_colour)
    inset = rim * look.token_inset
    if a > inset and b > inset:
        fill(image, [_frame(look.token_shape, centre, a - inset, b - inset, theta)], fill_colour or token_fill)
    if rotated:
        fill(image, [_frame(look.token_cap, centre, a, b, theta)], rim_colour)
    _mark(occupied, box)
    corners = _frame(_SQUARE, centre, a, b, theta)
    keypoints = _frame(np.stack([np.cos(_CARDINAL), np.sin(_CARDINAL)], 1), centre, a, b, theta)
    return SceneObject(cls, _bounds(outline), outline, None, corners, keypoints)


def _bounds(points: np.ndarray) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    return float(x0), float(y0), float(x1), float(y1)


def _draw_generic_tokens(rng, image, occupied, zones, kinds, scale, look, rotated, fill) -> list[SceneObject]:
    """Identical tokens, each labelled by the kind of the zone holding all of it."""
    objects = []
    for _ in range(int(rng.integers(*look.counts[2]))):
        a, b, theta, rim = _token_geometry(rng, look, scale, rotated)
        placed = _fit(rng, occupied, _frame(_SQUARE, (0, 0), a, b, theta), margin=1)
        if placed is None:
            continue
        box, centre = placed
        zone = _one_zone(zones, box)
        if zone is None:
            continue
        objects.append(
            _draw_generic_token(image, occupied, int(kinds[zone]), box, centre, a, b, theta, rim, look, rotated, fill)
        )
    return objects


def _draw_generic_rings(rng, image, occupied, scale, look, rotated, fill) -> list[SceneObject]:
    """A few hollow rings; rotated ones are ellipses (or stretched hexagons) with a gap at the front."""
    objects = []
    for _ in range(int(rng.integers(*look.counts[0]))):
        d = _scaled(rng, *look.ring_size, scale, minimum=8)
        big, small = d / 2, d / 2 * (rng.uniform(0.55, 0.85) if rotated else 1.0)  # outer half axes
        t = max(2.0, 2 * small * look.ring_thickness)
        theta = rng.uniform(0, 2 * np.pi) if rotated else 0.0
        closed = _unit_ring(look.ring_shape)
        # The oriented box encloses the closed outline, so it stays in the image wherever the ring is placed.
        extent = np.abs(closed).max(0)
        corners_rel = _frame(_SQUARE * extent, (0, 0), big, small, theta)
        placed = _fit(rng, occupied, corners_rel, margin=2)
        if placed is None:
            continue
        box, centre = placed
        colour = (
            tuple(float(c) for c in rng.choice([0, 255], 3)) if rng.random() < 0.5 else tuple(rng.uniform(0, 255, 3))
        )
        outer = _frame(closed, centre, big, small, theta)
        inner = _frame(closed, centre, big - t, small - t, theta)
        if rotated:  # a C: the outer arc one way, the inner arc back, one polygon
            arc = _unit_ring(look.ring_shape, np.linspace(_RING_GAP, 2 * np.pi - _RING_GAP, 45))
            outer_arc = _frame(arc, centre, big, small, theta)
            inner_arc = _frame(arc, centre, big - t, small - t, theta)
            fill(image, [np.concatenate([outer_arc, inner_arc[::-1]])], colour)
        else:
            fill(image, [outer, inner], colour)
        _mark(occupied, box)
        middle = _unit_ring(look.ring_shape, _CARDINAL)
        keypoints = _frame(middle, centre, big - t / 2, small - t / 2, theta)
        corners = corners_rel + centre
        objects.append(SceneObject(RING, _bounds(outer), outer, None if rotated else inner, corners, keypoints))
    return objects


def _draw_generic_clutter(rng, image, occupied, scale, look, rotated, fill) -> None:
    """Unlabelled token-sized shapes: discs, triangles, crosses and hollow token outlines, turned when rotated."""
    fill_colour, rim_colour = look.token_colours
    disc = _unit_ring("circle")[::3]
    for _ in range(int(rng.integers(*look.counts[1]))):
        s = _scaled(rng, *look.clutter_size, scale)
        a, b = s / 2 * (rng.uniform(1.0, 2.6) if rotated else 1.0), s / 2
        theta = rng.uniform(0, 2 * np.pi) if rotated else 0.0
        placed = _fit(rng, occupied, _frame(_SQUARE, (0, 0), a, b, theta), margin=1)
        if placed is None:
            continue
        box, centre = placed
        light = rng.random() < 0.6  # most clutter wears the token's colours, so colour alone is not enough
        inside = fill_colour if light else tuple(rng.uniform(0, 255, 3))
        rim = rim_colour if light else tuple(rng.uniform(0, 255, 3))
        width = max(1.0, s / 6)
        shape = int(rng.integers(0, 4))
        if shape in (0, 1):  # disc or triangle, rimmed like a token
            unit = disc if shape == 0 else _TRIANGLE
            fill(image, [_frame(unit, centre, a, b, theta)], rim)
            if a > width and b > width:
                fill(image, [_frame(unit, centre, a - width, b - width, theta)], inside)
        elif shape == 2:  # cross
            fill(image, [_frame(_BAR, centre, a, b, theta)], inside)
            fill(image, [_frame(_BAR[:, ::-1], centre, a, b, theta)], inside)
        else:  # the token's outline, hollow
            outer = _frame(look.token_shape, centre, a, b, theta)
            inner = _frame(look.token_shape, centre, max(a - width, 0.5), max(b - width, 0.5), theta)
            fill(image, [outer, inner], inside)
        _mark(occupied, box)


def _zones_with_spot(rng, size, look, scale, kind, rotated):
    """Zones with room for the marked token inside one zone of ``kind``: ``(zones, kinds, spot)``.

    ``spot`` holds the token's ``(box, centre, a, b, theta, rim)``. Zones are drawn again in the rare case that no
    zone of that kind has room (a sliver of a Voronoi cell in a tiny image).
    """
    a, b, theta, rim = _token_geometry(rng, look, scale, rotated)
    corners = _frame(_SQUARE, (0, 0), a, b, theta)
    low, high = corners.min(0), corners.max(0)
    w, h = (int(np.ceil(v)) for v in high - low)
    if w + 2 > size or h + 2 > size:
        raise ValueError(f"a {size}px image is too small for a token")
    kernel = np.ones((h, w), np.uint8)
    for _ in range(100):
        zones, kinds = _zones(rng, size, *look.zones)
        z = zones.astype(np.uint8)
        # Window minimum and maximum of the zone ids, indexed by the window's top-left pixel: equal means one zone.
        lo = cv2.erode(z, kernel, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
        hi = cv2.dilate(z, kernel, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
        ok = (lo == hi) & (kinds[lo] == kind)
        ok[:1, :] = ok[:, :1] = False  # keep the margin of one pixel that every token has
        ok[size - h :, :] = ok[:, size - w :] = False
        candidates = np.argwhere(ok)
        if len(candidates):
            y0, x0 = (int(v) for v in candidates[rng.integers(len(candidates))])
            box = (x0, y0, x0 + w, y0 + h)
            centre = np.array([x0, y0], dtype=np.float64) - low + (np.array([w, h]) - (high - low)) / 2
            return zones, kinds, (box, centre, a, b, theta, rim)
    raise RuntimeError(f"found no zone of kind {kind} with room for a token in 100 tilings")

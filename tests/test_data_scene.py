"""Tests of ``ultralytics_biformer.data.scene``: what the scenes draw, and the labels that trace it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ultralytics_biformer.data import scene
from ultralytics_biformer.data.scene import render_scene

pytestmark = pytest.mark.usefixtures("private_cache")  # every test gets its own empty dataset cache


STYLES = scene.STYLES  # the looks every task is drawn in; the context style has tests of its own (test_data_context.py)


TOKEN_CLASSES = (scene.STRIPES, scene.PLAIN)


def _polygon_area_and_centroid(polygon: np.ndarray) -> tuple[float, np.ndarray]:
    x, y = polygon.T
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2
    centroid = np.array([((x + np.roll(x, -1)) * cross).sum(), ((y + np.roll(y, -1)) * cross).sum()]) / (6 * area)
    return abs(area), centroid


def test_an_exact_fill_covers_its_polygon_and_no_more():
    """Version 2 fills cover each pixel by the fraction inside the polygon; version 1's bled ~0.7 px past the edge."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[:64, :64] + 0.5  # pixel centres
    for _ in range(40):
        a, b = rng.uniform(1.5, 12, 2)
        unit = scene._SQUARE if rng.random() < 0.5 else scene._unit_ring("hexagon")
        polygon = scene._frame(unit, rng.uniform(20, 44, 2), a, b, rng.uniform(0, 2 * np.pi))
        area, centroid = _polygon_area_and_centroid(polygon)
        perimeter = np.linalg.norm(polygon - np.roll(polygon, 1, 0), axis=1).sum()
        drawn = {}
        for name, fill in (("exact", scene._fill_exact), ("v1", scene._fill_antialiased)):
            mask = np.zeros((64, 64), dtype=np.uint8)
            fill(mask, [polygon], 255)
            coverage = mask / 255.0
            drawn[name] = coverage.sum(), np.array([(coverage * xs).sum(), (coverage * ys).sum()]) / coverage.sum()
        drawn_area, drawn_centroid = drawn["exact"]
        assert abs(drawn_area - area) <= perimeter / 20, (drawn_area, area)
        assert np.abs(drawn_centroid - centroid).max() <= 0.05
        assert drawn["v1"][0] - area > perimeter / 5  # the bleed this replaces: the test tells the two apart
    # A hole: two polygons fill their difference.
    mask = np.zeros((64, 64), dtype=np.uint8)
    outer, inner = (scene._frame(scene._SQUARE, (32, 32), r, r, 0.0) for r in (20, 10))
    scene._fill_exact(mask, [outer, inner], 255)
    assert mask[32, 32] == 0 and mask[32, 16] == 255 and abs(mask.sum() / 255 - (40**2 - 20**2)) <= 160 / 20


def _ring_pixel_bounds(monkeypatch, version: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per benchmark ring of ``count`` scenes: its label box and the box of the pixels its own circle covers half of."""
    calls = []
    circle = cv2.circle

    def recording_circle(image, *args, **kwargs):
        if image.ndim == 3:  # the scene's own drawing, not a measurement on a blank mask
            calls.append(args)
        return circle(image, *args, **kwargs)

    monkeypatch.setattr(scene.cv2, "circle", recording_circle)
    pairs = []
    for index in range(count):
        size = (96, 256, 320)[index % 3]
        calls.clear()
        drawn = render_scene(np.random.default_rng([8, 0, index]), size, version=version)
        rings = [obj for obj in drawn.objects if obj.cls == scene.RING]
        ring_calls = [c for c in calls if c[-1] == cv2.LINE_AA and c[-2] >= 2][: len(rings)]  # rings come first
        for obj, (centre, radius, _, thickness, line) in zip(rings, ring_calls, strict=True):
            mask = circle(np.zeros((size, size), dtype=np.uint8), centre, radius, 255, thickness, line)
            ys, xs = np.nonzero(mask >= 128)
            pairs.append((np.array(obj.box), np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)))
    return pairs


def test_benchmark_ring_labels_fit_the_drawn_ring(monkeypatch):
    """A ring's label box lies within a pixel of the pixels it covers at least half of (version 1: up to 2 px off)."""
    pairs = _ring_pixel_bounds(monkeypatch, 2, 45)
    assert len(pairs) >= 20
    error = np.abs(np.array([label - pixels for label, pixels in pairs]))
    assert error.max() <= 1.0 and error.mean() <= 0.35, (error.max(), error.mean())
    old = np.abs(np.array([label - pixels for label, pixels in _ring_pixel_bounds(monkeypatch, 1, 45)]))
    assert old.max() >= 1.5  # the error this fixes, on the same scenes


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("rotated", [False, True])
def test_every_token_lies_in_one_zone_of_its_class(style, rotated):
    seen = set()
    for index in range(6):
        drawn = render_scene(np.random.default_rng([2, 0, index]), 128, style, rotated)
        for obj in drawn.objects:
            if obj.cls in TOKEN_CLASSES:
                (x0, y0), (x1, y1) = np.floor(obj.box[:2]).astype(int), np.ceil(obj.box[2:]).astype(int)
                assert (drawn.zone_kinds[y0:y1, x0:x1] == obj.cls).all()
                seen.add(obj.cls)
    assert seen == set(TOKEN_CLASSES)


@pytest.mark.parametrize("style", STYLES)
def test_classify_label_is_the_zone_under_the_one_marked_token(style):
    look = scene._LOOKS[style]
    for index in range(8):
        kind = index % 2
        drawn = render_scene(np.random.default_rng([4, 0, index]), 256, style, marked=kind)
        x0, y0, x1, y1 = drawn.marked_box
        assert drawn.marked == kind and (drawn.zone_kinds[y0:y1, x0:x1] == kind).all()
        centre = drawn.image[(y0 + y1) // 2, (x0 + x1) // 2].astype(float)
        fill = np.array(look.token_colours[0], dtype=float)
        assert np.abs(centre - look.marker_fill).max() < np.abs(centre - fill).max()  # it wears the marker colour

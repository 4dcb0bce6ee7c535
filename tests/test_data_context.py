"""Tests of ``ultralytics_biformer.data.context``: the context-range benchmark; its one knob, its determinism, and the
shortcuts it closes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ultralytics_biformer.data.context import (
    CONTEXT_CLASS_NAMES,
    PLAIN,
    STRIPES,
    _texture,
    clearing_mask,
    render_context_scene,
    token_centres,
)
from ultralytics_biformer.data.presets import PRESET_SPECS
from ultralytics_biformer.data.synthetic import DatasetSpec, context_scene, generate_dataset

pytestmark = pytest.mark.usefixtures("private_cache")  # every test gets its own empty dataset cache

SIZE = 128
DISTANCES = (0, 8, 24, 48)


def _scene(index: int, distance: int, kind: int, size: int = SIZE):
    return render_context_scene(np.random.default_rng([7, 0, index]), size, distance, kind)


def _distance_to_tokens(scene, size: int) -> np.ndarray:
    """Per pixel, the distance of its centre to the nearest token centre."""
    axis = np.arange(size) + 0.5
    centres = token_centres([o.box for o in scene.objects])
    return np.min([np.hypot(axis[None, :] - cx, axis[:, None] - cy) for cx, cy in centres], axis=0)


def _labels(scene) -> list[tuple]:
    return [(o.cls, o.box) for o in scene.objects]


@pytest.mark.parametrize("distance", DISTANCES)
def test_the_class_changes_no_pixel_closer_than_distance_to_a_token(distance):
    """Own pixels and surroundings: both kinds drawn from one stream are identical within ``distance`` of every token
    centre (a window of radius d/2 in particular), and differ beyond it, where the evidence lies."""
    differing_far = 0
    for index in range(12):
        stripes, plain = _scene(index, distance, STRIPES), _scene(index, distance, PLAIN)
        assert [box for _, box in _labels(stripes)] == [box for _, box in _labels(plain)]
        assert {cls for cls, _ in _labels(stripes)} <= {STRIPES} and {cls for cls, _ in _labels(plain)} <= {PLAIN}
        near = _distance_to_tokens(stripes, SIZE) < distance
        differs = (stripes.image != plain.image).any(-1)
        assert not differs[near].any(), f"scene {index}: the class shows within {distance} px of a token"
        differing_far += differs[~near].sum()
    assert differing_far > 0.3 * 12 * SIZE * SIZE * (1 if distance < 24 else 0.3)  # the evidence is there


def test_the_evidence_begins_at_distance():
    """The closest pixel that tells the kinds apart lies at the clearing's edge, not farther."""
    for distance in (8, 24):
        gaps = []
        for index in range(8):
            stripes, plain = _scene(index, distance, STRIPES), _scene(index, distance, PLAIN)
            differs = (stripes.image != plain.image).any(-1)
            gaps.append(_distance_to_tokens(stripes, SIZE)[differs].min())
        assert distance <= min(gaps) < distance + 2, (distance, gaps)


def test_distance_is_the_only_knob():
    """Token count, sizes and positions, clutter and colours do not depend on the distance: one stream gives the same
    labels at every distance, and the same pixels wherever no clearing of either distance reaches."""
    for index in range(10):
        scenes = [_scene(index, d, index % 2) for d in DISTANCES]
        assert all(_labels(s) == _labels(scenes[0]) for s in scenes)
        near, far = scenes[1], scenes[-1]
        outside = _distance_to_tokens(near, SIZE) >= DISTANCES[-1]
        assert np.array_equal(near.image[outside], far.image[outside])


def test_class_balance_and_count_do_not_depend_on_distance(tmp_path):
    counts = {}
    for distance in (8, 48):
        spec = DatasetSpec(seed=1, train=6, val=2, imgsz=96, style="context", distance=distance)
        root = generate_dataset(spec, tmp_path / f"d{distance}").parent
        rows = [line.split() for f in sorted((root / "labels").rglob("*.txt")) for line in f.read_text().splitlines()]
        counts[distance] = [row[0] for row in rows]
        images = sorted((root / "images" / "train").iterdir())
        assert [p.suffix for p in images] == [".png"] * 6  # lossless: no JPEG block carries texture inward
    assert counts[8] == counts[48]
    assert set(counts[8]) == {"0", "1"}


def test_both_kinds_have_the_same_mean_colour():
    """An image's mean colour carries no class: over many scenes both kinds average the same blend of the same
    colours (the weight's mean is 0.5 for both), and their scene means spread alike."""
    means = {kind: [] for kind in (STRIPES, PLAIN)}
    for index in range(200):
        for kind in means:
            means[kind].append(_texture(np.random.default_rng([9, index]), 64, 0.25, kind).mean())
    assert abs(np.mean(means[STRIPES]) - 0.5) < 0.02 and abs(np.mean(means[PLAIN]) - 0.5) < 0.03
    images = {kind: [_scene(i, 24, kind).image.mean() for i in range(60)] for kind in (STRIPES, PLAIN)}
    assert abs(np.mean(images[STRIPES]) - np.mean(images[PLAIN])) < 4  # grey levels, of a spread of about 30


def test_the_kinds_are_told_apart_within_a_few_pixels():
    """The evidence is local once reached: across 8 px, stripes swing through most of the blend and plain barely
    moves."""
    swings = {kind: [] for kind in (STRIPES, PLAIN)}
    for index in range(20):
        for kind in swings:
            weight = _texture(np.random.default_rng([4, index]), 256, 1.0, kind)
            windows = [weight[y : y + 8, x : x + 8] for y in range(0, 256, 32) for x in range(0, 256, 32)]
            swings[kind].append(np.mean([np.ptp(window) for window in windows]))
    assert min(swings[STRIPES]) > 0.5 and max(swings[PLAIN]) < 0.06


def test_generation_is_deterministic_and_loads_in_ultralytics(tmp_path):
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    from ultralytics_biformer.cli.offline import offline_ultralytics

    spec = DatasetSpec(seed=2, train=6, val=2, imgsz=96, style="context", distance=24)
    first, second = generate_dataset(spec, tmp_path / "a"), generate_dataset(spec, tmp_path / "b")
    files = [{str(p.relative_to(f.parent)): p.read_bytes() for p in f.parent.rglob("*.*")} for f in (first, second)]
    assert files[0] == files[1]
    offline_ultralytics()
    data = check_det_dataset(str(first))
    assert list(data["names"].values()) == list(CONTEXT_CLASS_NAMES)
    dataset = build_yolo_dataset(get_cfg(overrides={"imgsz": 96}), data["train"], 4, data, "val")
    lines = sum(len(p.read_text().splitlines()) for p in (first.parent / "labels" / "train").glob("*.txt"))
    assert len(dataset.labels) == spec.train and sum(len(label["cls"]) for label in dataset.labels) == lines > 0


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"style": "context"}, "needs a distance in pixels"),
        ({"style": "context", "distance": 8, "task": "pose"}, "detection labels only"),
        ({"style": "context", "distance": -1}, "distance must be a non-negative integer"),
        ({"style": "context", "distance": 2.5}, "distance must be a non-negative integer"),
        ({"style": "context", "distance": 100}, "at most imgsz"),
        ({"distance": 8}, "applies to style context only"),
    ],
)
def test_spec_refuses_a_bad_context_spec(changes, message):
    with pytest.raises(ValueError, match=message):
        replace(DatasetSpec(imgsz=96), **changes)


def test_scene_refuses_a_bad_kind_or_distance():
    with pytest.raises(ValueError, match="kind must be 0 .stripes. or 1 .plain., got 2"):
        render_context_scene(np.random.default_rng(0), 64, 8, 2)
    with pytest.raises(ValueError, match="non-negative integer of pixels, got True"):
        render_context_scene(np.random.default_rng(0), 64, True, 0)


def test_folders_differ_by_distance():
    names = [replace(PRESET_SPECS["context"], distance=d).folder_name for d in DISTANCES]
    assert len(set(names)) == len(DISTANCES) and all(n.endswith(f"-d{d}") for n, d in zip(names, DISTANCES))


def test_context_scene_redraws_any_written_image_and_its_clearings(tmp_path):
    import cv2

    spec = DatasetSpec(seed=3, train=2, val=3, imgsz=64, style="context", distance=10)
    root = generate_dataset(spec, tmp_path).parent
    for split, count in (("train", 2), ("val", 3)):
        for index in range(count):
            scene = context_scene(spec, split, index)
            written = cv2.imread(str(root / "images" / split / f"{index:06d}.png"))
            assert np.array_equal(scene.image, written), (split, index)
            boxes = [o.box for o in scene.objects]
            clearing = clearing_mask(spec.imgsz, boxes, spec.distance)
            x, y = token_centres(boxes)[0]
            assert clearing[int(y), int(x)] and not clearing.all()


@pytest.mark.parametrize(
    ("spec", "split", "index", "message"),
    [
        (DatasetSpec(train=2, val=2, imgsz=64), "val", 0, "style context"),
        (DatasetSpec(train=2, val=2, imgsz=64, style="context", distance=8), "test", 0, "split must be one of"),
        (DatasetSpec(train=2, val=2, imgsz=64, style="context", distance=8), "val", 2, "from 0 to 1"),
    ],
)
def test_context_scene_refuses_what_the_dataset_does_not_hold(spec, split, index, message):
    with pytest.raises(ValueError, match=message):
        context_scene(spec, split, index)

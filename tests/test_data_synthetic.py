"""Tests of ``ultralytics_biformer.data.synthetic``: the generated benchmark datasets of every task and style;
determinism, the cache, valid labels that Ultralytics loads. The ``dataset`` command is in test_cli_dataset.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from ultralytics_biformer.bench.metrics import area_bucket
from ultralytics_biformer.data import scene, synthetic
from ultralytics_biformer.data.scene import render_scene
from ultralytics_biformer.data.synthetic import (
    CLASS_NAMES,
    CLASSIFY_NAMES,
    TASKS,
    DatasetSpec,
    cached_dataset,
    ensure_dataset,
    generate_dataset,
    render_image,
)

pytestmark = pytest.mark.usefixtures("private_cache")  # every test gets its own empty dataset cache

TINY = DatasetSpec(seed=3, train=6, val=3, imgsz=96)
STYLES = scene.STYLES  # the looks every task is drawn in; the context style has tests of its own (test_data_context.py)
TOKEN_CLASSES = (scene.STRIPES, scene.PLAIN)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _labels(path: Path) -> np.ndarray:
    rows = [line.split() for line in path.read_text().splitlines()]
    return np.array(rows, dtype=float).reshape(-1, 5)


def test_generation_is_deterministic(tmp_path):
    first, second = (
        _files(generate_dataset(TINY, tmp_path / "a").parent),
        _files(generate_dataset(TINY, tmp_path / "b").parent),
    )
    assert first.keys() == second.keys()
    assert len([k for k in first if k.endswith(".jpg")]) == TINY.train + TINY.val
    assert first == second


def test_seeds_give_different_datasets(tmp_path):
    a = _files(generate_dataset(TINY, tmp_path / "a").parent)
    b = _files(generate_dataset(DatasetSpec(seed=4, train=6, val=3, imgsz=96), tmp_path / "b").parent)
    assert a["labels/train/000000.txt"] != b["labels/train/000000.txt"]
    assert a["images/train/000000.jpg"] != b["images/train/000000.jpg"]


def test_an_image_does_not_depend_on_the_dataset_size():
    image, labels = render_image(np.random.default_rng([0, 0, 5]), 128)
    again, labels_again = render_image(np.random.default_rng([0, 0, 5]), 128)
    assert np.array_equal(image, again) and labels == labels_again
    other, _ = render_image(np.random.default_rng([0, 0, 6]), 128)
    assert not np.array_equal(image, other)


def test_labels_are_valid_yolo_boxes(tmp_path):
    root = generate_dataset(TINY, tmp_path / "d").parent
    label_files = sorted((root / "labels").rglob("*.txt"))
    assert len(label_files) == TINY.train + TINY.val
    for path in label_files:
        labels = _labels(path)
        assert len(labels) > 0, f"{path} has no objects"
        cls, xc, yc, w, h = labels.T
        assert set(cls) <= set(range(len(CLASS_NAMES)))
        assert (w > 0).all() and (h > 0).all()
        assert (xc - w / 2 >= -1e-6).all() and (xc + w / 2 <= 1 + 1e-6).all()
        assert (yc - h / 2 >= -1e-6).all() and (yc + h / 2 <= 1 + 1e-6).all()


@pytest.mark.parametrize("style", STYLES)
def test_tokens_look_alike_so_only_context_tells_their_class(style):
    """Both token classes are the same small shape: their own pixels carry no class information."""
    insides = {0: [], 1: []}
    sizes = {0: [], 1: []}
    for index in range(12):
        image, labels = render_image(np.random.default_rng([1, 0, index]), 320, style)
        for cls, xc, yc, w, h in labels:
            if cls in insides:
                x0, y0, x1, y1 = (round(v * 320) for v in (xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2))
                m = max(1, (x1 - x0) // 4)  # inside the dark rim
                insides[cls].append(image[y0 + m : y1 - m, x0 + m : x1 - m].reshape(-1, 3).mean(0))
                sizes[cls].append(x1 - x0)
    assert len(insides[0]) > 20 and len(insides[1]) > 20
    fill = {cls: np.mean(values, axis=0) for cls, values in insides.items()}
    assert np.abs(fill[0] - fill[1]).max() < 4, fill  # the same fill colour, up to noise
    assert abs(np.mean(sizes[0]) - np.mean(sizes[1])) < 2  # and the same sizes
    assert max(sizes[0] + sizes[1]) < 32  # and all of them COCO-small


@pytest.mark.parametrize("style", STYLES)
def test_every_area_bucket_has_objects(style):
    boxes = []
    for index in range(30):
        _, labels = render_image(np.random.default_rng([0, 1, index]), 320, style)
        boxes += [
            [(xc - w / 2) * 320, (yc - h / 2) * 320, (xc + w / 2) * 320, (yc + h / 2) * 320]
            for _, xc, yc, w, h in labels
        ]
    buckets = np.bincount(area_bucket(np.array(boxes)), minlength=3)
    assert (buckets > 0).all(), buckets
    assert buckets[0] > buckets[1] + buckets[2]  # mostly small objects


def test_ensure_dataset_generates_once_then_reuses(tmp_path, monkeypatch):
    data_yaml = ensure_dataset(TINY, log=lambda message: None)
    assert data_yaml.is_file()
    assert data_yaml.parent.parent == tmp_path / "cache" / "datasets"
    assert not [p for p in data_yaml.parent.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left

    def fail(*args, **kwargs):
        raise AssertionError("a cached dataset was generated again")

    monkeypatch.setattr(synthetic, "generate_dataset", fail)
    assert ensure_dataset(TINY, log=lambda message: None) == data_yaml


def test_a_cached_dataset_missing_its_marker_is_generated_again(tmp_path):
    """A folder without its completion marker (a copy cut short) is replaced, not renamed onto, which failed."""
    data_yaml = ensure_dataset(TINY, log=lambda message: None)
    data_yaml.unlink()
    (data_yaml.parent / "leftover.txt").write_text("from the cut-short copy")
    said = []
    assert ensure_dataset(TINY, log=said.append) == data_yaml
    assert data_yaml.is_file() and not (data_yaml.parent / "leftover.txt").exists()
    assert any("lacks data.yaml, so it is incomplete" in line for line in said)
    assert not [p for p in data_yaml.parent.parent.iterdir() if p.name.startswith(".")]  # nothing left aside


def test_temp_folders_of_killed_generations_are_removed_but_not_running_ones(tmp_path):
    import os
    import time

    root = tmp_path / "datasets"
    name = TINY.folder_name
    abandoned, stale, running = (root / f".{name}-{suffix}" for suffix in ("k1ll3d_0", "stale-k1ll3d_1", "wr1t1ng0"))
    # Other specs' temp folders, whose names extend ours: not this call's business.
    others = [root / f".{replace(TINY, task='segment').folder_name}-k1ll3d_2", root / f".{name}0-k1ll3d_3"]
    for folder in (abandoned, stale, running, *others):
        (folder / "images" / "train").mkdir(parents=True)
        (folder / "images" / "train" / "000000.jpg").write_bytes(b"")
    day_ago = time.time() - 25 * 3600
    for folder in (abandoned, stale, running, *others):
        for path in (folder, *folder.rglob("*")):
            os.utime(path, (day_ago, day_ago))
    (running / "images" / "train" / "000001.jpg").write_bytes(b"")  # a generation started long ago, still writing
    ensure_dataset(TINY, root, log=lambda message: None)
    assert sorted(p.name for p in root.iterdir()) == sorted([name, running.name, *(o.name for o in others)])


def test_an_image_that_cannot_be_written_stops_the_generation(tmp_path):
    with pytest.raises(OSError, match="could not write .*000000.jpg; was its folder removed"):
        synthetic._write_image(tmp_path / "removed" / "000000.jpg", np.zeros((8, 8, 3), dtype=np.uint8))


def test_ultralytics_reads_the_data_yaml():
    from ultralytics.data.utils import check_det_dataset

    from ultralytics_biformer.cli.offline import offline_ultralytics

    offline_ultralytics()
    data = check_det_dataset(str(ensure_dataset(TINY, log=lambda message: None)))
    assert data["nc"] == len(CLASS_NAMES)
    assert list(data["names"].values()) == list(CLASS_NAMES)
    assert Path(data["train"]).is_dir() and Path(data["val"]).is_dir()


# --- presets, styles and tasks ---------------------------------------------------------------------------------------

SMALL = DatasetSpec(seed=5, train=8, val=4, imgsz=96)  # every task's dataset in these tests


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """``generated(task, style)``: the folder of SMALL's dataset for that task and style, generated once."""
    root, made = tmp_path_factory.mktemp("tasks"), {}

    def get(task: str, style: str = "tokens") -> Path:
        if (task, style) not in made:
            spec = replace(SMALL, task=task, style=style)
            generate_dataset(spec, root / spec.folder_name)
            made[task, style] = root / spec.folder_name
        return made[task, style]

    return get


def test_drawing_version_1_is_kept_and_2_changes_only_what_was_off():
    """Version 1 stays reproducible; version 2 keeps the benchmark's images and moves only its rings' labels."""
    rng = lambda index: np.random.default_rng([7, 0, index])  # noqa: E731
    for index in range(6):
        old, new = render_scene(rng(index), 160, version=1), render_scene(rng(index), 160)
        assert np.array_equal(old.image, new.image)
        for before, after in zip(old.objects, new.objects, strict=True):
            assert before.cls == after.cls
            if before.cls != scene.RING:
                assert before.box == after.box
        rotated_old, rotated_new = (render_scene(rng(index), 160, rotated=True, version=v) for v in (1, 2))
        assert not np.array_equal(rotated_old.image, rotated_new.image)  # every filled shape is redrawn
    assert DatasetSpec().version == scene.VERSION == 2
    assert replace(TINY, version=1).folder_name.startswith(f"{synthetic.NAME}-v1-")
    for bad in (3, True, 2.0, "2"):
        with pytest.raises(ValueError, match=f"dataset version must be one of 1, 2, got {bad!r}"):
            replace(TINY, version=bad)
    with pytest.raises(ValueError, match="unknown drawing version 0; accepted: 1, 2"):
        render_scene(rng(0), 64, version=0)


def test_default_style_and_task_keep_the_benchmark_unchanged(generated):
    assert DatasetSpec(seed=3, train=6, val=3, imgsz=96, style="tokens", task="detect") == TINY
    assert TINY.folder_name == f"{synthetic.NAME}-v{synthetic.VERSION}-seed3-6x3-96px"
    names = {replace(SMALL, task=task, style=style).folder_name for task in TASKS for style in STYLES}
    assert len(names) == len(TASKS) * len(STYLES)  # every variant is cached apart
    for task in TASKS[1:]:
        assert replace(SMALL, task=task).folder_name == f"{SMALL.folder_name}-{task}-v{synthetic.REVISIONS[task]}"
    # Segmentation draws the detection images; pose and obb share one rotated scene.
    assert _files(generated("segment") / "images") == _files(generated("detect") / "images")
    assert _files(generated("pose") / "images") == _files(generated("obb") / "images")
    assert _files(generated("obb") / "images") != _files(generated("detect") / "images")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("style", "coco", "style must be one of tokens, pretrain, context, got 'coco'"),
        ("task", "depth", "task must be one of detect, segment, pose, obb, classify, got 'depth'"),
    ],
)
def test_spec_rejects_unknown_style_and_task(field, value, message):
    with pytest.raises(ValueError, match=message):
        replace(TINY, **{field: value})


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("style", STYLES)
def test_every_task_and_style_is_deterministic(task, style, generated, tmp_path):
    again = replace(SMALL, task=task, style=style)
    generate_dataset(again, tmp_path / "again")
    first, second = _files(generated(task, style)), _files(tmp_path / "again")
    assert first == second
    assert len([k for k in first if k.endswith(".jpg")]) == SMALL.train + SMALL.val


@pytest.mark.parametrize("task", TASKS)
def test_every_task_is_cached(task, monkeypatch):
    spec = replace(SMALL, train=2, val=2, task=task)
    path = ensure_dataset(spec, log=lambda message: None)
    assert path.exists() and path.is_dir() == (task == "classify")
    assert cached_dataset(spec) == path
    monkeypatch.setattr(synthetic, "generate_dataset", lambda *a: pytest.fail("a cached dataset was generated again"))
    assert ensure_dataset(spec, log=lambda message: None) == path


def _ultralytics_dataset(folder: Path, task: str):
    """Load a split the way Ultralytics' trainers do; returns (data dict, YOLODataset of the train split)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    from ultralytics_biformer.cli.offline import offline_ultralytics

    offline_ultralytics()
    data = check_det_dataset(str(folder / "data.yaml"))
    dataset = build_yolo_dataset(get_cfg(overrides={"task": task, "imgsz": SMALL.imgsz}), data["train"], 4, data, "val")
    lines = sum(len(p.read_text().splitlines()) for p in (folder / "labels" / "train").glob("*.txt"))
    assert len(dataset.labels) == SMALL.train  # no image or label file was rejected as corrupt
    assert sum(len(label["cls"]) for label in dataset.labels) == lines  # nor any label line
    for label in dataset.labels:
        assert len(label["cls"]) > 0 and set(label["cls"].ravel()) <= set(range(len(CLASS_NAMES)))
    return data, dataset


@pytest.mark.parametrize("style", STYLES)
def test_segment_labels_load_in_ultralytics_and_stay_in_the_image(style, generated):
    _, dataset = _ultralytics_dataset(generated("segment", style), "segment")
    for label in dataset.labels:
        assert len(label["segments"]) == len(label["cls"])
        for polygon in label["segments"]:
            assert len(polygon) >= 4 and (polygon >= 0).all() and (polygon <= 1).all()
    assert dataset[0]["masks"].any()


@pytest.mark.parametrize("style", STYLES)
def test_segment_rings_are_hollow_polygons_that_trace_the_ring(style, tmp_path):
    """A ring's polygon covers the ring's uniformly coloured pixels and leaves its centre out."""
    from ultralytics.data.utils import polygon2mask

    size = 320  # rings wide enough to have an inside after one pixel of erosion
    root = generate_dataset(DatasetSpec(seed=11, train=4, val=1, imgsz=size, style=style, task="segment"), tmp_path)
    checked = 0
    for label_file in sorted((root.parent / "labels" / "train").glob("*.txt")):
        image = cv2.imread(str(root.parent / "images" / "train" / f"{label_file.stem}.jpg"))
        for line in label_file.read_text().splitlines():
            cls, *coords = line.split()
            if int(cls) != scene.RING:
                continue
            polygon = np.array(coords, dtype=float).reshape(-1, 2) * size
            mask = polygon2mask((size, size), [polygon], color=1, downsample_ratio=1).astype(np.uint8)
            (x0, y0), (x1, y1) = polygon.min(0), polygon.max(0)
            assert mask[round((y0 + y1) / 2), round((x0 + x1) / 2)] == 0  # the hole is not part of the ring
            inside = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)  # away from anti-aliased edges
            if inside.sum() >= 20:
                assert image[inside].std(0).max() < 15, "the polygon covers more than the ring's own colour"
                checked += 1
    assert checked >= 2


@pytest.mark.parametrize("style", STYLES)
def test_pose_keypoints_load_in_ultralytics_and_lie_on_their_object(style, generated):
    data, dataset = _ultralytics_dataset(generated("pose", style), "pose")
    assert data["kpt_shape"] == [4, 3] and data["flip_idx"] == [0, 3, 2, 1]
    for label in dataset.labels:
        keypoints, boxes = label["keypoints"], label["bboxes"]  # (n, 4, 3), (n, 4) normalised xywh
        assert keypoints.shape == (len(boxes), 4, 3) and (keypoints[..., 2] == 2).all()
        low, high = boxes[:, None, :2] - boxes[:, None, 2:] / 2, boxes[:, None, :2] + boxes[:, None, 2:] / 2
        assert ((keypoints[..., :2] >= low - 1e-5) & (keypoints[..., :2] <= high + 1e-5)).all()
        front, right, back, left = (keypoints[:, k, :2] * SMALL.imgsz for k in range(4))
        centre = (front + back) / 2
        along, across = front - centre, right - centre
        # Right is a quarter turn clockwise from front on screen (y down), which is what flip_idx relies on.
        assert (along[:, 0] * across[:, 1] - along[:, 1] * across[:, 0] > 0).all()
        assert np.allclose(centre, (right + left) / 2, atol=0.01)
        tokens = np.isin(label["cls"].ravel(), TOKEN_CLASSES)
        assert (np.linalg.norm(front - back, axis=1) > np.linalg.norm(right - left, axis=1))[tokens].all()


@pytest.mark.parametrize("style", STYLES)
def test_obb_labels_load_in_ultralytics_with_angles_in_range(style, generated):
    _, dataset = _ultralytics_dataset(generated("obb", style), "obb")
    for index, label in enumerate(dataset.labels):
        for corners in label["segments"]:
            assert corners.shape == (4, 2) and (corners >= 0).all() and (corners <= 1).all()
        boxes = dataset[index]["bboxes"].numpy()  # xywhr, as the OBB loss receives them
        assert len(boxes) == len(label["cls"])
        assert ((boxes[:, 4] >= -np.pi / 4) & (boxes[:, 4] < 3 * np.pi / 4)).all()
        assert (boxes[:, 2] >= boxes[:, 3]).all()
        tokens = np.isin(label["cls"].ravel(), TOKEN_CLASSES)
        assert (boxes[tokens, 2] > 1.5 * boxes[tokens, 3]).all()  # elongated, so the angle means something


@pytest.mark.parametrize("style", STYLES)
def test_classify_folders_load_in_ultralytics(style, generated):
    from ultralytics.cfg import get_cfg
    from ultralytics.data.dataset import ClassificationDataset
    from ultralytics.data.utils import check_cls_dataset

    from ultralytics_biformer.cli.offline import offline_ultralytics

    offline_ultralytics()
    data = check_cls_dataset(str(generated("classify", style)))
    assert data["nc"] == len(CLASSIFY_NAMES) and sorted(data["names"].values()) == sorted(CLASSIFY_NAMES)
    cfg = get_cfg(overrides={"task": "classify", "imgsz": SMALL.imgsz})
    for split, count in (("train", SMALL.train), ("val", SMALL.val)):
        dataset = ClassificationDataset(root=str(data[split]), args=cfg, augment=False)
        classes = [cls for _, cls, *_ in dataset.samples]
        assert len(dataset) == count and set(classes) == set(range(len(CLASSIFY_NAMES)))
        for file, cls, *_ in dataset.samples:
            assert Path(file).parent.name == data["names"][cls]


def test_pretrain_style_is_a_visibly_different_domain():
    """Same classes and meaning, but other token colours and shapes, so a detector trained on one must adapt."""
    means = {}
    for style in STYLES:
        pixels = []
        for index in range(4):
            image, labels = render_image(np.random.default_rng([6, 0, index]), 320, style)
            for cls, xc, yc, *_ in labels:
                if cls in TOKEN_CLASSES:
                    pixels.append(image[round(yc * 320), round(xc * 320)].astype(float))
        means[style] = np.mean(pixels, axis=0)
    assert np.abs(means["tokens"] - means["pretrain"]).max() > 60, means

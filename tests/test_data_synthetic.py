"""The generated context-tokens benchmark dataset and the ``dataset`` command."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from ultralytics_biformer.bench.metrics import area_bucket
from ultralytics_biformer.cli import main
from ultralytics_biformer.data import scene, synthetic
from ultralytics_biformer.data.presets import PRESET_SPECS, preset_spec
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

TINY = DatasetSpec(seed=3, train=6, val=3, imgsz=96)
STYLES = scene.STYLES  # the looks every task is drawn in; the context style has tests of its own (test_context.py)
TOKEN_CLASSES = (scene.STRIPES, scene.PLAIN)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own empty dataset cache."""
    monkeypatch.setenv(synthetic.CACHE_ENV, str(tmp_path / "cache"))


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


def test_dataset_command_prints_only_the_yaml_path(capsys, tmp_path):
    assert main(["dataset", "train=4", "val=2", "imgsz=64", "seed=1"]) == 0
    out = capsys.readouterr().out
    path = Path(out.strip())
    assert out == f"{path}\n"
    assert path.is_file() and path.is_relative_to(tmp_path / "cache")
    assert len(list((path.parent / "images" / "train").iterdir())) == 4


def test_dataset_command_says_on_stderr_which_dataset_it_gives(capsys):
    arguments = ["dataset", "preset=quick", "task=pose", "train=3", "val=2", "imgsz=64"]
    spec = DatasetSpec(seed=PRESET_SPECS["quick"].seed, train=3, val=2, imgsz=64, task="pose")
    assert main(arguments) == 0
    first = capsys.readouterr()
    assert first.out == f"{cached_dataset(spec)}\n"
    assert spec.describe() in first.err and "preset quick" in first.err and "generating" in first.err
    assert main(arguments) == 0
    second = capsys.readouterr()
    assert second.out == first.out
    assert spec.describe() in second.err and "reusing the cached copy" in second.err and "Generating" not in second.err


def test_dataset_command_gives_the_drawing_version_asked_for(capsys):
    base = ["dataset", "preset=quick", "train=2", "val=2", "imgsz=64"]
    assert main(base) == 0 and main([*base, "version=1"]) == 0
    latest, old = (Path(line) for line in capsys.readouterr().out.split())
    assert latest.parent.name == replace(PRESET_SPECS["quick"], train=2, val=2, imgsz=64).folder_name
    assert old.parent.name == replace(PRESET_SPECS["quick"], train=2, val=2, imgsz=64, version=1).folder_name
    assert "-v2-" in latest.parent.name and "-v1-" in old.parent.name
    assert "# context-tokens v1" in old.read_text() and "# context-tokens v2" in latest.read_text()


def test_dataset_and_compare_default_to_the_same_preset_and_say_so(capsys, monkeypatch, tmp_path):
    from ultralytics_biformer.bench.plan import PRESETS, make_plan
    from ultralytics_biformer.cli import compare, dataset

    def as_if_cached(spec, root=None):  # no generation in a unit test: pretend it is there
        return Path("/cached/data.yaml")

    monkeypatch.setattr(synthetic, "generate_dataset", lambda spec, out_dir: pytest.fail("generated in a unit test"))
    monkeypatch.setattr(synthetic, "cached_dataset", as_if_cached)
    monkeypatch.setattr(dataset, "cached_dataset", as_if_cached)
    assert main(["dataset"]) == 0
    out, err = capsys.readouterr()
    assert out == "/cached/data.yaml\n"
    default = dataset.DEFAULT_PRESET
    plan = make_plan(compare.parse_options(["train=False", f"project={tmp_path}"], compare.OPTIONS, "compare"))
    assert plan.settings["preset"] == default  # compare without preset= or data= takes the same preset
    assert PRESETS[default].dataset == PRESET_SPECS[default]  # hence the same dataset
    assert PRESET_SPECS[default].describe() in err and f"preset {default} (the default, as compare's" in err
    for command in ("dataset", "compare"):
        assert main([command, "help"]) == 0
        assert f"default {default}" in capsys.readouterr().out  # each help states it


def test_dataset_command_classify_prints_the_dataset_folder(capsys, tmp_path):
    assert main(["dataset", "task=classify", "train=2", "val=2", "imgsz=64"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.is_dir() and path.is_relative_to(tmp_path / "cache")
    assert sorted(p.name for p in (path / "train").iterdir()) == sorted(CLASSIFY_NAMES)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["train=0"], "train=0: expected an integer >= 1"),
        (["colour=red"], "unknown argument 'colour'"),
        (["preset=huge"], "preset=huge: expected one of full, quick, study"),
        (["imgsz=16"], "at least 32 pixels"),
        (["task=depth"], "task=depth: expected one of detect, segment, pose, obb, classify"),
        (["style=coco"], "style=coco: expected one of tokens, pretrain"),
        (["task=classify", "val=1"], "a classify dataset needs at least 2 train and 2 val images"),
        (["version=3"], "version=3: expected one of 1, 2"),
    ],
)
def test_dataset_command_rejects_bad_arguments(capsys, tmp_path, arguments, message):
    assert main(["dataset", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("ultralytics-biformer dataset: error: ") and message in err.splitlines()[0]
    assert not (tmp_path / "cache").exists()


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


def test_presets_live_in_the_data_module():
    from ultralytics_biformer import data

    assert PRESET_SPECS is data.PRESET_SPECS
    assert {"full", "quick", "study"} <= PRESET_SPECS.keys()
    assert preset_spec("quick", task="obb") == replace(PRESET_SPECS["quick"], task="obb")
    with pytest.raises(ValueError, match="unknown dataset preset 'huge'; accepted: full, quick, study"):
        preset_spec("huge")


def test_study_preset_is_the_dataset_the_study_used():
    """The ablation study trained on this spec's cache folder: its name is a contract, written out here on purpose."""
    study = PRESET_SPECS["study"]
    assert study == DatasetSpec(seed=0, train=240, val=120, imgsz=256, version=1)
    assert study.folder_name == "context-tokens-v1-seed0-240x120-256px"
    assert preset_spec("study", style="pretrain", seed=1, train=480).version == 1  # the fine-tune's source domain


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

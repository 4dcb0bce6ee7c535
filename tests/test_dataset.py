"""The generated context-tokens benchmark dataset and the ``dataset`` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ultralytics_biformer.cli import main
from ultralytics_biformer.evaluation import area_bucket
from ultralytics_biformer.data import synthetic
from ultralytics_biformer.data.synthetic import CLASS_NAMES, DatasetSpec, ensure_dataset, generate_dataset, render_image

TINY = DatasetSpec(seed=3, train=6, val=3, imgsz=96)


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


def test_tokens_look_alike_so_only_context_tells_their_class():
    """Both token classes are the same small square: their own pixels carry no class information."""
    insides = {0: [], 1: []}
    sizes = {0: [], 1: []}
    for index in range(12):
        image, labels = render_image(np.random.default_rng([1, 0, index]), 320)
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


def test_every_area_bucket_has_objects():
    boxes = []
    for index in range(30):
        _, labels = render_image(np.random.default_rng([0, 1, index]), 320)
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


@pytest.mark.parametrize(
    "argument, message",
    [
        ("train=0", "train=0: expected an integer >= 1"),
        ("colour=red", "unknown argument 'colour'"),
        ("preset=huge", "expected one of full, quick"),
        ("imgsz=16", "at least 32 pixels"),
    ],
)
def test_dataset_command_rejects_bad_arguments(capsys, tmp_path, argument, message):
    assert main(["dataset", argument]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()

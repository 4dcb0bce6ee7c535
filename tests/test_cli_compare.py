"""Tests of ``ultralytics_biformer.cli.compare``: the ``compare`` command's arguments, and bad input (arguments, tasks,
data, checkpoints) stopping before any work. Real comparisons, which train, are in test_e2e_compare.py and
test_e2e_tasks.py."""

from __future__ import annotations

import pytest

from ultralytics_biformer.bench import runner
from ultralytics_biformer.cli import compare, main
from ultralytics_biformer.data import synthetic


def test_unknown_optimizer_is_refused_before_any_work(capsys, monkeypatch):
    """Ultralytics rejects it only inside each worker, after the data and the models are built."""
    monkeypatch.setattr(runner, "_start", lambda *a, **k: pytest.fail("a worker was started"))
    assert main(["compare", "optimizer=Lion", "epochs=1"]) == 2
    err = capsys.readouterr().err
    assert "optimizer=Lion" in err and "AdamW" in err and "SGD" in err


@pytest.mark.parametrize("name", ["auto", "SGD", "adamw", "RMSProp"])
def test_optimizer_names_are_taken_in_any_case_as_ultralytics_does(name):
    assert compare.optimizer_name(name) == name


@pytest.mark.parametrize("value", ["maybe", ""])
def test_train_flag_must_be_a_boolean(value, capsys):
    assert main(["compare", f"train={value}"]) == 2
    assert "train=" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["bogus=1"], "unknown argument 'bogus' for 'compare'. Accepted keys: models, data, preset"),
        (["yolo11n.yaml"], "takes key=value arguments, got 'yolo11n.yaml'"),
        (["epochs=0"], "epochs=0: expected an integer >= 1"),
        (["preset=huge"], "preset=huge: expected one of quick, study, context, ultralytics, full"),
        (["distance=8"], "distance=8 applies to the bundled context-range benchmark only: use it with preset=context"),
        (["preset=context", "distance=300"], "dataset distance must be at most imgsz (256), got 300"),
        (["preset=context", "task=pose"], "preset=context is a detection benchmark, but the models are pose models"),
        (["models=yolo11n.yaml,nope.yaml"], "model 'nope.yaml': no such file, and no stock or bundled model YAML"),
        (
            ["models=yolo11n-biformr.yaml"],
            "model 'yolo11n-biformr.yaml': no such file, and no stock or bundled model YAML has that name; did you "
            "mean 'yolo11n-biformer.yaml'? Or accepted: a model YAML",
        ),
        (["models=yolo11n.pt"], "model 'yolo11n.pt': no such file (compare never downloads weights); accepted: a"),
        (
            ["models=yolo11n.onnx"],
            "model 'yolo11n.onnx': expected a model YAML (.yaml, .yml) or a local checkpoint (.pt, .pth); accepted: a "
            "model YAML of one of the tasks detect,",
        ),
        (["models=yolo11n.yaml,yolo11n.yaml"], "lists a model more than once"),
        (["pretrained=yolo11n.pt"], "pretrained=yolo11n.pt: no such file. compare never downloads weights"),
        (["data=missing-data.yaml"], "data=missing-data.yaml:"),
        (["data=coco8.yaml"], "compare never downloads datasets"),
        (["imgsz=100"], "imgsz=100: expected a multiple of 32, e.g. 96 or 128"),
        (["seed=4294967295", "seeds=2"], "seeds must stay below 2**32"),
        (["train=False", "name=typo"], "holds no finished run of these models and seeds"),
    ],
)
def test_bad_compare_arguments_stop_before_any_work(arguments, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(synthetic.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(runner, "_start", lambda *a, **k: pytest.fail("a worker was started"))
    assert main(["compare", *arguments, f"project={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "ultralytics-biformer compare: error:" in err
    assert list(tmp_path.iterdir()) == []  # no run folder, no dataset generated


def test_project_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert main(["compare", f"project={tmp_path / 'afile'}", "train=False"]) == 2
    assert "afile is a file" in capsys.readouterr().err


def test_data_with_an_empty_val_split_is_refused(tmp_path, tiny_dataset, capsys):
    """Ultralytics would find no val images only inside every worker, after training."""
    data = tmp_path / "data.yaml"
    (tmp_path / "val").mkdir()
    data.write_text(tiny_dataset.read_text().replace("val: images/val", f"val: {tmp_path / 'val'}"))
    assert main(["compare", f"data={data}", f"project={tmp_path}", "epochs=1"]) == 2
    assert "holds no images" in capsys.readouterr().err


def _refuse_workers(monkeypatch):
    monkeypatch.setattr(runner, "_start", lambda *a, **k: pytest.fail("a worker was started"))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["task=keypoints"], "task=keypoints: expected one of detect, segment, pose, obb, classify"),
        (
            ["models=yolo11n.yaml,yolo11n-seg.yaml"],
            "model 'yolo11n-seg.yaml' is a segment model, but the first model, yolo11n.yaml, is a detect model",
        ),
        (["models=yolo11n-cls.yaml,yolo11n-biformer-cls.yaml,yolo11n-obb.yaml"], "'yolo11n-obb.yaml' is an obb model"),
        (
            ["task=pose", "models=yolo11n-pose.yaml,yolo11n-biformer.yaml"],
            "'yolo11n-biformer.yaml' is a detect model, but task=pose",
        ),
    ],
)
def test_mixed_or_unknown_tasks_stop_before_any_work(arguments, message, tmp_path, monkeypatch, capsys):
    _refuse_workers(monkeypatch)
    assert main(["compare", *arguments, f"project={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("ultralytics-biformer compare: error: ") and message in err[0], err
    assert len(err) == 2  # the error, then where to find the accepted keys
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "task, data_task, message",
    [
        ("pose", "detect", "has no kpt_shape: not a pose dataset"),
        ("detect", "pose", "has kpt_shape [4, 3]: a pose dataset"),
        ("segment", "detect", "has box labels only (5 values per line), no polygons"),
        ("obb", "segment", "not oriented boxes (9: class and 4 corners)"),
        ("obb", "detect", "has labels of 5 values per line, not oriented boxes"),
        ("classify", "detect", "is a file, not a dataset folder"),
        ("detect", "classify", "is a folder (as classification datasets are), not a data YAML"),
    ],
)
def test_data_of_another_task_stops_before_any_work(task, data_task, message, datasets, tmp_path, monkeypatch, capsys):
    _refuse_workers(monkeypatch)
    data = datasets[data_task]
    assert main(["compare", f"task={task}", f"data={data}", f"project={tmp_path}"]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith(f"ultralytics-biformer compare: error: data={data} ") and message in first, first
    assert f"Accepted for {task} models:" in first
    assert list(tmp_path.iterdir()) == []


def test_classify_data_must_be_an_image_folder(datasets, tmp_path, monkeypatch, capsys):
    _refuse_workers(monkeypatch)
    not_image_folder = datasets["detect"].parent  # a detection dataset's folder: images/ and labels/
    for data, message in ((not_image_folder, "no train/ and val/ folders"), (tmp_path / "nope", "no such folder")):
        assert main(["compare", "task=classify", f"data={data}", f"project={tmp_path / 'runs'}"]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_pretrained_checkpoint_of_another_task_is_refused(tmp_path, monkeypatch, capsys):
    from ultralytics import YOLO

    _refuse_workers(monkeypatch)
    checkpoint = tmp_path / "detect.pt"
    YOLO("yolo11n.yaml").save(checkpoint)
    assert main(["compare", "task=segment", f"pretrained={checkpoint}", f"project={tmp_path / 'runs'}"]) == 2
    assert "holds a detect model, but the models to compare are segment models" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()

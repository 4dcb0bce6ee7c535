"""``compare`` for every task: segment, pose, obb and classify train with their stock trainers and report their own
metrics; bad task input stops before any work. (detect's own end-to-end tests are in test_cli.py.)"""

from __future__ import annotations

import csv
import json

import pytest

from ultralytics_biformer.bench import report, runner
from ultralytics_biformer.bench.plan import PRESETS, make_plan
from ultralytics_biformer.cli import compare, main
from ultralytics_biformer.cli.args import parse_options
from ultralytics_biformer.data import synthetic
from ultralytics_biformer.data.presets import preset_spec
from ultralytics_biformer.data.synthetic import DatasetSpec, ensure_dataset

TASKS = ["detect", "segment", "pose", "obb", "classify"]
# The accuracy columns each task's table must have, in order: the list, written out independently of the code.
COLUMNS = {
    "segment": [
        "box mAP50-95",
        "box mAP50",
        "box P",
        "box R",
        "mask mAP50-95",
        "mask mAP50",
        "box mAP50-95 S",
        "box mAP50-95 M",
        "box mAP50-95 L",
    ],
    "pose": [
        "box mAP50-95",
        "box mAP50",
        "box P",
        "box R",
        "pose mAP50-95",
        "pose mAP50",
        "box mAP50-95 S",
        "box mAP50-95 M",
        "box mAP50-95 L",
    ],
    "obb": ["mAP50-95", "mAP50", "P", "R", "mAP50-95 S", "mAP50-95 M", "mAP50-95 L"],
    "classify": ["top-1", "top-5"],
}
# Per task: the record key and title of the metric verdicts are given on, and its column in Ultralytics' results.csv.
PRIMARY = {
    "segment": ("mask_map", "mask mAP50-95", "metrics/mAP50-95(M)"),
    "pose": ("pose_map", "pose mAP50-95", "metrics/mAP50-95(P)"),
    "obb": ("map", "mAP50-95", "metrics/mAP50-95(B)"),
    "classify": ("top1", "top-1", "metrics/accuracy_top1"),
}
# A training loss only that task's Ultralytics trainer logs: proof that the task's own trainer ran.
TASK_LOSS = {
    "segment": "train/seg_loss",
    "pose": "train/pose_loss",
    "obb": "train/angle_loss",
    "classify": "train/loss",
}
DEFAULT_MODELS = {
    "detect": ["yolo11n.yaml", "yolo11n-biformer.yaml"],
    "segment": ["yolo11n-seg.yaml", "yolo11n-biformer-seg.yaml"],
    "pose": ["yolo11n-pose.yaml", "yolo11n-biformer-pose.yaml"],
    "obb": ["yolo11n-obb.yaml", "yolo11n-biformer-obb.yaml"],
    "classify": ["yolo11n-cls.yaml", "yolo11n-biformer-cls.yaml"],
}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A tiny generated dataset per task (8 train and 4 val images of 64 px), in a cache of this module's own."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(synthetic.CACHE_ENV, str(cache))
        yield {
            task: ensure_dataset(DatasetSpec(seed=3, train=8, val=4, imgsz=64, task=task), log=lambda message: None)
            for task in TASKS
        }


@pytest.fixture(scope="module", params=list(COLUMNS))
def compared(request, datasets, tmp_path_factory):
    """``compare task=<task> preset=quick`` with a tiny override: the task's default models, 1 epoch at imgsz 64.

    Yields (task, run folder, console output).
    """
    import contextlib
    import io

    task, project = request.param, tmp_path_factory.mktemp(f"runs-{request.param}")
    args = ["compare", f"task={task}", "preset=quick", f"data={datasets[task]}", "epochs=1", "imgsz=64", "batch=4"]
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        assert main([*args, "workers=0", "jobs=1", f"project={project}"]) == 0
    yield task, project / f"quick-{task}", console.getvalue()


def _table(run_dir) -> tuple[list[str], list[list[str]]]:
    """The header and rows of compare.md's results table."""
    table = (run_dir / "compare.md").read_text().split("Paired differences")[0]
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return cells[0], cells[1:]


@pytest.mark.slow
def test_each_task_reports_its_own_metrics_and_every_cost_column(compared):
    task, run_dir, _ = compared
    header, rows = _table(run_dir)
    costs = ["PyTorch ms", "ONNX ms", "train s/epoch", "peak RSS MiB"]
    assert header == ["Model", "Seeds", "Params (M)", "GFLOPs", *COLUMNS[task], *costs]
    assert [row[0].strip("`") for row in rows] == DEFAULT_MODELS[task]
    for row in rows:
        assert len(row) == len(header) and "failed" not in row, row

    key, _, _ = PRIMARY[task]
    with open(run_dir / "compare.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert [r["model"] for r in summary] == DEFAULT_MODELS[task]
    for r in summary:
        assert int(r["params"]) > 1_000_000 and float(r["gflops"]) > 0
        assert float(r["torch_ms"]) > 0 and float(r["onnx_ms"]) > 0, r["onnx_error"]  # every head exports
        assert 0 <= float(r[f"{key}_mean"]) <= 1 and float(r["peak_rss_mib_mean"]) > 100
        assert ("map_small_mean" in r) == (task != "classify")  # area buckets exactly where there are boxes


@pytest.mark.slow
def test_each_task_trains_with_its_own_trainer_and_records_its_curves(compared):
    task, run_dir, console = compared
    key, title, column = PRIMARY[task]
    for model in DEFAULT_MODELS[task]:
        record = json.loads((run_dir / "records" / f"{model.removesuffix('.yaml')}-seed0.json").read_text())
        assert record["epochs_run"] == 1 and 0 <= record[key] <= 1
        assert len(record["curves"][column]) == 1 and len(record["curves"][TASK_LOSS[task]]) == 1
        if task != "classify":
            assert record["map_small"] is not None  # 64 px images: every object is small
        ended = [line for line in console.splitlines() if f" {model} seed 0: done in" in line]
        assert len(ended) == 1 and f"{title} {record[key]:.4f}" in ended[0], console
    assert (run_dir / "compare.png").stat().st_size > 10_000


@pytest.mark.slow
def test_each_task_gets_verdicts_on_its_primary_metric(compared):
    task, run_dir, _ = compared
    key, title, _ = PRIMARY[task]
    report = (run_dir / "compare.md").read_text()
    baseline, model = DEFAULT_MODELS[task]
    assert f"Paired differences against `{baseline}`" in report
    verdicts = [line for line in report.splitlines() if line.startswith(f"- `{model}` vs `{baseline}`:")]
    assert len(verdicts) == 1 and f"{title}: **no verdict possible with one seed**" in verdicts[0]
    assert ("small objects:" in verdicts[0]) == (task != "classify")
    with open(run_dir / "paired.csv", newline="") as f:
        paired = {r["metric"]: r for r in csv.DictReader(f)}
    runs = {r["model"]: r for r in csv.DictReader((run_dir / "runs.csv").read_text().splitlines())}
    assert float(paired[key]["diff_seed0"]) == pytest.approx(float(runs[model][key]) - float(runs[baseline][key]))


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


@pytest.mark.parametrize("task", TASKS)
def test_task_picks_its_default_models_data_and_run_folder(task, datasets, tmp_path, monkeypatch):
    """Nothing is trained: the plan names the task's stock and biformer twins and the bundled data of its preset."""
    asked = []

    def fake_ensure_dataset(spec, root=None, log=None):
        asked.append(spec)
        return datasets[task]

    monkeypatch.setattr(synthetic, "ensure_dataset", fake_ensure_dataset)
    values = parse_options([f"task={task}", "preset=quick", f"project={tmp_path}"], compare.OPTIONS, "compare")
    plan = make_plan(values)
    assert plan.task == task and [m.spec for m in plan.models] == DEFAULT_MODELS[task]
    assert asked == [preset_spec("quick", task=task)]
    assert plan.train_args["data"] == str(datasets[task])
    assert plan.run_dir == tmp_path.resolve() / ("quick" if task == "detect" else f"quick-{task}")


def test_models_without_task_take_their_own(datasets, tmp_path):
    values = parse_options(
        ["models=yolo11n-obb.yaml", f"data={datasets['obb']}", f"project={tmp_path}"], compare.OPTIONS, "compare"
    )
    assert make_plan(values).task == "obb"


def test_detect_plans_keep_the_training_arguments_of_earlier_records(datasets, tmp_path):
    """A comparison resumes from records made before tasks existed only if detect's training arguments are unchanged."""
    values = parse_options(
        ["preset=study", f"data={datasets['detect']}", f"project={tmp_path}", "name=s"], compare.OPTIONS, "compare"
    )
    plan = make_plan(values)
    model = plan.models[0]
    assert plan.train_job(model, 1)["train_args"] == {
        "data": str(datasets["detect"]),
        "epochs": 60,
        "imgsz": 256,
        "batch": 8,
        "workers": 2,
        "optimizer": "auto",
        "nbs": 8,
        "deterministic": True,
        "plots": False,
        "exist_ok": True,
        "verbose": True,
        "seed": 1,
        "project": str(tmp_path.resolve() / "s" / "runs"),
        "name": "yolo11n-seed1",
    }
    assert plan.train_record(model, 1) == tmp_path.resolve() / "s" / "records" / "yolo11n-seed1.json"
    order = [(m.spec, s) for m, s in plan.runs[:3]]
    assert order == [("yolo11n.yaml", 0), ("yolo11n-biformer.yaml", 0), ("yolo11n.yaml", 1)]


def test_detect_records_keep_their_metric_keys():
    from ultralytics_biformer.bench.metrics import TASK_METRICS

    detect = TASK_METRICS["detect"]
    assert [m.key for m in detect.accuracy] == [
        "map",
        "map50",
        "precision",
        "recall",
        "map_small",
        "map_medium",
        "map_large",
    ]
    assert set(detect.curve_columns) == {"metrics/mAP50(B)", "metrics/mAP50-95(B)"}


def test_latency_is_the_median_of_interleaved_rounds(monkeypatch):
    """With a fake clock, each run's median is known, and rounds alternate between runs."""
    from ultralytics_biformer.bench import latency

    clock, calls = [0.0], []
    durations = {"a": iter([9.0, 9.0, 0.003, 0.001, 0.002]), "b": iter([9.0, 9.0, 0.010, 0.030, 0.020])}

    def runner(name):
        def run():
            calls.append(name)
            clock[0] += next(durations[name])

        return run

    monkeypatch.setattr(latency, "perf_counter", lambda: clock[0])
    result = latency.median_ms({"a": runner("a"), "b": runner("b")}, warmup=2, rounds=3)
    assert result == {"a": pytest.approx(2.0), "b": pytest.approx(20.0)}
    assert calls == ["a", "a", "b", "b", "a", "b", "a", "b", "a", "b"]


@pytest.mark.parametrize(
    "warmup, rounds, message",
    [(1, 0, "rounds must be a positive integer, got 0"), (-1, 3, "warmup must be a non-negative integer, got -1")],
)
def test_latency_refuses_no_rounds_or_a_negative_warmup_before_timing_anything(warmup, rounds, message):
    from ultralytics_biformer.bench import latency

    def never():
        raise AssertionError("timed a model despite bad settings")

    with pytest.raises(ValueError, match=message):
        latency.median_ms({"a": never}, warmup=warmup, rounds=rounds)
    with pytest.raises(ValueError, match=message):
        latency.torch_latency_ms({"a": None}, 64, warmup=warmup, rounds=rounds)


def test_own_data_trains_with_ultralytics_defaults_not_the_smoke_preset(datasets, tmp_path):
    values = parse_options([f"data={datasets['detect']}", f"project={tmp_path}"], compare.OPTIONS, "compare")
    plan = make_plan(values)
    from ultralytics.cfg import DEFAULT_CFG_DICT

    for key in ("epochs", "imgsz", "batch"):
        assert plan.train_args[key] == DEFAULT_CFG_DICT[key]
    assert "nbs" not in plan.train_args and plan.seeds == [0, 1, 2]  # Ultralytics' nbs; paired seeds
    assert plan.settings["preset"] == "ultralytics (the default with data=)" and plan.run_dir.name == "ultralytics"
    header = "\n".join(report._settings_lines(plan, []))
    assert "- preset ultralytics (the default with data=): epochs=100 imgsz=640 batch=16" in header
    explicit = parse_options(
        [f"data={datasets['detect']}", "preset=quick", f"project={tmp_path}"], compare.OPTIONS, "compare"
    )
    assert make_plan(explicit).train_args["epochs"] == PRESETS["quick"].epochs

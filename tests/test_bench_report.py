"""Tests of ``ultralytics_biformer.bench.report``: the results table, the header, the figure title and the paired
verdict lines of compare.md and paired.csv."""

from __future__ import annotations

import csv
import json

import pytest

from ultralytics_biformer.bench import report
from ultralytics_biformer.bench.metrics import TASK_METRICS
from ultralytics_biformer.bench.plan import Plan
from ultralytics_biformer.bench.records import BenchRecord, TrainRecord
from ultralytics_biformer.bench.report import paired_markdown, paired_rows
from ultralytics_biformer.data import synthetic


@pytest.mark.parametrize(
    "recorded, planned, title",
    [
        ([3, 3], 3, "3 seeds per model"),
        ([1], 1, "1 seed per model"),
        ([1, 1], 3, "1 of 3 seeds recorded per model"),
        ([3, 0, 1], 3, "0-3 of 3 seeds recorded per model"),
    ],
)
def test_figure_title_counts_the_seeds_actually_recorded(recorded, planned, title):
    """A report of an unfinished comparison must not claim the planned seeds."""
    rows = [{"runs": [TrainRecord("m.yaml", s) for s in range(n)]} for n in recorded]
    assert report.seeds_recorded(rows, planned) == title


def test_results_table_names_the_seeds_behind_each_mean_and_skips_non_finite_values():
    """A 3-seed baseline next to a 2-seed model reads like a comparison of means unless the table says how many seeds
    and which each mean covers; a NaN metric (a diverged run) is named as a failed run instead of breaking the
    report."""
    from ultralytics_biformer.bench.metrics import TASK_METRICS

    def row(model, values):
        runs = [TrainRecord(model, seed, metrics={"map": value}) for seed, value in values.items()]
        return {"model": model, "label": model, "runs": runs, "bench": None, "map_by_seed": values}

    rows = [row("a.yaml", {0: 0.80, 1: 0.90, 2: 0.70}), row("b.yaml", {0: 0.81, 1: 0.91}), row("c.yaml", {})]
    rows.append(row("d.yaml", {0: 0.82, 1: float("nan"), 2: 0.72}))
    task = TASK_METRICS["detect"]
    for r in rows:
        for key, _, _ in report.run_metrics(task):
            r[f"{key}_mean"], r[f"{key}_std"] = report._mean_std([run.value(key) for run in r["runs"]])
    table, _ = report.markdown_table(rows, task)
    cells = {line.split("`")[1]: [c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]}
    seeds = [cells[m][1] for m in ("a.yaml", "b.yaml", "c.yaml", "d.yaml")]
    assert seeds == ["3: 0, 1, 2", "2: 0, 1", "-", "2: 0, 2 (seed 1 failed)"]
    assert cells["d.yaml"][4] == "0.7700 ± 0.0707"  # mean and std of 0.82 and 0.72 alone


@pytest.mark.parametrize(
    "benches, line", [([None], "- latency: no benchmark recorded yet"), ([2, None], "2 thread(s)")]
)
def test_report_header_states_latency_threads_only_when_measured(tmp_path, benches, line):
    settings = dict(data="d.yaml", preset="study", epochs=1, imgsz=64, batch=2, workers=0, optimizer="auto", extra={})
    plan = Plan(tmp_path, [], [0], {}, {}, {**settings, "device": "cpu", "seeds": [0]})
    rows = [{"bench": threads and BenchRecord("m.yaml", params=1, threads=threads)} for threads in benches]
    header = report._settings_lines(plan, rows)
    assert any(line in text for text in header) and not any("?" in text for text in header)


def test_report_header_states_the_load_the_latency_was_timed_under(tmp_path):
    """A reader judges the milliseconds by the load the machine carried; records that predate the field say nothing."""
    settings = dict(data="d.yaml", preset="study", epochs=1, imgsz=64, batch=2, workers=0, optimizer="auto", extra={})
    plan = Plan(tmp_path, [], [0], {}, {}, {**settings, "device": "cpu", "seeds": [0]})
    timed = [{"bench": BenchRecord("m.yaml", params=1, threads=1, load_average=1.5)}]
    header = "\n".join(report._settings_lines(plan, timed))
    assert "models timed interleaved; 1-minute load average when timed: 1.5" in header
    older = [{"bench": BenchRecord("m.yaml", params=1, threads=1)}]
    assert "load average" not in "\n".join(report._settings_lines(plan, older))


def test_report_header_names_the_runs_that_resumed_and_after_which_epoch(tmp_path):
    settings = dict(data="d.yaml", preset="study", epochs=9, imgsz=64, batch=2, workers=0, optimizer="auto", extra={})
    plan = Plan(tmp_path, [], [0, 1], {}, {}, {**settings, "device": "cpu", "seeds": [0, 1]})
    runs = [TrainRecord("m.yaml", 0, resumed_from_epoch=None), TrainRecord("m.yaml", 1, resumed_from_epoch=4)]
    header = "\n".join(report._settings_lines(plan, [{"model": "m.yaml", "runs": runs, "bench": None}]))
    assert "resumed after an interruption" in header and "`m.yaml` seed 1 after epoch 4" in header
    assert "seed 0 after" not in header
    uninterrupted = [{"model": "m.yaml", "runs": runs[:1], "bench": None}]
    assert "resumed" not in "\n".join(report._settings_lines(plan, uninterrupted))


def test_report_header_names_paths_below_the_working_directory_relatively(tmp_path, monkeypatch):
    """Committed reports should not carry one machine's absolute paths."""
    monkeypatch.chdir(tmp_path)
    settings = dict(preset="study", epochs=1, imgsz=64, batch=2, workers=0, optimizer="auto", extra={}, seeds=[0])
    settings.update(data="/elsewhere/data.yaml", pretrained=str(tmp_path / "w" / "best.pt"), device="cpu")
    header = "\n".join(report._settings_lines(Plan(tmp_path, [], [0], {}, {}, settings), []))
    assert "every model from `w/best.pt`" in header and "data: `/elsewhere/data.yaml`" in header
    bundled = synthetic.cache_dir() / "datasets" / "context-tokens-v2-x" / "data.yaml"
    settings["data"] = str(bundled)
    header = "\n".join(report._settings_lines(Plan(tmp_path, [], [0], {}, {}, settings), []))
    assert "data: `<bundled dataset cache>/context-tokens-v2-x/data.yaml`" in header


def test_report_says_why_a_verdict_is_missing():
    task = TASK_METRICS["detect"]
    baseline = {"model": "a.yaml", **{f"{m.key}_by_seed": {0: 0.5, 1: 0.55} for m in task.accuracy}}
    model = {"model": "b.yaml", **{f"{m.key}_by_seed": {0: 0.525, 1: 0.575} for m in task.accuracy}}
    baseline["map_small_by_seed"] = model["map_small_by_seed"] = {0: None, 1: None}
    rows = [baseline, model]
    lines = paired_markdown(rows, paired_rows(rows, task), task)
    verdict = next(line for line in lines if line.startswith("- `b.yaml` vs `a.yaml`"))
    assert "mAP50-95: **no verdict possible with the same difference on every seed** (+0.0250)" in verdict
    assert "small objects: **n/a (no value for this metric on any paired seed)**" in verdict
    assert "better" not in verdict and "no paired runs yet" not in verdict


def _written_report(tmp_path, maps: dict[str, dict[int, float]], resumed: dict[str, dict[int, int]] | None = None):
    """write_report over records with these mAP50-95 values (small objects 0.1 below); returns (markdown, paired)."""
    from ultralytics_biformer.bench.inputs import ModelEntry
    from ultralytics_biformer.bench.plan import Plan
    from ultralytics_biformer.bench.report import write_report

    models = [ModelEntry(name, name, name.removesuffix(".yaml")) for name in maps]
    seeds = sorted({seed for values in maps.values() for seed in values})
    settings = dict(data="d.yaml", preset="quick", epochs=1, imgsz=64, batch=2, workers=0, optimizer="auto", extra={})
    plan = Plan(tmp_path, models, seeds, {}, {}, {**settings, "device": "cpu", "seeds": seeds})
    for model in models:
        for seed, value in maps[model.spec].items():
            record = {"model": model.spec, "seed": seed, "map": value, "map50": value, "map_small": value - 0.1}
            record["resumed_from_epoch"] = (resumed or {}).get(model.spec, {}).get(seed)
            plan.train_record(model, seed).parent.mkdir(parents=True, exist_ok=True)
            plan.train_record(model, seed).write_text(json.dumps(record))
    write_report(plan)
    with open(tmp_path / "paired.csv") as f:
        paired = list(csv.DictReader(f))
    return (tmp_path / "compare.md").read_text(), paired


def test_report_gives_verdicts_on_named_metrics_only_with_holm_over_models(tmp_path):
    maps = {
        "a.yaml": {0: 0.5, 1: 0.5, 2: 0.5},
        "b.yaml": {0: 0.45, 1: 0.47, 2: 0.46},  # p = 0.0202 on both verdict metrics: "worse" alone
        "c.yaml": {0: 0.52, 1: 0.47, 2: 0.50},
    }
    markdown, paired = _written_report(tmp_path, maps)
    line = next(text for text in markdown.splitlines() if text.startswith("- `b.yaml` vs"))
    # Four tested comparisons (2 models x mAP50-95 and small): 0.0202 x 4 and x 3, then 0.84 x 2 and x 1.
    assert "mAP50-95: **no detectable difference** (-0.0400, p 0.020, Holm 0.081)" in line
    assert "Holm's correction over 4 tested comparisons" in markdown
    rows = {(r["model"], r["metric"]): r for r in paired}
    assert rows["b.yaml", "map"]["verdict"] == "no detectable difference"
    assert float(rows["b.yaml", "map"]["p_value"]) == pytest.approx(0.0202, abs=1e-4)
    assert float(rows["b.yaml", "map"]["p_holm"]) == pytest.approx(4 * 0.020204, abs=2e-4)
    assert rows["b.yaml", "map50"]["verdict"] == "exploratory" and rows["b.yaml", "map50"]["p_holm"] == ""
    alone, _ = _written_report(tmp_path / "alone", {name: maps[name] for name in ("a.yaml", "b.yaml")})
    assert "mAP50-95: **worse** (-0.0400, p 0.020, Holm 0.040)" in alone  # two tests: 0.0202 x 2


def test_report_names_a_diverged_run_as_failed(tmp_path):
    maps = {"a.yaml": {0: 0.5, 1: 0.52, 2: 0.51}, "b.yaml": {0: 0.55, 1: float("nan"), 2: 0.56}}
    markdown, paired = _written_report(tmp_path, maps)
    assert "- `b.yaml` seed 1: finished without a usable mAP50-95 (nan); it diverged" in markdown
    assert "| `b.yaml` | 2: 0, 2 (seed 1 failed) |" in markdown
    assert next(r for r in paired if r["model"] == "b.yaml" and r["metric"] == "map")["seeds"] == "2"


def test_report_flags_pairs_that_contain_a_resumed_run(tmp_path):
    maps = {"a.yaml": {0: 0.5, 1: 0.52, 2: 0.51}, "b.yaml": {0: 0.55, 1: 0.53, 2: 0.56}}
    markdown, paired = _written_report(tmp_path, maps, resumed={"a.yaml": {2: 7}, "b.yaml": {1: 3}})
    line = next(text for text in markdown.splitlines() if text.startswith("- `b.yaml` vs"))
    assert line.endswith("; not exact pairs: seeds 1, 2 resumed")
    assert {r["resumed_seeds"] for r in paired if r["seeds"] != "0"} == {"1 2"}
    plain, plain_paired = _written_report(tmp_path / "plain", maps)
    assert "not exact pairs" not in plain and {r["resumed_seeds"] for r in plain_paired} == {""}


def test_report_header_states_the_workers_asked_for_and_in_effect(tmp_path):
    from ultralytics_biformer.bench.plan import Plan
    from ultralytics_biformer.bench.report import _settings_lines

    settings = dict(data="d.yaml", preset="quick", epochs=1, imgsz=64, batch=2, optimizer="auto", extra={}, seeds=[0])
    cpu = Plan(tmp_path, [], [0], {"workers": 2}, {}, {**settings, "workers": 0, "device": "cpu"})
    assert "workers=2 (0 in effect: Ultralytics loads data in the training process on a cpu)" in _settings_lines(cpu, [])[1]
    gpu = Plan(tmp_path, [], [0], {"workers": 2}, {}, {**settings, "workers": 2, "device": "cuda"})
    assert " workers=2 optimizer" in _settings_lines(gpu, [])[1]

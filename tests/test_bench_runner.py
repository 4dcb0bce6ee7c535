"""Tests of ``ultralytics_biformer.bench.runner``: running the plan's jobs in worker processes."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import plan_with_record

from ultralytics_biformer.bench import runner
from ultralytics_biformer.bench.inputs import ModelEntry


def test_benchmark_finds_weights_below_this_run_folder_or_says_they_are_missing(tmp_path, monkeypatch, capsys):
    """Committed records name weights in the checkout that trained them, which another checkout does not have."""
    model = ModelEntry("v.yaml", str(tmp_path / "v.yaml"), "v", "d1")
    record = {"model": "/old/v.yaml", "weights": "/old/clone/run/runs/v-seed1/weights/best.pt", "train_args": {}}
    plan = dataclasses.replace(plan_with_record(tmp_path / "run", model, record), seeds=[0, 1])
    plan.train_record(model, 0).rename(plan.train_record(model, 1))
    assert runner._local_weights(plan, model, [1]) is None
    monkeypatch.setattr(runner, "_start", lambda *a, **k: pytest.fail("a benchmark started without weights"))
    outcome = runner.Outcome()
    runner._bench_all(plan, outcome)
    assert "no weights of its recorded runs are here" in capsys.readouterr().out
    [failure] = outcome.failures
    assert (failure.label, failure.seed) == ("v", None) and "another checkout" in failure.message

    here = tmp_path / "run" / "runs" / "v-seed1" / "weights" / "best.pt"
    here.parent.mkdir(parents=True)
    here.touch()
    assert runner._local_weights(plan, model, [1]) == str(here)

"""scripts/benchmark_train_step.py times a real training step of each model, interleaved, and refuses bad sizes."""

from __future__ import annotations

import pytest
import torch
from helpers import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmark_train_step")


def test_a_step_trains_the_model(bench):
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolo11n-biformer.yaml", verbose=False)
    before = [p.detach().clone() for p in model.parameters()]
    bench.train_step(model, bench.random_batch(2, 64, torch.device("cpu")), amp=False)()
    stepped = [(a, b) for a, b in zip(before, model.parameters()) if b.grad is not None and b.grad.abs().sum() > 0]
    assert len(stepped) > 200  # the loss reached most tensors (a new BRA branch's inner ones start behind gain 0)
    moved = sum(not torch.equal(a, b) for a, b in stepped)
    assert moved > 0.9 * len(stepped)  # and the optimizer moved them (lr x a tiny gradient rounds away next to 1.0)


def test_main_reports_every_model_against_the_first(bench, capsys):
    ms = bench.main(["--imgsz", "64", "--batch", "2", "--rounds", "1", "--warmup", "0"])
    assert set(ms) == {"yolo11n.yaml", "yolo11n-biformer.yaml"} and all(v > 0 for v in ms.values())
    out = capsys.readouterr().out
    assert "| yolo11n.yaml |" in out and "1.00x" in out and "batch 2, imgsz 64, fp32" in out


@pytest.mark.parametrize("arguments", [["--imgsz", "100"], ["--rounds", "0"]])
def test_bad_arguments_stop_before_any_model_is_built(bench, arguments, capsys):
    with pytest.raises(SystemExit):
        bench.main(arguments)
    assert "error:" in capsys.readouterr().err

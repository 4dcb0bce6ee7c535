"""scripts/model_overhead.py reports progress on stderr, one line per model as it starts, and returns its tables."""

from __future__ import annotations

import pytest
from helpers import load_script


@pytest.fixture(scope="module")
def model_overhead():
    return load_script("model_overhead")


def test_overhead_table_reports_each_model_on_stderr(model_overhead, capsys):
    table = model_overhead.overhead_table("n", 64)
    captured = capsys.readouterr()
    models = [row.split("|")[1].strip() for row in table.splitlines()[2:]]
    assert models == ["yolo11n-biformer", "yolo26n-biformer"]
    progress = [line for line in captured.err.splitlines() if line.startswith("[")]
    assert len(progress) == len(models)
    for i, (model, line) in enumerate(zip(models, progress), 1):
        assert line.startswith(f"[{i}/{len(models)}] {model}.yaml"), line
    assert "|" not in captured.out  # the table is returned for main to print, not printed row by row


def test_transfer_table_reports_each_config_on_stderr(model_overhead, capsys):
    configs = ["yolo11n-biformer-backbone.yaml", "yolo11n-biformer-cls.yaml"]
    table = model_overhead.transfer_table(configs)
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    assert [row.split("|")[1].strip() for row in table.splitlines()[2:]] == configs
    assert len(progress) == len(configs)
    for i, (config, line) in enumerate(zip(configs, progress), 1):
        assert line.startswith(f"[{i}/{len(configs)}] {config}"), line

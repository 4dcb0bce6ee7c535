"""Tests of ``ultralytics_biformer.bench.worker``: one training run in its own process."""

from __future__ import annotations


def test_resumed_results_keep_only_the_epochs_of_the_checkpoint(tmp_path):
    from ultralytics_biformer.bench import worker

    results = tmp_path / "results.csv"
    results.write_text("epoch,time,metric\n1,1.0,0.1\n2,2.0,0.2\n3,3.0,0.3\n")
    worker._drop_rows_after(results, 2)
    assert results.read_text() == "epoch,time,metric\n1,1.0,0.1\n2,2.0,0.2\n"

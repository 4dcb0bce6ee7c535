"""Tests of ``ultralytics_biformer.bench.latency``: interleaved timing rounds, and bad settings refused before any
timing."""

from __future__ import annotations

import pytest


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


def test_ort_session_sets_threads_and_spinning_as_asked(tmp_path):
    import torch

    from ultralytics_biformer.bench.latency import ort_session, random_image

    path = tmp_path / "conv.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 2, 1), torch.zeros(1, 3, 8, 8), str(path), dynamo=False)
    for spinning, entry in ((False, "0"), (True, "1")):
        session = ort_session(path, 2, spinning=spinning)
        options = session.get_session_options()
        assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == entry
    out = session.run(None, {session.get_inputs()[0].name: random_image(8)})[0]
    assert out.shape == (1, 2, 8, 8)
    assert (random_image(8) == random_image(8)).all() and random_image(8).dtype.name == "float32"

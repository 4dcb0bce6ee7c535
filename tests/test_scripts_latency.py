"""scripts/benchmark_latency.py and scripts/profile_latency.py: their tables, CSV and op categories on synthetic
timings.

Nothing here times a model, and one test exports one; the scripts' measuring paths are smoke-tested by running them
(see their docstrings). Building yolo11n-biformer for the layer lookup takes a second or two.
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmark_latency")


@pytest.fixture(scope="module")
def profile():
    return load_script("profile_latency")


MODELS = ["yolo11n.yaml", "yolo11n-biformer.yaml", "yolo12n.yaml"]


def test_ratio_is_each_models_ms_over_the_first_models(bench):
    cells = bench.cell_results("onnx", 2, 640, MODELS, {MODELS[0]: 40.0, MODELS[1]: 46.0, MODELS[2]: 50.0}, {})
    assert [c.model for c in cells] == MODELS
    assert [c.ratio for c in cells] == [1.0, 1.15, 1.25]
    assert all(c.error is None and (c.runtime, c.threads, c.imgsz) == ("onnx", 2, 640) for c in cells)
    assert bench.format_cell(cells[1]) == "46.0 (1.15x)"


def test_a_failed_model_shows_as_failed_with_its_error_under_the_table(bench):
    error = "onnx export failed: RuntimeError: boom"
    cells = []
    for imgsz in (320, 640):
        cells += bench.cell_results("onnx", 1, imgsz, MODELS, {MODELS[0]: 10.0, MODELS[2]: 12.0}, {MODELS[1]: error})
    table = bench.runtime_table(cells, "onnx", MODELS, [1], [320, 640])
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| yolo")}
    assert rows[MODELS[1]] == f"| {MODELS[1]} | failed | failed |"
    assert rows[MODELS[2]] == f"| {MODELS[2]} | 12.0 (1.20x) | 12.0 (1.20x) |"
    assert f"- {MODELS[1]} failed (1x320, 1x640): {error}" in table.splitlines()  # one line for both cells


def test_a_failed_baseline_leaves_the_other_ratios_unknown(bench):
    cells = bench.cell_results("openvino", 1, 320, MODELS, {MODELS[1]: 9.0}, {MODELS[0]: "run failed: x"})
    assert [bench.format_cell(c) for c in cells] == ["failed", "9.0 (n/a)", "failed"]
    assert cells[2].error == "not measured"  # in neither dict: never silently missing


def test_report_has_the_machine_facts_and_a_table_per_runtime_with_threads_by_size_columns(bench):
    cells = [
        c
        for runtime in ("torch", "onnx-dynamic")
        for t in (1, 2)
        for s in (320, 640)
        for c in bench.cell_results(runtime, t, s, MODELS[:2], {MODELS[0]: 10.0 * t, MODELS[1]: 11.0 * t}, {})
    ]
    facts = {"CPU": "Test CPU", "1-minute load average at start": "0.10", "1-minute load average at end": "0.20"}
    report = bench.markdown_report(cells, facts, ["torch", "onnx-dynamic"], MODELS[:2], [1, 2], [320, 640])
    assert "- CPU: Test CPU" in report and "- 1-minute load average at end: 0.20" in report
    assert "## PyTorch (eager, fused)" in report and "## ONNX Runtime, dynamic export" in report
    assert report.count("| model | 1 thread, 320 | 1 thread, 640 | 2 threads, 320 | 2 threads, 640 |") == 2
    assert f"| {MODELS[1]} | 11.0 (1.10x) | 11.0 (1.10x) | 22.0 (1.10x) | 22.0 (1.10x) |" in report


def test_csv_has_a_row_per_cell_with_empty_fields_where_nothing_applies(bench, tmp_path):
    cells = bench.cell_results("torch", 1, 320, MODELS[:2], {MODELS[0]: 10.0}, {MODELS[1]: "run failed: x"})
    bench.write_csv(cells, tmp_path / "latency.csv")
    with open(tmp_path / "latency.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["runtime", "threads", "imgsz", "model", "ms", "ratio", "error"]
    expected = {"runtime": "torch", "threads": "1", "imgsz": "320", "model": MODELS[0], "ms": "10.0", "ratio": "1.0"}
    assert rows[0] == expected | {"error": ""}
    assert (rows[1]["ms"], rows[1]["ratio"], rows[1]["error"]) == ("", "", "run failed: x")


def test_a_run_that_fails_is_reported_and_the_others_still_timed(bench):
    def broken():
        raise RuntimeError("no such input")

    errors = {}
    ms = bench.time_runs({"a": lambda: None, "b": broken, "c": lambda: None}, errors, warmup=0, rounds=3)
    assert set(ms) == {"a", "c"} and all(v >= 0 for v in ms.values())
    assert errors == {"b": "run failed: RuntimeError: no such input"}


def test_a_model_yaml_given_by_a_relative_path_exports(bench, tmp_path, monkeypatch):
    """Exports run inside their own folder, where a relative path no longer leads to the YAML."""
    monkeypatch.chdir(Path(__file__).parents[1])
    exported = bench.export("ultralytics_biformer/cfg/ablation/yolo11n-bf-means.yaml", "onnx", 64, False, tmp_path)
    assert exported.suffix == ".onnx" and exported.is_file()


@pytest.mark.parametrize(
    "argv", [["--rounds", "0"], ["--warmup", "-1"], ["--runtimes", "torch,tensorrt"], ["--threads", "0"]]
)
def test_bad_options_are_usage_errors_before_any_work(bench, argv, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(argv)
    assert e.value.code == 2


def test_op_names_map_to_categories_and_an_unknown_one_to_other(profile):
    assert profile.torch_op_category("aten::topk") == "routing top-k"
    assert profile.torch_op_category("aten::index_select") == "gather"
    assert profile.torch_op_category("aten::_scaled_dot_product_flash_attention_for_cpu") == "attention"
    assert profile.torch_op_category("aten::constant_pad_nd") == profile.LAYOUT
    assert profile.torch_op_category("aten::never_heard_of") == "other"
    assert profile.onnx_op_category("TopK") == "routing top-k"
    assert profile.onnx_op_category("NeverHeardOf") == "other"


def event(name, us, *children):
    return SimpleNamespace(name=name, cpu_time_total=us, cpu_children=list(children))


def test_profiler_events_are_attributed_by_module_role_then_op_name(profile):
    def forward(scale):
        ops = profile.label(10, profile.OPS)
        return event(
            profile.label(10, profile.LAYER),
            200 * scale,
            event("aten::conv2d", 50 * scale),  # the layer's own op: rest of layer
            event("profiler::_record_function_enter_new", 3),  # our labels' cost: not an op of the layer
            event(profile.label(10, profile.ROLE_QKV), 100 * scale, event("aten::conv2d", 100 * scale)),
            event(ops, 20 * scale, event("aten::topk", 10 * scale), event("aten::mystery", 5 * scale)),
        )

    parts = profile.attribute_events([forward(1), forward(3), event("aten::conv2d", 999)])  # two forwards of layer 10
    assert parts == {
        10: {
            profile.LAYER: 100.0,
            profile.ROLE_QKV: 200.0,
            "routing top-k": 20.0,
            "other": 10.0,
            profile.NO_OP: (200 - 165 + 600 - 495) / 2,
        }
    }


def test_onnx_node_names_map_to_module_names(profile):
    assert profile.node_module("/model.10/m/m.0/attn/qkv/conv/Conv") == "model.10.m.0.attn.qkv.conv"
    assert profile.node_module("/model.16/bra/mlp/mlp.0/conv/Conv") == "model.16.bra.mlp.0.conv"
    assert profile.node_module("/model.16/bra/attn/TopK") == "model.16.bra.attn"


def test_onnx_profile_skips_warm_up_runs_and_attributes_nodes(profile):
    roles = {
        "model.16": (16, profile.LAYER),
        "model.16.bra.attn": (16, profile.OPS),
        "model.16.bra.attn.qkv": (16, profile.ROLE_QKV),
    }

    def node(name, op, ts, dur):
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "args": {"op_name": op}}

    events = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 90},
        node("/model.16/bra/attn/TopK", "TopK", 10, 1000),  # warm-up: left out
        {"cat": "Session", "name": "model_run", "ts": 100, "dur": 90},
        node("/model.16/bra/attn/qkv/conv/Conv", "Conv", 110, 30),
        node("/model.16/bra/attn/TopK", "TopK", 120, 4),
        node("/model.16/bra/attn/Frobnicate", "Frobnicate", 125, 2),
        node("/model.16/cv1/conv/Conv", "Conv", 130, 10),
        node("/model.2/cv1/conv/Conv", "Conv", 140, 50),  # not a profiled layer
    ]
    parts, layer_us, total_us = profile.attribute_ort_profile(events, roles, skip_runs=1)
    assert parts == {16: {profile.ROLE_QKV: 30, "routing top-k": 4, "other": 2, profile.LAYER: 10}}
    assert layer_us == {16: 46} and total_us == 96


def test_bra_layers_and_their_stock_twins_are_found_by_class(profile):
    ours, stock = (
        profile.build("yolo11n-biformer.yaml"),
        profile.build(profile.stock_twin_config("yolo11n-biformer.yaml")),
    )
    layers = profile.routing_layer_indices(ours)
    assert [type(ours.model[i]).__name__ for i in layers] == ["C2PSA_BRA", "C3k2_BRA", "C3k2_BRA", "C3k2_BRA"]
    assert profile.twin_layer_indices(ours, stock, layers) == {i: i for i in layers}
    assert profile.routing_layer_indices(stock) == []
    roles = profile.module_roles(ours, layers)
    assert roles["model.10.m.0.attn.qkv"] == (10, profile.ROLE_QKV)
    assert roles["model.16.bra.attn"] == (16, profile.OPS)
    assert roles["model.16.bra.mlp"] == (16, profile.ROLE_MLP)


def test_breakdown_table_orders_bra_steps_and_totals_each_column(profile):
    ours = {16: {profile.LAYER: 3000.0, "routing top-k": 1000.0, profile.ROLE_QKV: 2000.0}}
    stock = {16: {profile.LAYER: 2500.0}}
    table = profile.breakdown_table([16], {16: 16}, ours, stock)
    rows = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert rows == [profile.ROLE_QKV, "routing top-k", profile.LAYER, "total"]
    assert table.splitlines()[-1] == "| total | 6.00 | 2.50 | 6.00 | 2.50 | 100% |"


def test_onnx_nodes_are_counted_per_layer_and_shown_next_to_the_twins(profile):
    names = ["/model.16/bra/attn/TopK", "/model.16/cv1/conv/Conv", "model.16/Concat", "/model.2/Conv", "/Concat_1"]
    assert profile.layer_node_counts(names) == {16: 3, 2: 1, None: 1}
    table = profile.ort_layer_table(
        [16, 19], {16: 16, 19: None}, {16: 2000.0}, 10000.0, {16: 1000.0}, 8000.0, {16: 3, 2: 1, None: 1}, {16: 2}
    )
    rows = [row.split("|")[1:-1] for row in table.splitlines()[2:]]
    assert [cell.strip() for cell in rows[0]] == ["16", "2.00", "20.0%", "3", "1.00", "12.5%", "2"]
    assert [cell.strip() for cell in rows[1]][3] == "-" and [cell.strip() for cell in rows[1]][6] == "-"
    assert [cell.strip() for cell in rows[2]][3] == "5" and [cell.strip() for cell in rows[2]][6] == "2"

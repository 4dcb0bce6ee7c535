"""Tests of ``ultralytics_biformer.integration``: parser bookkeeping, stock invariance, YAML lookup and YAML-row errors,
versions, and checkpoints of our models through Ultralytics (predict, val, corrupt files, reloading while
unregistered or without the autoload)."""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
import os
import random
import re
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import ultralytics
from helpers import wake_branches, write_tiny_dataset
from ultralytics import YOLO
from ultralytics.nn import tasks
from ultralytics.nn.modules.block import C2PSA, C3k2
from ultralytics.nn.tasks import ClassificationModel, DetectionModel, OBBModel, PoseModel, SegmentationModel

import ultralytics_biformer
from ultralytics_biformer import BRA, C2PSA_BRA, BiLevelRoutingAttention, C3k2_BRA, config_dir, integration

STOCK_CFG = Path(ultralytics.__file__).parent / "cfg" / "models"
TASK_MODELS = {"": DetectionModel, "-seg": SegmentationModel, "-pose": PoseModel, "-obb": OBBModel}


def build(cfg, model_cls=DetectionModel, seed=0, **kwargs):
    torch.manual_seed(seed)
    return model_cls(cfg, verbose=False, **kwargs)


def stock_tensors_missing(stock, ours):
    """Stock state-dict entries that have no same-named, same-shaped tensor in ``ours``."""
    theirs = ours.state_dict()
    return [k for k, v in stock.state_dict().items() if k not in theirs or theirs[k].shape != v.shape]


@contextlib.contextmanager
def layer_table():
    """Collect the layer-table rows Ultralytics logs inside the block, as a dict layer index -> row text."""
    from ultralytics.utils import LOGGER

    rows = {}

    class Rows(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if message[:3].strip().isdigit():  # rows start with the index, right-aligned in 3 characters
                rows[int(message[:3])] = message

    handler = Rows()
    LOGGER.addHandler(handler)
    try:
        yield rows
    finally:
        LOGGER.removeHandler(handler)


@contextlib.contextmanager
def stock_parser_replaced_by(parser):
    """Make ``parser`` stand in for Ultralytics' parse_model, unregistered; restore the true one and register after."""
    ultralytics_biformer.unregister()
    true_stock = tasks.parse_model
    tasks.parse_model = parser
    try:
        yield true_stock
    finally:
        ultralytics_biformer.unregister()
        tasks.parse_model = true_stock
        ultralytics_biformer.register()


@pytest.mark.parametrize("scale", ["n", "s", *(pytest.param(s, marks=pytest.mark.slow) for s in "mlx")])
def test_every_yolo11_scale_gets_stock_bookkeeping(scale):
    stock, ours = build(f"yolo11{scale}.yaml"), build(f"yolo11{scale}-biformer.yaml")
    assert type(ours.model[10]) is C2PSA_BRA and type(stock.model[10]) is C2PSA
    for i in (16, 19, 22):
        assert type(ours.model[i]) is C3k2_BRA and type(stock.model[i]) is C3k2
        # same channels, same repeats, same per-scale c3k choice: the stock part of the layer is identical
        assert [(k, v.shape) for k, v in stock.model[i].state_dict().items()] == [
            (k, v.shape) for k, v in ours.model[i].state_dict().items() if not k.startswith("bra.")
        ]
    assert stock_tensors_missing(stock, ours) == []
    assert ours.model[10].m[0].attn.n_win == 2 and ours.model[16].bra.attn.topk == 2
    assert ours.model[16].type.endswith("C3k2_BRA") and ours.model[16].np == sum(p.numel() for p in ours.model[16].parameters())
    if scale == "n":  # the forward pass of the large scales proves nothing more and costs most of the test
        x = torch.rand(1, 3, 256, 256)
        with torch.no_grad():
            assert ours.eval()(x)[0].shape == stock.eval()(x)[0].shape


@pytest.mark.parametrize("family", ["yolo11", "yolo26"])
@pytest.mark.parametrize("task", ["", "-seg", "-pose", "-obb", "-cls"])
def test_task_configs_transfer_every_stock_tensor(family, task):
    model_cls = TASK_MODELS.get(task, ClassificationModel)
    stock = build(f"{family}n{task}.yaml", model_cls)
    ours = build(f"{family}n-biformer{task}.yaml", model_cls)
    assert stock_tensors_missing(stock, ours) == []
    assert any(isinstance(m, BiLevelRoutingAttention) for m in ours.modules())
    size = 64 if task == "-cls" else 128
    with torch.no_grad():
        ours.eval()(torch.rand(1, 3, size, size))


def test_fresh_biformer_model_reproduces_stock_outputs_with_stock_weights():
    """New BRA refinements start as the identity, and C2PSA_BRA with topk >= regions is C2PSA: same outputs."""
    stock = build("yolo11n.yaml")
    ours = build("yolo11n-biformer.yaml")
    ours.load_state_dict(stock.state_dict(), strict=False)
    for block in ours.model[10].m:
        block.attn.topk = 4  # n_win=2 gives 4 regions: route to all of them
    x = torch.rand(1, 3, 128, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x)[0], stock.eval()(x)[0], atol=1e-4, rtol=1e-4)


def test_ablation_configs():
    stock = build("yolo11n.yaml")
    backbone = build("yolo11n-biformer-backbone.yaml")
    assert type(backbone.model[10]) is C2PSA_BRA and not any(isinstance(m, C3k2_BRA) for m in backbone.modules())
    assert stock_tensors_missing(stock, backbone) == []
    neck = build("yolo11n-biformer-neck.yaml")
    assert [type(neck.model[i]) for i in (23, 24, 25)] == [BRA] * 3
    assert [neck.model[i].attn.proj.conv.out_channels for i in (23, 24, 25)] == [64, 128, 256]
    assert neck.model[26].f == [23, 24, 25]
    assert type(neck.model[10]) is C2PSA
    assert [k for k in stock_tensors_missing(stock, neck) if not k.startswith("model.23.")] == []


def test_yaml_layer_scale_key_reaches_every_new_bra_block_only():
    cfg = copy.deepcopy(tasks.yaml_model_load("yolo11n-biformer.yaml"))  # C3k2_BRA rows, plus a standalone BRA row:
    cfg["head"].insert(len(cfg["head"]) - 1, [-1, 1, "BRA", [1024, 2, 2]])
    cfg["head"][-1][0] = [16, 19, 23]
    cfg["bra_layer_scale"] = 0.25
    model = build(cfg)
    blocks = [m for m in model.modules() if isinstance(m, BRA)]
    assert len(blocks) == 4
    gains = {float(w) for b in blocks for end in (b.pos, b.attn.proj, b.mlp[-1]) for w in end.bn.weight}
    assert gains == {0.25}
    default = build("yolo11n-biformer.yaml")
    assert {float(w) for m in default.modules() if isinstance(m, BRA) for w in m.mlp[-1].bn.weight} == {0.0}
    stock_psa_gains = {float(w) for w in default.model[10].m[0].attn.proj.bn.weight}
    assert stock_psa_gains == {1.0}  # C2PSA_BRA's branches are stock ones: the key does not touch them


@pytest.mark.parametrize("value", [-0.5, 1.5, "small", True])
def test_yaml_layer_scale_key_rejects_bad_values(value):
    cfg = copy.deepcopy(tasks.yaml_model_load("yolo11n-biformer.yaml"))
    cfg["bra_layer_scale"] = value
    with pytest.raises(ValueError, match=rf"bra_layer_scale: layer_scale must be a number from 0 to 1, got {value!r}"):
        build(cfg)


def test_yaml_region_means_key_reaches_every_routing_attention():
    cfg = copy.deepcopy(tasks.yaml_model_load("yolo11n-biformer.yaml"))  # C2PSA_BRA, C3k2_BRA and a standalone BRA
    cfg["head"].insert(len(cfg["head"]) - 1, [-1, 1, "BRA", [1024, 2, 2]])
    cfg["head"][-1][0] = [16, 19, 23]
    default = build(copy.deepcopy(cfg))
    cfg["bra_region_means"] = True
    model = build(cfg)
    attentions = [m for m in model.modules() if isinstance(m, BiLevelRoutingAttention)]
    assert len(attentions) == 5 and all(a.region_means for a in attentions)  # layer 10 holds one, 16/19/22/23 one each
    assert not any(m.region_means for m in default.modules() if isinstance(m, BiLevelRoutingAttention))
    # The option adds no parameters: same weights (given weight, see wake_branches), other attention.
    model.load_state_dict(wake_branches(default).state_dict())
    stock_attentions = [m for m in default.modules() if isinstance(m, BiLevelRoutingAttention)]
    with torch.no_grad():
        for ours, stock in zip(attentions, stock_attentions):
            x = torch.randn(1, ours.proj.conv.out_channels, 16, 16)
            assert not torch.allclose(ours.eval()(x), stock.eval()(x))


@pytest.mark.parametrize("value", [1, "yes", None])
def test_yaml_region_means_key_rejects_non_booleans(value):
    cfg = copy.deepcopy(tasks.yaml_model_load("yolo11n-biformer.yaml"))
    cfg["bra_region_means"] = value
    with pytest.raises(ValueError, match=rf"bra_region_means must be true or false, got {re.escape(repr(value))}"):
        build(cfg)


def test_standalone_bra_row_repeats_scale_with_depth():
    cfg = copy.deepcopy(tasks.yaml_model_load("yolo11n.yaml"))
    cfg["head"].insert(len(cfg["head"]) - 1, [-1, 4, "BRA", [1024, 2, 2]])  # after layer 22: n=4 * depth 0.5 -> 2
    cfg["head"][-1][0] = [16, 19, 23]
    model = build(cfg)
    assert isinstance(model.model[23], torch.nn.Sequential) and [type(m) for m in model.model[23]] == [BRA, BRA]
    assert model.model[23][0].attn.proj.conv.out_channels == 256  # 1024 * width 0.25


@pytest.mark.parametrize(
    "row, message",
    [
        ([-1, 2, "C2PSA_BRA", [1024, 0, 2]], "layer 10 (C2PSA_BRA): n_win must be a positive integer, got 0"),
        ([-1, 2, "C2PSA_BRA", [1024, 2, -1]], "layer 10 (C2PSA_BRA): topk must be a positive integer, got -1"),
        (
            [-1, 2, "C2PSA_BRA", [1024, 2, 1.5]],
            "expected n_win and topk, positive integers, at the end of the args, got [1024, 2, 1.5] (topk is 1.5)",
        ),
        ([-1, 2, "C2PSA_BRA", [1024, 2, "x"]], "at the end of the args, got [1024, 2, 'x'] (topk is 'x')"),
        (  # topk left out: the c3k flag would otherwise be read as n_win
            [-1, 2, "C3k2_BRA", [256, False, 8]],
            "layer 10 (C3k2_BRA): expected n_win and topk, positive integers, at the end of the args, "
            "got [256, False, 8] (n_win is False)",
        ),
        ([-1, 2, "C2PSA_BRA", [2, 2]], "layer 10 (C2PSA_BRA): expected c2, n_win and topk at least, got [2, 2]"),
        ([-1, 2, "C2PSA_BRA", [1024, 0.5, 1, 2, 2]], "expected at most 4 args, got 5: [1024, 0.5, 1, 2, 2]"),
        ([-1, 2, "C2PSA_BRA", 7], "layer 10 (C2PSA_BRA): args must be a list, got 7"),
        (
            [-1, 1, "BRA", [256, 2]],
            "layer 10 (BRA): expected c2, n_win and topk at least, got [256, 2]; BRA rows take [c2, n_win, topk]",
        ),
        (
            [-1, 1, "BRA", [512, 2, 2]],
            "layer 10 (BRA): BRA preserves channels, but its input has 256 and the row asks for 128",
        ),
    ],
)
def test_bad_rows_name_the_layer_and_value(row, message):
    cfg = copy.deepcopy(tasks.yaml_model_load("yolo11n.yaml"))
    cfg["backbone"][10] = row
    with pytest.raises(ValueError) as e:
        build(cfg)
    assert message in str(e.value)


def test_heads_must_divide_channels():
    """Stock C2PSA would build and only fail at run time; ours says at build time which layer is wrong and why."""
    cfg = copy.deepcopy(tasks.yaml_model_load("yolo11n.yaml"))
    cfg["backbone"][10] = [-1, 1, "C2PSA_BRA", [1024, 0.78125, 2, 2]]  # 256 channels * e = 200 hidden, 3 heads
    with pytest.raises(ValueError, match=r"layer 10 \(C2PSA_BRA\): dim=200 must be divisible by num_heads=3"):
        build(cfg)


@pytest.mark.slow
def test_stock_yamls_are_untouched_by_the_hook(registered):
    """With the hook active every stock model builds exactly as without it (a sample here; scripts/ checks all)."""
    ultralytics_biformer.unregister()
    stock_parse = tasks.parse_model  # taken while unregistered, and checked to be Ultralytics' own function
    assert stock_parse.__module__ == "ultralytics.nn.tasks" and stock_parse.__qualname__ == "parse_model"
    stock_yamls = sorted(p for p in STOCK_CFG.rglob("*.yaml") if "rtdetr" not in p.name and "yoloe" not in p.name)
    sample = random.Random(0).sample(stock_yamls, 4) + [STOCK_CFG / "11" / "yolo11.yaml"]
    for path in sample:
        cfg = tasks.yaml_model_load(path)
        model_cls = tasks.guess_model_task(cfg)
        model_cls = {"detect": DetectionModel, "segment": SegmentationModel, "pose": PoseModel, "obb": OBBModel}.get(
            model_cls, None
        )
        if model_cls is None:
            continue
        ultralytics_biformer.register()
        assert tasks.parse_model is integration._parse_model
        with_hook = build(copy.deepcopy(cfg), model_cls)
        ultralytics_biformer.unregister()
        assert tasks.parse_model is stock_parse
        without = build(copy.deepcopy(cfg), model_cls)
        assert sum(p.numel() for p in with_hook.parameters()) == sum(p.numel() for p in without.parameters()), path
        x = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            a, b = with_hook.eval()(x), without.eval()(x)
        a, b = (t[0] if isinstance(t, (tuple, list)) else t for t in (a, b))
        a, b = (t["one2many"] if isinstance(t, dict) else t for t in (a, b))
        torch.testing.assert_close(a, b, msg=str(path))


def test_register_and_unregister_are_idempotent_and_thread_safe(registered):
    ultralytics_biformer.unregister()
    stock_parse = tasks.parse_model  # Ultralytics' own, taken while unregistered
    assert stock_parse.__module__ == "ultralytics.nn.tasks" and stock_parse.__qualname__ == "parse_model"

    def churn():
        for _ in range(50):
            ultralytics_biformer.unregister()
            ultralytics_biformer.register()

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ultralytics_biformer.register()
    ultralytics_biformer.register()
    assert ultralytics_biformer.is_registered() and tasks.parse_model is integration._parse_model
    ultralytics_biformer.unregister()
    ultralytics_biformer.unregister()
    assert not ultralytics_biformer.is_registered() and tasks.parse_model is stock_parse
    with pytest.raises(KeyError, match="C2PSA_BRA"):
        build(str(config_dir() / "yolo11-biformer.yaml"))


def test_references_to_the_wrapper_build_stock_models_after_unregister(registered):
    """Ultralytics re-exports the parser as ``ultralytics.nn.parse_model``, bound while our patch is in place; that
    reference, and any plug-in's wrapper around ours, must still build stock models once we unregister."""
    import ultralytics.nn

    ultralytics_biformer.register()
    ours = tasks.parse_model
    ultralytics_biformer.unregister()
    d = tasks.yaml_model_load("yolo11n.yaml")
    model, _ = ours(copy.deepcopy(d), ch=3, verbose=False)
    assert len(model) == len(d["backbone"]) + len(d["head"])
    assert ultralytics.nn.parse_model(copy.deepcopy(d), ch=3, verbose=False)[0][10].__class__ is C2PSA
    with pytest.raises(KeyError, match="C2PSA_BRA"):  # passing through means knowing our blocks no more
        ours(tasks.yaml_model_load(str(config_dir() / "yolo11-biformer.yaml")), ch=3, verbose=False)


def test_unregister_keeps_a_patch_another_plugin_stacked_on_ours(registered):
    ultralytics_biformer.unregister()
    stock = tasks.parse_model
    ultralytics_biformer.register()
    ours = tasks.parse_model

    def other_plugin(d, ch, *args, **kwargs):
        return ours(d, ch, *args, **kwargs)

    tasks.parse_model = other_plugin
    try:
        ultralytics_biformer.unregister()
        assert tasks.parse_model is other_plugin and not ultralytics_biformer.is_registered()
        assert type(build("yolo11n.yaml").model[10]) is C2PSA
        ultralytics_biformer.register()  # wraps the other plug-in's parser, which still calls ours, passing through
        assert type(build(str(config_dir() / "yolo11-biformer.yaml")).model[10]) is C2PSA_BRA
    finally:
        ultralytics_biformer.unregister()
        tasks.parse_model = stock
        ultralytics_biformer.register()


def test_unsupported_ultralytics_version_fails_loudly(registered, monkeypatch):
    ultralytics_biformer.unregister()
    monkeypatch.setattr(ultralytics, "__version__", "9.0.0")
    with pytest.raises(RuntimeError, match=r"supports ultralytics<8.5,>=8.4.0|supports ultralytics>=8.4.0,<8.5") as e:
        ultralytics_biformer.register()
    assert "9.0.0 is installed" in str(e.value)
    assert not ultralytics_biformer.is_registered() and tasks.parse_model is not integration._parse_model


def test_a_missing_stock_twin_fails_at_register(registered, monkeypatch):
    """A newer Ultralytics without a block ours are built from is refused up front, not at every model build."""
    ultralytics_biformer.unregister()
    monkeypatch.delattr(tasks, "C2PSA")
    with pytest.raises(RuntimeError, match=r"ultralytics\.nn\.tasks has no C2PSA, which .* not supported"):
        ultralytics_biformer.register()
    assert not ultralytics_biformer.is_registered() and tasks.parse_model is not integration._parse_model


def test_bundled_yaml_names_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tasks.yaml_model_load("yolo11s-biformer-seg.yaml")
    assert d["scale"] == "s" and Path(d["yaml_file"]).name == "yolo11s-biformer-seg.yaml"
    assert any(row[2] == "C2PSA_BRA" for row in d["backbone"])
    local = tmp_path / "yolo11-biformer.yaml"  # a local file of the same name wins, as for stock names
    local.write_text((STOCK_CFG / "11" / "yolo11.yaml").read_text())
    assert not any(row[2] == "C2PSA_BRA" for row in tasks.yaml_model_load("yolo11n-biformer.yaml")["backbone"])


@pytest.mark.parametrize(
    "typed, suggested",
    [
        ("yolo11n-biformr.yaml", "yolo11n-biformer.yaml"),
        ("yolo11s-biformer-sge.yaml", "yolo11n-biformer-seg.yaml"),
        ("yolo26n-bifromer-pose.yaml", "yolo26n-biformer-pose.yaml"),
    ],
)
def test_a_misspelt_bundled_name_gets_the_closest_one(typed, suggested, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=rf"did you mean '{suggested}' \(bundled with ultralytics-biformer"):
        tasks.yaml_model_load(typed)


@pytest.mark.parametrize("name", ["yolo11q.yaml", "yolo11n-seg-extra.yaml", "my-model.yaml"])
def test_other_missing_names_fail_as_in_stock_ultralytics(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as ours:
        tasks.yaml_model_load(name)
    ultralytics_biformer.unregister()
    try:
        with pytest.raises(FileNotFoundError) as stock:
            tasks.yaml_model_load(name)
    finally:
        ultralytics_biformer.register()
    assert str(ours.value) == str(stock.value) and "did you mean" not in str(ours.value)


def test_layer_table_names_our_blocks():
    with layer_table() as rows:
        model = DetectionModel("yolo11n-biformer.yaml", verbose=True)
    assert "ultralytics_biformer.C2PSA_BRA " in rows[10] and "n_win=2, topk=2]" in rows[10]
    assert f"{model.model[10].np:10.0f}  " in rows[10]  # the converted block's parameters, not the stock twin's
    assert "C3k2_BRA" in rows[16] and "C3k2_BRA" not in rows[13] and "C2PSA " not in rows[10]


def test_layer_table_relabels_rows_by_index_not_by_their_text():
    """A stock 1x1 Conv row that prints exactly like the BRA row after it keeps its own label."""
    cfg = copy.deepcopy(tasks.yaml_model_load("yolo11n.yaml"))
    cfg["head"][-1:-1] = [[-1, 1, "Conv", [1024, 1]], [-1, 1, "BRA", [1024, 2, 2]]]  # layers 23 and 24
    cfg["head"][-1][0] = [16, 19, 24]
    twin = copy.deepcopy(cfg)
    twin["head"][-2] = [-1, 1, "Conv", [1024, 1]]  # what the stock parser is handed for the BRA row
    with layer_table() as twin_rows:
        DetectionModel(twin, verbose=True)
    assert twin_rows[23][3:] == twin_rows[24][3:]  # the ambiguity this test is about: only the index differs
    with layer_table() as rows:
        model = DetectionModel(cfg, verbose=True)
    assert rows[23] == twin_rows[23]
    assert "ultralytics_biformer.BRA " in rows[24] and "n_win=2, topk=2]" in rows[24]
    assert f"{model.model[24].np:10.0f}  " in rows[24]


def test_layer_table_of_a_failed_parse_shows_the_rows_built_before_the_error():
    """As for stock YAMLs: the rows up to the bad one are printed, so the user sees where parsing stopped."""
    tables = []
    for name in ("yolo11n.yaml", "yolo11n-biformer.yaml"):
        cfg = copy.deepcopy(tasks.yaml_model_load(name))
        cfg["head"][5] = [-1, 1, "NoSuchBlock", []]  # layer 16, after our C2PSA_BRA at 10
        with layer_table() as rows, pytest.raises(KeyError, match="NoSuchBlock"):
            DetectionModel(cfg, verbose=True)
        tables.append(rows)
    stock, ours = tables
    assert sorted(ours) == sorted(stock) == list(range(len(tasks.yaml_model_load("yolo11n.yaml")["backbone"]) + 5))
    assert "ultralytics_biformer" not in ours[10]  # never converted: the parser failed before any conversion


def test_layer_table_of_a_bad_row_of_ours_shows_the_rows_built_before_it():
    """As for a bad stock row: the rows before it are printed, our blocks among them named, then the error."""
    cfg = copy.deepcopy(tasks.yaml_model_load("yolo11n-biformer.yaml"))
    cfg["head"][5] = [-1, 1, "C3k2_BRA", [256, False, 8]]  # layer 16, after our C2PSA_BRA at 10: topk left out
    with layer_table() as rows, pytest.raises(ValueError, match=r"layer 16 \(C3k2_BRA\): expected n_win and topk"):
        DetectionModel(cfg, verbose=True)
    assert sorted(rows) == list(range(16))
    assert "ultralytics_biformer.C2PSA_BRA " in rows[10] and "n_win=2, topk=2]" in rows[10]


def test_the_first_bad_row_is_reported_whether_it_is_ours_or_stock():
    """Rows are checked in order, as the stock parser checks its own, so a stock error before ours is the one raised."""
    cfg = copy.deepcopy(tasks.yaml_model_load("yolo11n-biformer.yaml"))
    cfg["head"][5] = [-1, 1, "C3k2_BRA", [256, False, 8]]  # layer 16: topk left out
    cfg["head"][2] = [-1, 1, "NoSuchBlock", []]  # layer 13
    with layer_table() as rows, pytest.raises(KeyError, match="NoSuchBlock"):
        DetectionModel(cfg, verbose=True)
    assert sorted(rows) == list(range(13))


def test_layer_table_of_a_failed_conversion_names_the_blocks_converted_before_it():
    cfg = copy.deepcopy(tasks.yaml_model_load("yolo11n-biformer.yaml"))
    cfg["head"].insert(len(cfg["head"]) - 1, [-1, 1, "BRA", [512, 2, 2]])  # layer 23: 128 channels asked, 256 in
    with layer_table() as rows, pytest.raises(ValueError, match=r"layer 23 \(BRA\): BRA preserves channels"):
        DetectionModel(cfg, verbose=True)
    assert sorted(rows) == list(range(len(cfg["backbone"]) + len(cfg["head"])))
    assert "ultralytics_biformer.C2PSA_BRA " in rows[10] and "ultralytics_biformer.C3k2_BRA " in rows[22]
    assert "ultralytics_biformer" not in rows[23]


def test_extra_parser_arguments_reach_the_stock_parser():
    """A future Ultralytics may give parse_model more parameters; the wrapper passes them on, for every model."""
    seen = []

    def parser(d, ch, verbose=True, flavour=None, *, extra=None):
        seen.append((flavour, extra))
        return true_stock(d, ch, verbose)

    with stock_parser_replaced_by(parser) as true_stock:
        ultralytics_biformer.register()
        for name in ("yolo11n.yaml", "yolo11n-biformer.yaml"):
            model, _ = tasks.parse_model(copy.deepcopy(tasks.yaml_model_load(name)), 3, False, "sweet", extra=name)
            assert any(isinstance(m, C2PSA_BRA) for m in model) == ("biformer" in name)
    assert seen == [("sweet", "yolo11n.yaml"), ("sweet", "yolo11n-biformer.yaml")]


@pytest.mark.parametrize(
    "parser",
    [lambda cfg, ch, verbose=True: None, lambda d, verbose=True: None, lambda *args, **kwargs: None],
    ids=["renamed", "ch-dropped", "var-args"],
)
def test_unknown_parser_signature_fails_at_register(parser):
    with stock_parser_replaced_by(parser):
        with pytest.raises(RuntimeError, match=r"parse_model\(d, ch, \.\.\.\).*Ultralytics is not supported") as e:
            ultralytics_biformer.register()
        assert str(inspect.signature(parser)) in str(e.value)
        assert not ultralytics_biformer.is_registered() and tasks.parse_model is parser


@pytest.mark.parametrize("imgsz", [320, 352])  # 352: P3 is 44x44, which 8 regions per axis tile with padding
def test_reported_gflops_count_the_attention_products(imgsz):
    from torch.utils.flop_counter import FlopCounterMode
    from ultralytics.utils.torch_utils import get_flops

    model = build("yolo11n-biformer.yaml").eval().fuse(verbose=False)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, imgsz, imgsz))
    attention = sum(
        n for op, n in counter.get_flop_counts()["Global"].items() if "convolution" not in str(op)
    )  # the routing and token products: everything FlopCounterMode sees besides convolutions
    assert attention > 0.01 * counter.get_total_flops()
    assert get_flops(model, imgsz) * 1e9 == pytest.approx(counter.get_total_flops(), rel=1e-6)


def _warnings_while(build) -> list[str]:
    from ultralytics.utils import LOGGER

    said = []
    original = LOGGER.warning
    LOGGER.warning = lambda message, *a, **k: said.append(str(message))
    try:
        build()
    finally:
        LOGGER.warning = original
    return said


def test_a_row_inserted_without_renumbering_the_head_is_warned_about():
    cfg = copy.deepcopy(tasks.yaml_model_load("yolo11n.yaml"))
    cfg["head"].insert(0, [-1, 1, "BRA", [1024, 2, 2]])  # after layer 10; the head still says [16, 19, 22]
    said = _warnings_while(lambda: DetectionModel(cfg, verbose=False))
    assert any("reads layer 16 (Concat), layer 19 (Concat), layer 22 (Concat)" in m for m in said), said
    assert any("point the head and the later 'from' entries at the new indices" in m for m in said)


@pytest.mark.parametrize("config", sorted(p.name for p in config_dir().glob("*.yaml")))
def test_no_bundled_config_is_warned_about(config):
    from ultralytics import YOLO

    name = config.replace("-biformer", "n-biformer", 1)
    said = _warnings_while(lambda: YOLO(name))
    assert not any("heads read feature blocks" in m for m in said), said


CFG = ultralytics_biformer.config_dir()


def run_with_watchdog(fn, timeout: float = 120.0):
    """Run ``fn`` in a thread and return what it raised (or None); fail if it has not finished after ``timeout``."""
    outcome = {}

    def target():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - the caller inspects it
            outcome["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still running after {timeout}s: a hang"
    return outcome.get("error")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A yolo11n-biformer checkpoint saved by this package (``YOLO.save``), with live BRA branches and class scores
    around 0.5, so predictions have detections whose well-formedness can be checked."""
    torch.manual_seed(0)
    yolo = YOLO("yolo11n-biformer.yaml")
    wake_branches(yolo.model)
    for seq in yolo.model.model[-1].one2many["cls_head"]:
        torch.nn.init.zeros_(seq[-1].bias)
    path = tmp_path_factory.mktemp("robustness") / "biformer.pt"
    yolo.save(path)
    return path


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A BGR test image with a few bright rectangles on noise."""
    rng = np.random.default_rng(seed)
    im = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
    for _ in range(3):
        y, x = rng.integers(0, h), rng.integers(0, w)
        cv2.rectangle(im, (int(x), int(y)), (int(x + w // 4), int(y + h // 4)), (40, 220, 220), -1)
    return im


def assert_well_formed(result, shape: tuple[int, int], nc: int = 80) -> None:
    h, w = shape
    assert result.orig_shape == (h, w)
    boxes = result.boxes
    if len(boxes):
        xyxy = boxes.xyxy
        assert xyxy.isfinite().all()
        assert (xyxy[:, [0, 2]] >= 0).all() and (xyxy[:, [0, 2]] <= w).all()
        assert (xyxy[:, [1, 3]] >= 0).all() and (xyxy[:, [1, 3]] <= h).all()
        assert (xyxy[:, 2:] >= xyxy[:, :2]).all()
        assert ((boxes.conf >= 0) & (boxes.conf <= 1)).all()
        assert ((boxes.cls >= 0) & (boxes.cls < nc) & (boxes.cls == boxes.cls.round())).all()


@pytest.mark.parametrize("h, w, imgsz", [(720, 1280, 640), (1280, 720, 640), (30, 40, 640), (30, 40, 32)])
def test_predict_on_odd_images(checkpoint, h, w, imgsz):
    """Landscape, portrait and tiny images, letterboxed (rect) to imgsz; imgsz=32 makes P5 a single token."""
    result = YOLO(checkpoint).predict(image(h, w), imgsz=imgsz, conf=0.25, verbose=False)[0]
    assert_well_formed(result, (h, w))
    if imgsz == 640:
        assert len(result.boxes), "the checkpoint's class scores sit around 0.5: there must be detections"


@pytest.fixture(scope="module")
def rect_dataset(tmp_path_factory) -> Path:
    """Val images of very different aspect ratios, so rectangular batching gives non-square batch shapes."""
    shapes = [(720, 1280), (1280, 720), (30, 40), (64, 96), (96, 64), (120, 200)]
    return write_tiny_dataset(tmp_path_factory.mktemp("rect_dataset"), shapes=shapes)


def test_val_with_rectangular_batches(checkpoint, rect_dataset):
    """`yolo val rect=True`: batches are letterboxed to non-square shapes, and validation returns finite metrics."""
    model = YOLO(checkpoint)
    validators = []
    model.add_callback("on_val_end", validators.append)
    metrics = model.val(data=str(rect_dataset), imgsz=320, batch=3, rect=True, plots=False, workers=0, verbose=False)
    dataset = validators[0].dataloader.dataset
    assert dataset.rect and any(h != w for h, w in dataset.batch_shapes), dataset.batch_shapes
    values = metrics.results_dict
    assert values and all(np.isfinite(v) for v in values.values()), values


def test_channels_last_model(checkpoint):
    """A whole biformer model converted to channels_last, fed channels_last input, matches the contiguous model."""
    model = YOLO(checkpoint).model.float().eval()
    x = torch.rand(2, 3, 96, 160)
    with torch.no_grad():
        ref = model(x)[0]
        out = copy.deepcopy(model).to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))[0]
    torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-3)


def corruptions(good: bytes) -> dict[str, bytes]:
    return {
        "empty": b"",
        "text": b"not a checkpoint\n",
        "random": np.random.default_rng(0).bytes(4096),
        "truncated-half": good[: len(good) // 2],
        "truncated-tail": good[:-64],
        "truncated-head": good[:100],
        "zip-header-damaged": b"\x00" * 64 + good[64:],
    }


@pytest.mark.parametrize("kind", list(corruptions(b"x" * 200)))
def test_corrupt_checkpoint_is_a_clear_error(checkpoint, tmp_path, kind):
    path = tmp_path / f"{kind}.pt"
    path.write_bytes(corruptions(checkpoint.read_bytes())[kind])
    error = run_with_watchdog(lambda: YOLO(path))
    assert error is not None, f"a {kind} checkpoint loaded"
    assert isinstance(error, (TypeError, ValueError, RuntimeError)), repr(error)
    assert str(path) in str(error) or path.name in str(error), f"the error does not name the file: {error}"


@pytest.mark.parametrize("payload", [{"foo": 1}, {"model": None}, {"model": "yolo11n-biformer.yaml"}], ids=str)
def test_checkpoint_without_a_model_is_a_clear_error(tmp_path, payload):
    path = tmp_path / "nomodel.pt"
    torch.save(payload, path)
    error = run_with_watchdog(lambda: YOLO(path))
    assert isinstance(error, (TypeError, ValueError, KeyError, AttributeError)), repr(error)


def yaml_with(tmp_path: Path, cfg: str, old: str, new: str) -> Path:
    text = (CFG / cfg).read_text()
    assert old in text, f"{old!r} not in {cfg}"
    path = tmp_path / cfg.replace("yolo11-", "yolo11n-")
    path.write_text(text.replace(old, new))
    return path


BAD_ROWS = {  # (config, stock row, bad row, what the error must name)
    "C2PSA_BRA no routing args": (
        "yolo11-biformer.yaml",
        "C2PSA_BRA, [1024, 2, 2]]",
        "C2PSA_BRA, [1024]]",
        "C2PSA_BRA",
    ),
    "C2PSA_BRA empty args": ("yolo11-biformer.yaml", "C2PSA_BRA, [1024, 2, 2]]", "C2PSA_BRA, []]", "C2PSA_BRA"),
    "C2PSA_BRA args not a list": ("yolo11-biformer.yaml", "C2PSA_BRA, [1024, 2, 2]]", "C2PSA_BRA, 5]", "C2PSA_BRA"),
    "C2PSA_BRA topk 0": ("yolo11-biformer.yaml", "C2PSA_BRA, [1024, 2, 2]]", "C2PSA_BRA, [1024, 2, 0]]", "topk"),
    "C2PSA_BRA n_win string": (
        "yolo11-biformer.yaml",
        "C2PSA_BRA, [1024, 2, 2]]",
        "C2PSA_BRA, [1024, '2', 2]]",
        "n_win",
    ),
    "C3k2_BRA n_win negative": (
        "yolo11-biformer.yaml",
        "C3k2_BRA, [256, False, 8, 2]]",
        "C3k2_BRA, [256, False, -8, 2]]",
        "n_win",
    ),
    "C3k2_BRA topk negative": (
        "yolo11-biformer.yaml",
        "C3k2_BRA, [256, False, 8, 2]]",
        "C3k2_BRA, [256, False, 8, -1]]",
        "topk",
    ),
    "C3k2_BRA topk float": (
        "yolo11-biformer.yaml",
        "C3k2_BRA, [256, False, 8, 2]]",
        "C3k2_BRA, [256, False, 8, 2.5]]",
        "topk",
    ),
    "C3k2_BRA topk bool": (
        "yolo11-biformer.yaml",
        "C3k2_BRA, [256, False, 8, 2]]",
        "C3k2_BRA, [256, False, 8, True]]",
        "topk",
    ),
    "C3k2_BRA n_win null": (
        "yolo11-biformer.yaml",
        "C3k2_BRA, [256, False, 8, 2]]",
        "C3k2_BRA, [256, False, null, 2]]",
        "n_win",
    ),
    "C3k2_BRA topk missing": (
        "yolo11-biformer.yaml",
        "C3k2_BRA, [256, False, 8, 2]]",
        "C3k2_BRA, [256, False, 8]]",
        "C3k2_BRA",
    ),
    "BRA extra arg": ("yolo11-biformer-neck.yaml", "BRA, [256, 8, 2]]", "BRA, [256, 1, 8, 2]]", "BRA"),
    "BRA channels differ": ("yolo11-biformer-neck.yaml", "BRA, [256, 8, 2]]", "BRA, [128, 8, 2]]", "BRA"),
    "BRA n_win 0": ("yolo11-biformer-neck.yaml", "BRA, [256, 8, 2]]", "BRA, [256, 0, 2]]", "n_win"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_bad_yaml_row_is_a_clear_error(tmp_path, case):
    cfg, old, new, named = BAD_ROWS[case]
    path = yaml_with(tmp_path, cfg, old, new)
    with pytest.raises(ValueError, match=r"model YAML layer \d+ \(") as info:
        DetectionModel(str(path), verbose=False)
    assert named in str(info.value)


# Rows whose stock part is wrong would fail inside Ultralytics' constructors or, for a non-bool c3k, build a different
# model silently: the integration checks the stock part of our rows too.
BAD_STOCK_PARTS = {
    "C3k2_BRA too many stock args": (
        "yolo11-biformer.yaml",
        "C3k2_BRA, [256, False, 8, 2]]",
        "C3k2_BRA, [256, False, 0.5, False, 1, True, 7, 8, 2]]",
    ),
    "C2PSA_BRA too many stock args": (
        "yolo11-biformer.yaml",
        "C2PSA_BRA, [1024, 2, 2]]",
        "C2PSA_BRA, [1024, 0.5, 1, 2, 2]]",
    ),
    "C2PSA_BRA e a string": ("yolo11-biformer.yaml", "C2PSA_BRA, [1024, 2, 2]]", "C2PSA_BRA, [1024, 'x', 2, 2]]"),
    "C3k2_BRA c3k a string": ("yolo11-biformer.yaml", "C3k2_BRA, [256, False, 8, 2]]", "C3k2_BRA, [256, 'no', 8, 2]]"),
    "BRA c2 a string": ("yolo11-biformer-neck.yaml", "BRA, [256, 8, 2]]", "BRA, ['abc', 8, 2]]"),
}


@pytest.mark.parametrize("case", list(BAD_STOCK_PARTS))
def test_bad_stock_part_of_our_row_is_a_clear_error(tmp_path, case):
    cfg, old, new = BAD_STOCK_PARTS[case]
    with pytest.raises(ValueError, match=r"model YAML layer \d+ \("):
        DetectionModel(str(yaml_with(tmp_path, cfg, old, new)), verbose=False)


def predictions(model_or_path) -> torch.Tensor:
    model = YOLO(model_or_path) if not isinstance(model_or_path, YOLO) else model_or_path
    net = model.model.float().eval()
    torch.manual_seed(0)
    with torch.no_grad():
        return net(torch.rand(1, 3, 96, 128))[0]


def test_checkpoint_loads_while_unregistered_and_after_registering_again(checkpoint, registered):
    """``unregister()`` withdraws only the YAML parser and lookup: a checkpoint pickles our blocks by import path, so it
    still loads (restricted loading too) and predicts the same while unregistered, when our YAMLs no longer build;
    after ``register()`` both work again."""
    from ultralytics.nn.tasks import torch_safe_load

    cfg = str(CFG / "yolo11-biformer.yaml")  # a path: the bare name would not even resolve while unregistered
    expected = predictions(checkpoint)
    ultralytics_biformer.unregister()
    assert not ultralytics_biformer.is_registered()
    torch.testing.assert_close(predictions(checkpoint), expected)
    ckpt, _ = torch_safe_load(checkpoint, safe_only=True)  # the allow-list of our blocks outlives unregister()
    assert any(isinstance(m, C2PSA_BRA) for m in ckpt["model"].modules())
    with pytest.raises(KeyError, match="C2PSA_BRA"):  # the stock parser knows no rows of ours
        DetectionModel(cfg, verbose=False)

    ultralytics_biformer.register()
    torch.testing.assert_close(predictions(checkpoint), expected)
    layers = DetectionModel(cfg, verbose=False).model
    assert type(layers[10]) is C2PSA_BRA and type(layers[16]) is C3k2_BRA  # the parser knows our rows again


LOAD_WITHOUT_AUTOLOAD = r"""
import json, sys
import torch
from ultralytics.nn import tasks  # the autoload hook would register here; it is disabled
assert "ultralytics_biformer" not in sys.modules, "auto-activation ran although disabled"
import ultralytics_biformer
from ultralytics import YOLO
assert ultralytics_biformer.is_registered()
ckpt, _ = tasks.torch_safe_load(sys.argv[1], safe_only=True)
model = YOLO(sys.argv[1]).model.float().eval()
torch.manual_seed(0)
with torch.no_grad():
    out = model(torch.rand(1, 3, 96, 128))[0]
layer10 = type(YOLO("yolo11n-biformer.yaml").model.model[10]).__name__
print(json.dumps({"out": out.flatten().tolist(), "layer10": layer10}))
"""


def test_checkpoint_loads_with_autoload_disabled_and_explicit_import(checkpoint, tmp_path):
    """ULTRALYTICS_BIFORMER_AUTOLOAD=0 plus ``import ultralytics_biformer``: the checkpoint loads (also restricted)."""
    env = {**os.environ, "ULTRALYTICS_BIFORMER_AUTOLOAD": "0", "YOLO_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_AUTOLOAD, str(checkpoint)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["layer10"] == "C2PSA_BRA"  # the explicit import registered the parser too
    torch.testing.assert_close(torch.tensor(result["out"]), predictions(checkpoint).flatten())

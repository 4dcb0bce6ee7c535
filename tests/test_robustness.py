"""Robustness: mixed precision, torch.compile, odd shapes, bad inputs and reloading checkpoints.

Each test is the CPU proof of one path of the issue; the ones that need CUDA skip without it.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import detection_batch, routing_layers, wake_branches, write_tiny_dataset
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.nn.modules.block import Attention
from ultralytics.nn.tasks import DetectionModel

import ultralytics_biformer
from ultralytics_biformer import BRA, C2PSA_BRA, BiLevelRoutingAttention, C3k2_BRA, bilevel_routing_attention
from ultralytics_biformer import functional as Fn
from ultralytics_biformer._int_checks import is_positive_int

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


# ---------------------------------------------------------------------------------------------------------------------
# Mixed precision
# ---------------------------------------------------------------------------------------------------------------------

LARGE = 300.0  # q, k and v scale: |q.k| * scale reaches ~1e5, past fp16's 65504


def loud_model(device: str = "cpu") -> DetectionModel:
    """yolo11n-biformer whose every attention works on large-magnitude activations."""
    torch.manual_seed(0)
    model = DetectionModel("yolo11n-biformer.yaml", nc=2, verbose=False).to(device)
    model.args = get_cfg()  # the loss reads its gains from here, as in the trainer
    wake_branches(model)
    for attn in routing_layers(model):
        torch.nn.init.constant_(attn.qkv.bn.weight, LARGE)
    return model.train()


def amp_step(model: DetectionModel, device: str, dtype: torch.dtype) -> tuple[torch.Tensor, list[str]]:
    """One trainer step under autocast, with a GradScaler as the trainer uses for fp16; returns the loss and the
    names of parameters whose (unscaled) gradient is missing or non-finite.

    The scaler starts at scale 1: at its default 65536 a first step may overflow by design (the scaler then skips it
    and lowers the scale), which would hide whether the model's own fp16 arithmetic stays finite.
    """
    scaler = torch.amp.GradScaler(device, init_scale=1.0, enabled=dtype == torch.float16)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    with torch.autocast(device, dtype=dtype):
        loss, _ = model.loss(detection_batch(0, device=device))
        loss = loss.sum()
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    bad = [
        n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.isfinite().all())
    ]
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), bad


def test_large_activations_overflow_an_unprotected_fp16_attention():
    """Calibration of the AMP tests: at this magnitude Ultralytics' own Attention produces non-finite fp16 outputs."""
    torch.manual_seed(0)
    attn = Attention(64, num_heads=2).train()
    torch.nn.init.constant_(attn.qkv.bn.weight, LARGE)
    with torch.autocast("cpu", dtype=torch.float16):
        out = attn(torch.randn(2, 64, 20, 20))
    assert not out.isfinite().all()


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_amp_training_step_is_finite_on_cpu(dtype):
    """CUDA AMP semantics on CPU: autocast (+ GradScaler for fp16) around a real loss; loss and gradients stay finite."""
    model = loud_model()
    loss, bad = amp_step(model, "cpu", dtype)
    assert loss.isfinite(), f"loss {loss}"
    assert not bad, f"missing or non-finite gradients: {bad[:5]}"


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_amp_training_step_is_finite_on_cuda():
    model = loud_model("cuda")
    loss, bad = amp_step(model, "cuda", torch.float16)
    assert loss.isfinite() and not bad, (loss, bad[:5])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("fused", [False, True], ids=["explicit", "fused"])
def test_low_precision_operator(dtype, fused):
    """Both attention paths, in fp16 and bf16: finite forward and backward on inputs whose scores pass fp16's range,
    and within a few units of the dtype's rounding of float64 on ordinary inputs."""
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(2, 2, 16, 12, 12, generator=g) for _ in range(2))
    v = torch.randn(2, 2, 32, 12, 12, generator=g)

    loud = [(t * LARGE).to(dtype).requires_grad_() for t in (q, k)] + [v.to(dtype).requires_grad_()]
    out = Fn.routing_attention_heads(*loud, 4, 3, None, fused)
    out.float().sum().backward()
    assert out.dtype == dtype and out.isfinite().all()
    assert all(t.grad.isfinite().all() for t in loud)

    ref = Fn.routing_attention_heads(q.double(), k.double(), v.double(), 4, 3, None, fused)
    out = Fn.routing_attention_heads(q.to(dtype), k.to(dtype), v.to(dtype), 4, 3, None, fused)
    error = (out.double() - ref).abs().mean() / ref.abs().mean()
    assert error < 10 * torch.finfo(dtype).eps, f"mean relative error {error:.3g}"


# ---------------------------------------------------------------------------------------------------------------------
# torch.compile
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_compiled_bra_block_matches_eager():
    """CPU inductor compiles a BRA block into one graph (fullgraph) whose outputs equal eager ones."""
    torch.manual_seed(0)
    block = BRA(32, n_win=4, topk=2).eval()
    wake_branches(block)
    compiled = torch.compile(block, backend="inductor", fullgraph=True)
    x = torch.randn(2, 32, 13, 20)  # a padded grid
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), block(x), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_biformer_model_compiles_without_graph_breaks():
    """Dynamo captures a biformer detector's backbone and neck, every routing layer included, as one graph.

    The run stops before the Detect head (``embed``): Ultralytics' anchor generation breaks the graph with an
    ``.item()`` in stock models too, which says nothing about our blocks.
    """
    model = DetectionModel("yolo11n-biformer.yaml", verbose=False).fuse().eval()
    torch._dynamo.reset()
    with torch.no_grad():
        explanation = torch._dynamo.explain(lambda x: model(x, embed=[16, 19, 22]))(torch.randn(1, 3, 96, 128))
    assert explanation.graph_break_count == 0, [str(b.reason) for b in explanation.break_reasons]
    assert explanation.graph_count == 1


# ---------------------------------------------------------------------------------------------------------------------
# Odd shapes
# ---------------------------------------------------------------------------------------------------------------------


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


def layer_zoo() -> list[BiLevelRoutingAttention]:
    """Every distinct routing attention of the shipped nano detectors: yolo11, yolo26 and the neck variant."""
    layers = []
    for cfg in ("yolo11n-biformer.yaml", "yolo26n-biformer.yaml", "yolo11n-biformer-neck.yaml"):
        model = DetectionModel(cfg, verbose=False).eval()
        layers += routing_layers(model)
    unique = {(m.qkv.conv.in_channels, m.num_heads, m.n_win, m.topk): m for m in layers}
    return list(unique.values())


@pytest.fixture(scope="module")
def zoo():
    torch.manual_seed(0)
    return layer_zoo()


def test_every_routing_layer_works_at_every_small_size(zoo):
    """Every shipped routing layer, at every feature size from 1x1 to (2*n_win+1)^2 (all grid regimes: fewer tokens
    than regions, exact tiling, padding), gives finite outputs of the input's shape equal to the layer's export (traced
    once, at the largest of these sizes)."""
    assert zoo
    for attn in zoo:
        c, n = attn.qkv.conv.in_channels, attn.n_win
        g = torch.Generator().manual_seed(c + n)
        export = torch.jit.trace(attn, torch.randn(1, c, 2 * n + 1, 2 * n + 1, generator=g), check_trace=False)
        for h in range(1, 2 * n + 2):
            for w in range(1, 2 * n + 2):
                x = torch.randn(1, c, h, w, generator=g)
                with torch.no_grad():
                    out = attn(x)
                    traced = export(x)
                assert out.shape == x.shape and out.isfinite().all(), (c, n, h, w)
                torch.testing.assert_close(traced, out, rtol=1e-5, atol=1e-5, msg=f"c={c} n_win={n} {h}x{w}")


def test_batch_size_and_channels_last_do_not_change_results(zoo):
    """Batch 1 and a batch of 48 give each sample the same output; channels_last input gives the same output."""
    for attn in zoo:
        c, n = attn.qkv.conv.in_channels, attn.n_win
        x = torch.randn(48, c, 2 * n + 1, n + 3)  # padded along both axes
        with torch.no_grad():
            batched = attn(x)
            for i in (0, 17, 47):
                torch.testing.assert_close(attn(x[i : i + 1]), batched[i : i + 1], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(attn(x.to(memory_format=torch.channels_last)), batched, rtol=1e-4, atol=1e-5)


def test_channels_last_model(checkpoint):
    """A whole biformer model converted to channels_last, fed channels_last input, matches the contiguous model."""
    model = YOLO(checkpoint).model.float().eval()
    x = torch.rand(2, 3, 96, 160)
    with torch.no_grad():
        ref = model(x)[0]
        out = copy.deepcopy(model).to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))[0]
    torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-3)


def test_blocks_work_from_1x1_up():
    """The blocks around the attention (BRA, C2PSA_BRA, C3k2_BRA) keep their shapes down to 1x1 maps."""
    torch.manual_seed(0)
    for block, c_out in (
        (BRA(64, n_win=7, topk=4), 64),
        (C2PSA_BRA(128, 128, n_win=7, topk=4), 128),
        (C3k2_BRA(64, 32, n_win=7, topk=4), 32),
    ):
        block.eval()
        for h, w in ((1, 1), (1, 9), (9, 1), (2, 3), (7, 7), (15, 8)):
            with torch.no_grad():
                out = block(torch.randn(2, block_in(block), h, w))
            assert out.shape == (2, c_out, h, w) and out.isfinite().all(), (type(block).__name__, h, w)


def block_in(block) -> int:
    return block.pos.conv.in_channels if isinstance(block, BRA) else block.cv1.conv.in_channels


# ---------------------------------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------------------------------


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


@pytest.mark.parametrize("n_win, topk", [(0, 4), (-1, 4), (7, 0), (7, -3), (7.0, 4), (7, True), (None, 4), ("7", 4)])
def test_bad_routing_arguments_are_rejected_everywhere(n_win, topk):
    """Constructors and the functional API reject non-positive or non-integer n_win/topk, naming the argument."""
    name = "topk" if is_positive_int(n_win) else "n_win"
    builders = [
        lambda: BiLevelRoutingAttention(64, num_heads=2, n_win=n_win, topk=topk),
        lambda: BRA(64, n_win=n_win, topk=topk),
        lambda: C2PSA_BRA(128, 128, n_win=n_win, topk=topk),
        lambda: C3k2_BRA(64, 64, n_win=n_win, topk=topk),
        lambda: bilevel_routing_attention(*torch.randn(3, 1, 8, 4, 4), num_heads=2, n_win=n_win, topk=topk),
    ]
    for build in builders:
        with pytest.raises(ValueError, match=name):
            build()


# ---------------------------------------------------------------------------------------------------------------------
# Reloading checkpoints
# ---------------------------------------------------------------------------------------------------------------------


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

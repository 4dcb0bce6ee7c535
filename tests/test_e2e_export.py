"""End to end: export to ONNX (static, dynamic, simplified, fp16), TorchScript and OpenVINO, checked against PyTorch on
real images (marked slow).

Every Ultralytics export here (ONNX with ``dynamo=False``, TorchScript, OpenVINO) records the model with
``torch.jit.trace``, and the routing operator then computes the region grid from traced sizes. The traced operator
and blocks are pinned to the eager ones in PyTorch by test_functional.py and test_modules.py; the tests here export a
checkpoint with ``yolo export`` semantics and compare the exported model with PyTorch, both through the plain runtime
(raw outputs) and through ``YOLO(<exported>).predict`` (detections), on the two images that ship with Ultralytics: at
the export size and, for dynamic exports, at non-square sizes whose feature maps need padding.

Raw outputs are compared against a noise floor measured on the same input: the largest change float32 rounding causes
in the PyTorch model itself (float32 vs float64 PyTorch). An export that computes the same function lands within a
small multiple of it; a wrong region grid or a flipped route lands orders of magnitude above it.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import routing_layers
from ultralytics import YOLO
from ultralytics.data.augment import LetterBox
from ultralytics.utils import ASSETS

from ultralytics_biformer import region_grid

pytestmark = pytest.mark.slow

IMAGES = ("bus.jpg", "zidane.jpg")  # shipped inside the Ultralytics package
NOISE_MULTIPLE = 10  # exported output may differ from PyTorch by this multiple of PyTorch's own float32 noise
CONF = 0.1  # detection threshold for the comparisons: low enough that both images have detections
IOU = 0.7  # NMS IoU threshold (Ultralytics' default)


# ---------------------------------------------------------------------------------------------------------------------
# A checkpoint whose every layer carries signal
# ---------------------------------------------------------------------------------------------------------------------


def letterboxed(name: str, shape: tuple[int, int]) -> torch.Tensor:
    """An asset image letterboxed to ``shape`` (h, w) as Ultralytics preprocesses it: (1, 3, h, w) RGB in [0, 1]."""
    image = LetterBox(shape, auto=False)(image=cv2.imread(str(ASSETS / name)))
    return torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))).float()[None] / 255


def condition(model: torch.nn.Module, seed: int = 0) -> None:
    """Give an untrained biformer detector realistic, well-conditioned weights, in place, without any download.

    A fresh model is a poor export test: BRA branches start as the identity (their last BatchNorm is zero), so they
    would contribute nothing to the outputs, and untrained class scores are all near zero. So: every BatchNorm gets a
    random scale and shift, q and k are damped so attention logits stay moderate (an untrained attention with
    arbitrary logits amplifies float rounding like a chaotic system, which no export can match), BatchNorm statistics
    are calibrated on the asset images, and the head's last convolutions are normalised so that boxes are moderate and
    a few hundred anchors clear the detection threshold.
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration passes
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    for m in routing_layers(model):
        qk = torch.zeros(m.num_heads, 2 * m.key_dim + m.head_dim, dtype=torch.bool)
        qk[:, : 2 * m.key_dim] = True
        with torch.no_grad():
            m.qkv.bn.weight[qk.flatten()] *= 0.1
            m.qkv.bn.bias[qk.flatten()] *= 0.1
    images = [letterboxed(name, (s, s)) for name in IMAGES for s in (640, 416)]
    model.train()
    with torch.no_grad():
        for x in images:
            model(x)
    model.eval()

    head = model.model[-1]
    finals = {key: [seq[-1] for seq in head.one2many[key]] for key in ("box_head", "cls_head")}
    outputs = {}

    def record(conv, _, out):
        outputs.setdefault(conv, []).append(out.transpose(0, 1).flatten(1))

    hooks = [conv.register_forward_hook(record) for convs in finals.values() for conv in convs]
    with torch.no_grad():
        for x in images:
            model(x)
    for hook in hooks:
        hook.remove()
    for key, std_to, mean_to in (("box_head", 1.0, 0.0), ("cls_head", 1.0, -8.0)):
        for conv in finals[key]:
            y = torch.cat(outputs[conv], 1)
            scale = std_to / y.std(1).clamp_min(1e-6)
            with torch.no_grad():
                conv.weight.mul_(scale.view(-1, 1, 1, 1))
                conv.bias.copy_((conv.bias - y.mean(1)) * scale + mean_to)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A conditioned yolo11n-biformer detector saved in Ultralytics' checkpoint format (``YOLO.save``)."""
    torch.manual_seed(0)
    yolo = YOLO("yolo11n-biformer.yaml")
    condition(yolo.model)
    path = tmp_path_factory.mktemp("checkpoint") / "best.pt"
    yolo.save(path)
    return path


@pytest.fixture(scope="module")
def reference(checkpoint) -> torch.nn.Module:
    """The checkpoint as Ultralytics runs it in PyTorch: float32, Conv+BN fused, eval."""
    return YOLO(checkpoint).model.float().fuse().eval()


@pytest.fixture(scope="module")
def reference64(reference) -> torch.nn.Module:
    """The same model in float64: the yardstick for float32 rounding noise."""
    return copy.deepcopy(reference).double()


def exported(checkpoint: Path, tmp_path: Path, **kwargs) -> str:
    """Export a private copy of the checkpoint (exports are written next to it) and return the exported path."""
    own = tmp_path / checkpoint.name
    shutil.copy(checkpoint, own)
    return YOLO(own).export(**kwargs)


# ---------------------------------------------------------------------------------------------------------------------
# Comparisons
# ---------------------------------------------------------------------------------------------------------------------


def split_max(diff: torch.Tensor) -> tuple[float, float]:
    """Largest entry of a (B, 4 + nc, anchors) difference in its box rows (pixels) and its class rows (scores)."""
    return diff[:, :4].max().item(), diff[:, 4:].max().item()


def assert_raw_parity(reference, reference64, run, x: torch.Tensor, label: str) -> tuple[float, float]:
    """Compare an exported model's raw output on ``x`` with PyTorch's, against PyTorch's own float32 noise."""
    with torch.no_grad():
        ref, ref64 = reference(x)[0], reference64(x.double())[0]
    got = torch.as_tensor(np.asarray(run(x)), dtype=torch.float32)
    assert got.shape == ref.shape, f"{label}: output shape {tuple(got.shape)}, PyTorch {tuple(ref.shape)}"
    assert torch.isfinite(got).all(), f"{label}: non-finite outputs"
    box, cls = split_max((got - ref).abs())
    floor_box, floor_cls = split_max((ref.double() - ref64).abs())
    print(
        f"{label}: max |exported - PyTorch| boxes {box:.3g} px, scores {cls:.3g}; float32 noise {floor_box:.3g} px, {floor_cls:.3g}"
    )
    assert box <= NOISE_MULTIPLE * floor_box + 1e-4, f"{label}: boxes differ by {box:.4g} px (noise {floor_box:.3g})"
    assert cls <= NOISE_MULTIPLE * floor_cls + 1e-6, f"{label}: scores differ by {cls:.4g} (noise {floor_cls:.3g})"
    return box, cls


def assert_detections_match(ref, got, label: str, box_tol: float = 1.0, conf_tol: float = 2e-3) -> int:
    """Both Results hold the same detections: class, box within ``box_tol`` px, confidence within ``conf_tol``.

    Two kinds of detection may be missing from the other side, because rounding alone can decide them: one whose
    confidence is within ``conf_tol`` of the threshold, and one that a higher-scoring box of its class overlaps by
    about NMS's IoU threshold. Every exemption is printed. Returns the number of detections compared.
    """
    assert got.orig_shape == ref.orig_shape, label
    a, b = ref.boxes, got.boxes
    exempt = []
    for one, other, side in ((a, b, "exported"), (b, a, "PyTorch")):
        peers_xyxy, peers_conf, peers_cls = (
            torch.cat([one.xyxy, other.xyxy]),
            torch.cat([one.conf, other.conf]),
            torch.cat([one.cls, other.cls]),
        )
        for box, conf, cls in zip(one.xyxy, one.conf, one.cls):
            close = (other.cls == cls) & ((other.xyxy - box).abs().amax(1) <= box_tol)
            if (close & ((other.conf - conf).abs() <= conf_tol)).any() or conf < CONF + conf_tol:
                continue
            stronger = (peers_cls == cls) & (peers_conf > conf)
            if stronger.any() and ((_iou(box, peers_xyxy[stronger]) - IOU).abs() < 0.01).any():
                exempt.append(f"{side} lacks an NMS-borderline detection at {[round(v, 1) for v in box.tolist()]}")
                continue
            raise AssertionError(
                f"{label}: {side} lacks a class {int(cls)} detection at {box.tolist()} conf {conf:.4f}"
            )
    print(f"{label}: {len(a)} PyTorch and {len(b)} exported detections, matched; {exempt or 'no exemptions'}")
    return len(a)


def predict(model, name: str, **kwargs):
    """Ultralytics prediction with no cap on the number of detections, so no rank cut-off can differ either."""
    return model.predict(ASSETS / name, conf=CONF, iou=IOU, max_det=10_000, verbose=False, **kwargs)[0]


def assert_predictions_match(checkpoint, exported_model, label: str, imgsz: int, rect: bool) -> None:
    """``YOLO(exported_model).predict`` finds the detections PyTorch finds, on every asset image, and finds some."""
    got_model, pt_model = YOLO(exported_model, task="detect"), YOLO(checkpoint)
    compared = 0
    for name in IMAGES:
        ref, got = (predict(m, name, imgsz=imgsz, rect=rect) for m in (pt_model, got_model))
        compared += assert_detections_match(ref, got, f"{label} {name}")
    assert compared > 0, "no detections to compare"


# ---------------------------------------------------------------------------------------------------------------------
# The export path in PyTorch
# ---------------------------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------------------------
# Exports of a real checkpoint
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_onnx_static_parity_at_640(checkpoint, reference, reference64, tmp_path):
    """Static ONNX, simplified, at imgsz=640: raw outputs and detections match PyTorch on both asset images."""
    import onnxruntime as ort

    f = exported(checkpoint, tmp_path, format="onnx", imgsz=640, simplify=True)
    session = ort.InferenceSession(f, providers=["CPUExecutionProvider"])
    for name in IMAGES:
        x = letterboxed(name, (640, 640))
        assert_raw_parity(
            reference, reference64, lambda x: session.run(None, {"images": x.numpy()})[0], x, f"ONNX static 640 {name}"
        )
    assert_predictions_match(checkpoint, f, "ONNX static 640", imgsz=640, rect=False)


@pytest.mark.slow
def test_onnx_dynamic_parity(checkpoint, reference, reference64, tmp_path):
    """Dynamic, simplified ONNX exported at 320 matches PyTorch at 320, at non-square sizes whose grids need padding,
    at a larger size and at batch 2; Ultralytics runs it with rectangular letterboxing like the .pt model."""
    import onnxruntime as ort

    f = exported(checkpoint, tmp_path, format="onnx", imgsz=320, dynamic=True, simplify=True)
    session = ort.InferenceSession(f, providers=["CPUExecutionProvider"])

    def run(x):
        return session.run(None, {"images": x.numpy()})[0]

    routing = routing_layers(reference)
    padded = set()
    for shape in [(320, 320), (256, 416), (416, 256), (480, 640)]:
        for stride, m in zip((32, 8, 16, 32), routing):  # C2PSA_BRA at P5, then the P3, P4, P5 neck blocks
            padded.add(region_grid(shape[0] // stride, shape[1] // stride, m.n_win).padded)
        for name in IMAGES:
            assert_raw_parity(
                reference, reference64, run, letterboxed(name, shape), f"ONNX dynamic {shape[0]}x{shape[1]} {name}"
            )
    assert padded == {True, False}, "the sizes must cover padded and unpadded region grids"
    batch = torch.cat([letterboxed(name, (256, 416)) for name in IMAGES])
    assert_raw_parity(reference, reference64, run, batch, "ONNX dynamic batch 2")

    assert_predictions_match(checkpoint, f, "ONNX dynamic rect", imgsz=320, rect=True)


@pytest.mark.slow
def test_onnx_half(checkpoint, reference, tmp_path):
    """``half=True`` on CPU stores fp16 weights and activations; the graph runs in onnxruntime and through Ultralytics,
    and stays close to PyTorch for fp16: every confident PyTorch detection is found again."""
    import onnx
    import onnxruntime as ort

    f = exported(checkpoint, tmp_path, format="onnx", imgsz=320, half=True)
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in onnx.load(f).graph.initializer), "not an fp16 model"
    session = ort.InferenceSession(f, providers=["CPUExecutionProvider"])
    onnx_model, pt_model = YOLO(f, task="detect"), YOLO(checkpoint)
    for name in IMAGES:
        x = letterboxed(name, (320, 320))
        got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
        with torch.no_grad():
            ref = reference(x)[0]
        assert got.shape == ref.shape and torch.isfinite(got).all()
        box, cls = split_max((got - ref).abs())
        print(f"ONNX fp16 320 {name}: max |exported - PyTorch| boxes {box:.3g} px, scores {cls:.3g}")
        ref_res, got_res = predict(pt_model, name, imgsz=320, rect=False), predict(onnx_model, name, imgsz=320)
        for xyxy, conf, c in zip(ref_res.boxes.xyxy, ref_res.boxes.conf, ref_res.boxes.cls):
            if conf < 0.5:
                continue
            iou = _iou(xyxy, got_res.boxes.xyxy[got_res.boxes.cls == c])
            assert iou.numel() and iou.max() > 0.9, f"fp16 ONNX lost the class {int(c)} detection at {xyxy.tolist()}"


def _iou(box: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    lt, rb = torch.maximum(box[:2], boxes[:, :2]), torch.minimum(box[2:], boxes[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    return inter / (_area(box) + _area(boxes) - inter)


def _area(b: torch.Tensor) -> torch.Tensor:
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


@pytest.mark.slow
def test_torchscript_parity(checkpoint, reference, reference64, tmp_path):
    """TorchScript at 320 (static, as Ultralytics exports it): torch.jit.load and Ultralytics both reproduce PyTorch."""
    f = exported(checkpoint, tmp_path, format="torchscript", imgsz=320)
    script = torch.jit.load(f)

    def run(x):
        with torch.no_grad():
            return script(x)

    for name in IMAGES:
        assert_raw_parity(reference, reference64, run, letterboxed(name, (320, 320)), f"TorchScript 320 {name}")
    assert_predictions_match(checkpoint, f, "TorchScript", imgsz=320, rect=False)


@pytest.fixture
def openvino_f32(monkeypatch):
    """OpenVINO's CPU plugin defaults to bf16 inference on CPUs with native bf16, and Ultralytics' backend keeps that
    default on x86 Linux; parity is a float32 question, so compile in float32 for the comparison."""
    import openvino as ov

    compile_model = ov.Core.compile_model

    def f32(self, model, device_name=None, config=None):
        return compile_model(self, model, device_name or "CPU", {**(config or {}), "INFERENCE_PRECISION_HINT": "f32"})

    monkeypatch.setattr(ov.Core, "compile_model", f32)
    return ov


@pytest.mark.slow
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_openvino_parity(checkpoint, reference, reference64, tmp_path, openvino_f32, dynamic):
    """OpenVINO IR at 320 (and, dynamic, at a padded non-square size) matches PyTorch, plainly and through Ultralytics."""
    d = Path(exported(checkpoint, tmp_path, format="openvino", imgsz=320, dynamic=dynamic))
    compiled = openvino_f32.Core().compile_model(str(next(d.glob("*.xml"))), "CPU")

    def run(x):
        return compiled(x.numpy())[0]

    kind = "dynamic" if dynamic else "static"
    for name in IMAGES:
        assert_raw_parity(reference, reference64, run, letterboxed(name, (320, 320)), f"OpenVINO {kind} 320 {name}")
        if dynamic:
            assert_raw_parity(
                reference, reference64, run, letterboxed(name, (256, 416)), f"OpenVINO {kind} 256x416 {name}"
            )
    assert_predictions_match(checkpoint, d, f"OpenVINO {kind}", imgsz=320, rect=dynamic)

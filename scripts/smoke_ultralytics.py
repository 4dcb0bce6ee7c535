"""Smoke test of ultralytics-biformer against whichever Ultralytics is installed; CI runs it on the lowest declared one.

The test suite runs against one Ultralytics release; ``.ci/smoke-lowest`` runs this script in a second environment
holding the lowest version ``pyproject.toml`` allows, so the whole declared range is tested at both ends. It checks,
in one process plus fresh interpreters where Ultralytics itself would start one:

1. ``configs``: every shipped config in ``ultralytics_biformer/cfg/`` at scale n (all tasks, YOLO11 and YOLO26) and every config in
   its ``ablation/`` builds, has its BiFormer blocks, keeps every tensor of its stock twin, and runs forward.
2. ``train``: ``YOLO("yolo11n-biformer.yaml").train(...)``, one epoch on a tiny generated dataset at imgsz 64.
3. ``reload``: the trained ``best.pt`` loads in a fresh interpreter that never imports this package itself, with
   ``ULTRALYTICS_SAFE_LOAD=1`` (``=true`` on 8.4.67-8.4.92, which read no other value), and computes what it computed
   when saved. Where this Ultralytics has restricted loading (8.4.67 and later), a checkpoint smuggling in one foreign
   class is refused too; where it has none, the check says so and the load is the plain one.
4. ``onnx``: a yolo11n-biformer with every BRA branch active exports to ONNX through Ultralytics' exporter (imgsz 128,
   simplified); the graph keeps the routing (TopK) and ONNX Runtime's outputs match PyTorch's within a small multiple
   of PyTorch's own float32 rounding (measured against float64).
5. ``ddp``: the DDP worker path. Ultralytics' ``generate_ddp_file`` writes the script every DDP worker runs; the
   script is run, unmodified, in a fresh interpreter, so the worker rebuilds the trainer as that version does (before
   8.4.140 from the model YAML named in its arguments, from 8.4.140 on from a pickled state file holding the parent's
   model), then trains yolo26n-biformer for one epoch; its checkpoint must hold our blocks.
6. ``buckets``: the COCO area buckets split the validator's own matching verdicts on random images where
   predictions compete for labels of several sizes (``ultralytics_biformer.bench.metrics`` replays the matching rule of
   the installed version; an unknown rule would stop validation with an error).

Nothing is downloaded: the dataset is generated, no pretrained weights or AMP check are used, and a local font stands
in for the Arial Ultralytics would fetch. ``YOLO_CONFIG_DIR`` is pointed at the work folder, so an older Ultralytics
does not rewrite the user's settings file (8.4.0 resets a newer one to its defaults).

Usage: python scripts/smoke_ultralytics.py [--expect 8.4.0] [--keep DIR] [--only train,reload]
Prints one line per check and closes with ``smoke: N passed, N failed``; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The tiny dataset is the test suite's own (tests/helpers.py), so that it exists once. tests/ is no package, and this
# script runs as `python scripts/smoke_ultralytics.py` from the repository root (.ci/smoke-lowest), where only scripts/
# is on sys.path: put tests/ there to import it.
sys.path.insert(0, str(REPO / "tests"))
from helpers import write_tiny_dataset  # noqa: E402

IMGSZ_TRAIN = 64
IMGSZ_EXPORT = 128
# One epoch on the tiny dataset, on CPU, with nothing that downloads (the AMP check fetches weights) or plots
TRAIN = {
    "epochs": 1,
    "imgsz": IMGSZ_TRAIN,
    "batch": 4,
    "workers": 0,
    "device": "cpu",
    "amp": False,
    "plots": False,
    "name": "train",
    "exist_ok": True,
}
NOISE_MULTIPLE = 10  # ONNX may differ from PyTorch by this multiple of PyTorch's own float32 rounding (f32 vs f64)


def environment(tmp: Path) -> dict:
    """Offline, with a private Ultralytics config folder; returns the environment for the fresh interpreters too."""
    os.environ["YOLO_OFFLINE"] = "true"  # 8.4.0 reads only "true"; later versions also accept it
    os.environ["YOLO_CONFIG_DIR"] = str(tmp / "config")  # settings, the DDP worker script and a font go here
    os.environ.pop("ULTRALYTICS_BIFORMER_AUTOLOAD", None)  # the fresh interpreters must register by themselves
    (tmp / "config").mkdir(parents=True, exist_ok=True)
    return dict(os.environ)


def python(code: str, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter of this environment; raise with its output if it fails."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode:
        output = f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        raise AssertionError(f"fresh interpreter exited {proc.returncode}:\n{output}")
    return proc


def ours_in(model) -> list[str]:
    """Class names of our blocks in ``model``."""
    from ultralytics_biformer import BRA, C2PSA_BRA, C3k2_BRA

    return sorted({type(m).__name__ for m in model.modules() if isinstance(m, (BRA, C2PSA_BRA, C3k2_BRA))})


def tensors(output):
    """Every tensor in a (nested) model output."""
    import torch

    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    return [t for item in output for t in tensors(item)] if isinstance(output, (list, tuple)) else []


# ---------------------------------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------------------------------


def check_setup(ctx: dict) -> str:
    import ultralytics

    import ultralytics_biformer
    from ultralytics_biformer import integration

    where = Path(ultralytics_biformer.__file__).resolve()
    assert REPO in where.parents, f"ultralytics_biformer is imported from {where}, not from this checkout {REPO}"
    if ctx["expect"]:
        found = ultralytics.__version__
        assert found == ctx["expect"], f"ultralytics {found} is imported, expected {ctx['expect']}"
    import ultralytics.nn.tasks  # registration happens when the parser module loads

    assert integration.is_registered(), "the hook did not register when ultralytics.nn.tasks was imported"
    integration.use_local_fonts()  # in this process; the fresh interpreters find the copy below
    from ultralytics.utils import USER_CONFIG_DIR

    shutil.copy(integration.local_font(), USER_CONFIG_DIR / "Arial.ttf")
    ctx["data"] = write_tiny_dataset(ctx["tmp"] / "data")
    import torch

    return (
        f"ultralytics {ultralytics.__version__} from {Path(ultralytics.__file__).parent}, plug-in from {where.parent}, "
        f"torch {torch.__version__} from {Path(torch.__file__).parent}"
    )


def check_configs(ctx: dict) -> str:
    import torch
    from ultralytics import YOLO

    from ultralytics_biformer import BiLevelRoutingAttention, config_dir

    shipped = sorted(config_dir().glob("*.yaml"))
    ablation = sorted((config_dir() / "ablation").glob("*.yaml"))
    assert shipped and ablation, "no configs found"
    built = []
    for path in [*shipped, *ablation]:
        # yolo11-biformer-seg.yaml -> yolo11n-biformer-seg.yaml (bare name, resolved by the hook); ablation
        # configs are scale-specific files, loaded by path
        cfg = str(path) if path.parent.name == "ablation" else path.name.replace("-biformer", "n-biformer", 1)
        family, suffix = re.match(r"yolo\d+", path.stem).group(), path.stem.split("-")[-1]
        task = suffix if suffix in ("seg", "pose", "obb", "cls") else ""
        twin = f"{family}n{'-' + task if task else ''}.yaml"
        torch.manual_seed(0)
        ours = YOLO(cfg).model
        stock = YOLO(twin).model
        assert ours.yaml.get("scale") == "n", f"{cfg}: scale {ours.yaml.get('scale')!r}"
        assert ours_in(ours) and any(isinstance(m, BiLevelRoutingAttention) for m in ours.modules()), f"{cfg}: no BRA"
        theirs = ours.state_dict()
        missing = [k for k, v in stock.state_dict().items() if k not in theirs or theirs[k].shape != v.shape]
        if path.stem.endswith("-neck"):  # the neck ablation inserts 3 rows before the head, which moves
            missing = [k for k in missing if not k.startswith(f"model.{len(stock.model) - 1}.")]
        assert not missing, f"{cfg}: stock tensors of {twin} missing: {missing[:5]}"
        size = 64 if task == "cls" else 128
        with torch.no_grad():
            out = tensors(ours.eval()(torch.rand(1, 3, size, size)))
        assert out and all(t.isfinite().all() for t in out), f"{cfg}: non-finite or no output"
        built.append(Path(cfg).name)
    return f"{len(built)} configs: {', '.join(built)}"


def check_train(ctx: dict) -> str:
    import torch
    from ultralytics import YOLO

    model = YOLO("yolo11n-biformer.yaml")
    model.train(data=str(ctx["data"]), project=str(ctx["tmp"] / "runs"), verbose=False, **TRAIN)
    loss = model.trainer.tloss  # a tensor of loss items; a dict of them in later versions
    assert loss is not None, "no training loss"
    items = loss.values() if isinstance(loss, dict) else [loss]
    loss = torch.cat([torch.as_tensor(v, dtype=torch.float).flatten() for v in items])
    assert loss.numel() and loss.isfinite().all(), f"training loss {loss}"
    best = Path(model.trainer.best)
    assert best.is_file(), f"{best} was not saved"
    ctx["best"] = best
    return f"1 epoch at imgsz {IMGSZ_TRAIN}, loss items {[round(float(x), 3) for x in loss]}, {best.name} saved"


def check_buckets(ctx: dict) -> str:
    import numpy as np
    import torch
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import box_iou

    from ultralytics_biformer.bench.metrics import AreaBuckets

    validator, rng = DetectionValidator(args={"task": "detect"}), np.random.default_rng(0)
    buckets = AreaBuckets(validator.match_predictions, box_iou, validator.iouv)
    for _ in range(300):  # same-class boxes of every size piled up, so that predictions compete for labels
        n_true, n_pred = rng.integers(1, 8), rng.integers(1, 12)
        xy = rng.uniform(0, 20, (n_true, 2))
        true = np.concatenate([xy, xy + rng.uniform(20, 120, (n_true, 2))], 1)
        pred = true[rng.integers(0, n_true, n_pred)] + rng.normal(0, 6, (n_pred, 4))
        pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 1)
        cls = lambda n: torch.tensor(rng.integers(0, 2, n), dtype=torch.float64)  # noqa: E731
        preds = {"bboxes": torch.tensor(pred), "conf": torch.tensor(np.sort(rng.random(n_pred))[::-1].copy())}
        buckets.add({**preds, "cls": cls(n_pred)}, {"bboxes": torch.tensor(true), "cls": cls(n_true)})
    scores = buckets.compute()  # the replayed matching rule reproduced the validator's verdicts on every image
    return "300 images of competing boxes, mAP50-95 by size " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items())


def check_reload(ctx: dict) -> str:
    import fractions

    import torch
    import ultralytics.utils
    from ultralytics.utils.patches import torch_load

    best, tmp = ctx["best"], ctx["tmp"]
    x = tmp / "x.pt"
    torch.save(torch.rand(1, 3, IMGSZ_TRAIN, IMGSZ_TRAIN, generator=torch.Generator().manual_seed(0)), x)
    saved = torch_load(best, map_location="cpu", weights_only=False)
    with torch.no_grad():
        expected = saved["model"].float().eval()(torch.load(x))[0]
    restricted = hasattr(ultralytics.utils, "SAFE_LOAD")  # the ULTRALYTICS_SAFE_LOAD switch: 8.4.67 and later
    flag = "1" if hasattr(ultralytics.utils, "env_bool") else "true"  # 8.4.67-8.4.92 read only "true"
    code = f"""
        import sys, torch
        from ultralytics import YOLO
        model = YOLO({str(best)!r})
        with torch.no_grad():
            torch.save(model.model.float().eval()(torch.load({str(x)!r}))[0], {str(tmp / "y.pt")!r})
        print(sorted({{type(m).__name__ for m in model.model.modules()}} & {{"BRA", "C2PSA_BRA", "C3k2_BRA"}}))
        print(len(model.predict({str(ctx["data"].parent / "images" / "val")!r}, imgsz={IMGSZ_TRAIN}, verbose=False)))
        print("ultralytics_biformer" in sys.modules)
    """
    out = python(code, cwd=tmp, env={"ULTRALYTICS_SAFE_LOAD": flag}).stdout.strip().split("\n")[-3:]
    assert out == ["['BRA', 'C2PSA_BRA', 'C3k2_BRA']", "4", "True"], f"fresh interpreter printed {out}"
    torch.testing.assert_close(torch.load(tmp / "y.pt"), expected)  # float32 tolerances: thread counts may differ
    if not restricted:
        from ultralytics_biformer import BRA

        safe = getattr(torch.serialization, "get_safe_globals", list)()
        assert BRA in safe, "our classes are not in torch's safe globals"
        return (
            "plain load in a fresh interpreter, same outputs; this Ultralytics has no restricted loading "
            "(ULTRALYTICS_SAFE_LOAD is not read), so only our allow-listing in torch's safe globals was checked"
        )
    tampered = tmp / "tampered.pt"
    saved["extra"] = fractions.Fraction(1, 3)
    torch.save(saved, tampered)
    proc = subprocess.run(
        [sys.executable, "-c", f"from ultralytics import YOLO; YOLO({str(tampered)!r})"],
        check=False,
        cwd=tmp,
        env={**os.environ, "ULTRALYTICS_SAFE_LOAD": flag},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and "Fraction" in proc.stdout + proc.stderr, "a foreign class passed restricted loading"
    return f"restricted load (ULTRALYTICS_SAFE_LOAD={flag}) in a fresh interpreter: same outputs; foreign class refused"


def condition(model, seed: int = 0) -> None:
    """Give a fresh detector signal in every BRA branch (they start as the identity): random BatchNorm affine
    parameters, damped q and k so attention logits stay moderate, statistics calibrated on random images."""
    import torch

    from ultralytics_biformer import BiLevelRoutingAttention

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    for m in model.modules():
        if isinstance(m, BiLevelRoutingAttention):
            qk = torch.zeros(m.num_heads, 2 * m.key_dim + m.head_dim, dtype=torch.bool)
            qk[:, : 2 * m.key_dim] = True
            with torch.no_grad():
                m.qkv.bn.weight[qk.flatten()] *= 0.1
                m.qkv.bn.bias[qk.flatten()] *= 0.1
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.rand(2, 3, IMGSZ_EXPORT, IMGSZ_EXPORT, generator=g))
    model.eval()


def check_onnx(ctx: dict) -> str:
    import copy

    import cv2
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from ultralytics import YOLO
    from ultralytics.data.augment import LetterBox
    from ultralytics.utils import ASSETS

    tmp = ctx["tmp"] / "onnx"
    tmp.mkdir()
    torch.manual_seed(0)
    yolo = YOLO("yolo11n-biformer.yaml")
    condition(yolo.model)
    checkpoint = tmp / "conditioned.pt"
    yolo.save(checkpoint)
    exported = Path(YOLO(checkpoint).export(format="onnx", imgsz=IMGSZ_EXPORT, simplify=True, dynamic=False))
    assert exported.is_file(), f"no ONNX file at {exported}"
    ops = {node.op_type for node in onnx.load(str(exported)).graph.node}
    assert "TopK" in ops, f"no TopK in the exported graph: the routing was lost ({sorted(ops)})"

    image = LetterBox((IMGSZ_EXPORT, IMGSZ_EXPORT), auto=False)(image=cv2.imread(str(ASSETS / "bus.jpg")))
    x = torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))).float()[None] / 255
    reference = YOLO(checkpoint).model.float().fuse().eval()
    with torch.no_grad():
        y32 = reference(x)[0]
        y64 = copy.deepcopy(reference).double()(x.double())[0]
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    y_onnx = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
    assert y_onnx.shape == y32.shape, f"ONNX output {tuple(y_onnx.shape)}, PyTorch {tuple(y32.shape)}"
    report = []
    for part, rows in (("boxes", slice(0, 4)), ("scores", slice(4, None))):
        noise = (y32[:, rows].double() - y64[:, rows]).abs().max().item()
        diff = (y_onnx[:, rows] - y32[:, rows]).abs().max().item()
        assert diff <= NOISE_MULTIPLE * noise + 1e-7, f"{part}: ONNX differs by {diff:.3g}, float32 noise {noise:.3g}"
        report.append(f"{part} max |ONNX - PyTorch| {diff:.2g} (float32 noise {noise:.2g})")
    return f"imgsz {IMGSZ_EXPORT}, simplified, TopK in graph; " + ", ".join(report)


def check_ddp(ctx: dict) -> str:
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils.dist import generate_ddp_file
    from ultralytics.utils.patches import torch_load

    tmp, cfg = ctx["tmp"], "yolo26n-biformer.yaml"
    trainer = DetectionTrainer(overrides={"model": cfg, "data": str(ctx["data"]), "project": str(tmp / "ddp"), **TRAIN})
    trainer.model = trainer.get_model(cfg=cfg, verbose=False)  # the parent's model, which later versions pickle
    script = Path(generate_ddp_file(trainer))
    state = script.with_suffix(".pt")
    how = "the parent's model from a state file" if state.exists() else f"{cfg} rebuilt from its YAML"
    try:
        proc = subprocess.run(
            [sys.executable, str(script)], check=False, cwd=tmp, capture_output=True, text=True, timeout=600
        )
        if proc.returncode:
            output = f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
            raise AssertionError(f"the DDP worker script exited {proc.returncode}:\n{output}")
    finally:
        script.unlink(missing_ok=True)
        state.unlink(missing_ok=True)
    last = Path(trainer.save_dir) / "weights" / "last.pt"
    assert last.is_file(), f"the worker saved no {last}"
    found = ours_in(torch_load(last, map_location="cpu", weights_only=False)["model"])
    assert found == ["BRA", "C2PSA_BRA", "C3k2_BRA"], f"the worker's checkpoint holds {found}"
    return f"worker script run unmodified in a fresh interpreter: {how}, trained 1 epoch, checkpoint holds {found}"


CHECKS = {
    "setup": check_setup,
    "configs": check_configs,
    "train": check_train,
    "reload": check_reload,
    "onnx": check_onnx,
    "ddp": check_ddp,
    "buckets": check_buckets,
}
NEEDS = {"reload": "train"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--expect", help="fail unless this exact Ultralytics version is the one imported")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--only", help=f"comma-separated checks to run, of {', '.join(CHECKS)} (setup always runs)")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(CHECKS)
    if only - set(CHECKS):
        parser.error(f"unknown checks: {', '.join(sorted(only - set(CHECKS)))}")
    only |= {"setup"} | {NEEDS[name] for name in only if name in NEEDS}
    tmp = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="biformer-smoke-"))
    tmp.mkdir(parents=True, exist_ok=True)
    environment(tmp)
    ctx, passed, failed = {"tmp": tmp, "expect": args.expect}, [], []
    start = time.perf_counter()
    try:
        for name, check in CHECKS.items():
            if name not in only:
                continue
            t0 = time.perf_counter()
            if "setup" in failed or NEEDS.get(name) in failed:
                print(f"FAIL {name}: not run, {'setup' if 'setup' in failed else NEEDS[name]} failed", flush=True)
                failed.append(name)
                continue
            try:
                detail = check(ctx)
            except Exception:  # noqa: BLE001  (every failure is reported, and the next check runs)
                failed.append(name)
                print(f"FAIL {name} ({time.perf_counter() - t0:.0f} s)\n{traceback.format_exc()}", flush=True)
            else:
                passed.append(name)
                print(f"ok   {name} ({time.perf_counter() - t0:.0f} s): {detail}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"smoke checks took {time.perf_counter() - start:.0f} s")
    print(f"smoke: {len(passed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

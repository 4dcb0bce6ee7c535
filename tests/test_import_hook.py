"""Zero-setup activation, end to end, in fresh interpreters that never import this package themselves."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

YOLO_CLI = str(Path(sys.executable).parent / "yolo") if (Path(sys.executable).parent / "yolo").exists() else "yolo"


def run(args, env=None, cwd=None, check=True):
    """Run a command with this interpreter's environment plus ``env``; return the completed process."""
    full_env = {**os.environ, "YOLO_OFFLINE": "1", **(env or {})}
    proc = subprocess.run(args, env=full_env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if check and proc.returncode:
        raise AssertionError(f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


def python(code, **kwargs):
    return run([sys.executable, "-c", textwrap.dedent(code)], **kwargs)


def test_start_up_imports_nothing_heavy():
    out = python(
        """
        import sys
        print(sorted(m for m in ("torch", "ultralytics", "ultralytics_biformer") if m in sys.modules))
        print("_ultralytics_biformer_autoload" in sys.modules)
        """
    ).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"


def test_one_hook_whoever_installs_it():
    """The start-up shim and ``import ultralytics_biformer`` share one hook module and one finder, which leaves once
    Ultralytics' parser has loaded and our blocks are registered."""
    out = python(
        """
        import sys
        def finders():
            return [f for f in sys.meta_path if type(f).__module__ == "ultralytics_biformer._import_hook"]
        started = sys.modules["ultralytics_biformer._import_hook"]
        print(len(finders()))
        import ultralytics_biformer
        print(ultralytics_biformer._import_hook is started, len(finders()))
        import ultralytics.nn.tasks
        print(ultralytics_biformer.is_registered(), len(finders()))
        """
    ).stdout.split("\n")
    assert out[:3] == ["1", "True 1", "True 0"]


def test_a_program_that_imported_us_gets_the_registration_error():
    """Only the autoload turns a failure to register into a warning; after ``import ultralytics_biformer`` it raises."""
    proc = python(
        """
        import sys
        import ultralytics_biformer
        sys.modules["ultralytics_biformer.integration"] = None  # makes registering fail
        try:
            import ultralytics.nn.tasks
        except ImportError as e:
            print("raised:", e)
        """
    )
    assert "raised: import of ultralytics_biformer.integration halted" in proc.stdout
    assert "could not register" not in proc.stderr

def test_stock_api_sees_our_blocks_without_importing_us(tmp_path):
    out = python(
        """
        import sys
        from ultralytics import YOLO
        model = YOLO("yolo11n-biformer.yaml")
        print(type(model.model.model[10]).__name__, type(model.model.model[16]).__name__)
        print("ultralytics_biformer" in sys.modules)
        """,
        cwd=tmp_path,
    ).stdout.split("\n")
    assert out[0] == "C2PSA_BRA C3k2_BRA" and out[1] == "True"


def test_autoload_switch(tmp_path):
    off = {"ULTRALYTICS_BIFORMER_AUTOLOAD": "0"}
    proc = python("from ultralytics import YOLO; YOLO('yolo11n-biformer.yaml')", env=off, cwd=tmp_path, check=False)
    assert proc.returncode != 0
    out = python(
        """
        import ultralytics_biformer
        from ultralytics import YOLO
        print(type(YOLO("yolo11n-biformer.yaml").model.model[10]).__name__)
        """,
        env=off,
        cwd=tmp_path,
    ).stdout
    assert out.split("\n")[0] == "C2PSA_BRA"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_dataset):
    """``yolo train`` a biformer model for one epoch on the tiny dataset, through the stock CLI."""
    project = tmp_path_factory.mktemp("runs")
    run(
        [YOLO_CLI, "train", "model=yolo11n-biformer.yaml", f"data={tiny_dataset}", "epochs=1", "imgsz=64", "batch=4",
         "workers=0", "plots=False", "device=cpu", f"project={project}", "name=train", "exist_ok=True", "amp=False"],
        cwd=project,
    )
    best = project / "train" / "weights" / "best.pt"
    assert best.is_file()
    return best, tiny_dataset, project


@pytest.mark.slow
def test_cli_val_and_predict_on_trained_checkpoint(trained):
    best, data, project = trained
    val = run([YOLO_CLI, "val", f"model={best}", f"data={data}", "imgsz=64", "batch=4", "workers=0", "plots=False",
               f"project={project}", "name=val"], cwd=project)
    assert "all" in val.stdout + val.stderr  # the per-class metrics table
    source = Path(data).parent / "images" / "val"
    run([YOLO_CLI, "predict", f"model={best}", f"source={source}", "imgsz=64", "save=False", f"project={project}",
         "name=predict"], cwd=project)


@pytest.mark.slow
def test_restricted_loading_accepts_our_checkpoints_only(trained, tmp_path):
    best, data, _ = trained
    code = f"""
        import torch
        from ultralytics import YOLO
        model = YOLO({str(best)!r})
        print(type(model.model.model[10]).__name__)
        r = model.predict({str(Path(data).parent / "images" / "val")!r}, imgsz=64, verbose=False)
        print(len(r))
    """
    out = python(code, env={"ULTRALYTICS_SAFE_LOAD": "1"}, cwd=tmp_path).stdout.split("\n")
    assert out[:2] == ["C2PSA_BRA", "4"]

    # A checkpoint that smuggles in anything beyond our modules is still refused.
    tampered = tmp_path / "tampered.pt"
    python(
        f"""
        import fractions, torch
        from ultralytics.utils.patches import torch_load
        ckpt = torch_load({str(best)!r}, map_location="cpu", weights_only=False)
        ckpt["extra"] = fractions.Fraction(1, 3)
        torch.save(ckpt, {str(tampered)!r})
        """
    )
    proc = python(f"from ultralytics import YOLO; YOLO({str(tampered)!r})", env={"ULTRALYTICS_SAFE_LOAD": "1"},
                  cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Fraction" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_ddp_state_file_loads_in_a_fresh_interpreter(tmp_path, tiny_dataset):
    """Ultralytics' DDP workers rebuild the trainer from a pickled state file; it must load with no import of ours."""
    out = python(
        f"""
        from ultralytics.models.yolo.detect import DetectionTrainer
        from ultralytics.utils.dist import generate_ddp_file
        trainer = DetectionTrainer(overrides=dict(model="yolo11n-biformer.yaml", data={str(tiny_dataset)!r},
                                                  imgsz=64, device="cpu", project={str(tmp_path)!r}))
        trainer.model = trainer.get_model(cfg="yolo11n-biformer.yaml", verbose=False)
        print(generate_ddp_file(trainer))
        """,
        cwd=tmp_path,
    ).stdout.strip().split("\n")[-1]
    state_file = Path(out).with_suffix(".pt")
    try:
        loaded = python(
            f"""
            import torch
            from ultralytics.utils.patches import torch_load
            state = torch_load({str(state_file)!r}, map_location="cpu")
            model = state["model"]
            print(type(model.model[10]).__name__, model.eval()(torch.rand(1, 3, 64, 64))[0].shape[1])
            """,
            cwd=tmp_path,
        ).stdout.split("\n")[0]
    finally:
        for suffix in (".py", ".pt"):
            Path(out).with_suffix(suffix).unlink(missing_ok=True)
    assert loaded == "C2PSA_BRA 6"  # 4 box coordinates + the tiny dataset's 2 classes


def test_config_found_by_repo_relative_path():
    """``YOLO("ultralytics_biformer/cfg/yolo11s-biformer.yaml")`` from the repository root, as
    ``yolo ... model=ultralytics_biformer/cfg/...`` calls it: a real path, with the scale in its name."""
    repo = Path(__file__).resolve().parents[1]
    out = python(
        """
        from ultralytics import YOLO
        m = YOLO("ultralytics_biformer/cfg/yolo11s-biformer.yaml")
        print(m.model.yaml["scale"], type(m.model.model[22]).__name__)
        """,
        cwd=repo,
    ).stdout.split("\n")[0]
    assert out == "s C3k2_BRA"


def test_autoload_failure_is_reported_not_swallowed():
    """A plug-in that cannot register must not break stock Ultralytics, but must say so on stderr."""
    proc = python(
        """
        import sys
        sys.modules["ultralytics_biformer"] = None  # makes `import ultralytics_biformer` fail
        from ultralytics import YOLO
        YOLO("yolo11n.yaml")
        print("stock still works")
        """
    )
    assert "stock still works" in proc.stdout
    assert "ultralytics-biformer could not register" in proc.stderr

"""End to end, zero-setup activation with a trained model: ``yolo train`` through the stock CLI, then ``yolo val`` and
``yolo predict``, restricted loading (``ULTRALYTICS_SAFE_LOAD``) of the checkpoint, and the state file Ultralytics' DDP
workers load, all in fresh interpreters that never import this package themselves (``_import_hook`` at start-up).
Every test here trains or builds a trainer (marked slow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import YOLO_CLI, python, run

pytestmark = pytest.mark.slow


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

"""Tests of ``ultralytics_biformer._import_hook``: zero-setup activation, in fresh interpreters that never import this
package themselves. Its end-to-end tests with a trained model are in test_e2e_activation.py."""

from __future__ import annotations

from pathlib import Path

from helpers import python


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


def test_autoload_ignores_a_package_directory_without_its_hook(tmp_path):
    """An empty ``ultralytics_biformer/`` left on the path (an uninstall that left the directory, a stale checkout)
    must not raise at every interpreter start-up."""
    (tmp_path / "ultralytics_biformer").mkdir()
    autoload = Path(__file__).parents[1] / "_ultralytics_biformer_autoload.py"
    out = python(
        f"""
        import runpy, sys
        from pathlib import Path
        sys.modules.pop("ultralytics_biformer._import_hook")
        sys.path[:] = [{str(tmp_path)!r}] + [p for p in sys.path if not Path(p, "ultralytics_biformer").is_dir()]
        print(runpy.run_path({str(autoload)!r})["_hook"])
        """
    ).stdout.split("\n")[0]
    assert out == "None"

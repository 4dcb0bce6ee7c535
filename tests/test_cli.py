"""Tests of ``ultralytics_biformer.cli`` itself: the top-level ``ultralytics-biformer`` command (help, unknown commands,
exit codes) and its console script. Each command has its own file: test_cli_<command>.py."""

from __future__ import annotations

import shutil
import subprocess

from ultralytics_biformer.cli import main


def test_help_and_unknown_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("compare", "dataset", "routes"))
    assert main(["compare", "help"]) == 0
    out = capsys.readouterr().out
    assert all(key in out for key in ("models", "data", "preset", "seeds", "epochs", "imgsz", "project", "name"))
    assert main(["train"]) == 2
    assert "unknown command 'train'. Accepted: compare, dataset, routes" in capsys.readouterr().err


def test_console_script_forwards_to_the_cli():
    script = shutil.which("ultralytics-biformer")
    assert script, "the ultralytics-biformer console script is not installed"
    out = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: ultralytics-biformer COMMAND" in out
    done = subprocess.run([script, "compare", "bogus=1"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "unknown argument 'bogus' for 'compare'" in done.stderr

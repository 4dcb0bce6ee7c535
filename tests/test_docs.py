"""Statements in the docs that a reader acts on: measured costs quoted in docstrings, downloads in examples, the
evidence each shipped config cites."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _latency_ratios() -> dict[str, str]:
    """The README's CPU latency table: model config -> its 'vs yolo11n' ratio as written, e.g. '1.17x'."""
    table = README.read_text().split("| model | ms | vs yolo11n |", 1)[1].splitlines()[2:]
    ratios = {}
    for line in table:
        if not line.startswith("|"):
            break
        cells = [cell.strip().strip("*") for cell in line.strip("|").split("|")]
        ratios[cells[0]] = cells[2]
    return ratios


def test_c3k2_bra_docstring_quotes_the_measured_latency():
    from ultralytics_biformer import C3k2_BRA

    doc = " ".join(C3k2_BRA.__doc__.split())
    ratios = _latency_ratios()
    for config in ("yolo11n-biformer.yaml", "yolo11n-biformer-backbone.yaml", "yolo11n-biformer-neck.yaml"):
        assert ratios[config] in doc, f"C3k2_BRA's docstring does not quote {config}'s measured {ratios[config]}"


def test_readme_python_examples_say_when_weights_are_downloaded():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        for weights in re.findall(r"[\"'](yolo[\w.-]*\.pt)[\"']", block):
            assert "download" in block and "local" in block, (
                f"a README example passes {weights}, which Ultralytics downloads, without saying so or what to pass "
                "offline"
            )


def _header(config: Path) -> str:
    """The comment lines a config opens with, joined into one text."""
    lines = []
    for line in config.read_text().splitlines():
        if line and not line.startswith("#"):
            break
        lines.append(line.lstrip("# "))
    return " ".join(lines)


def test_every_shipped_config_cites_the_study_that_chose_its_settings():
    configs = sorted((ROOT / "cfg").rglob("*.yaml"))
    assert len(configs) > 10
    for config in configs:
        header = _header(config)
        assert "docs/results/ablation.md" in header, f"{config.name}'s header does not cite docs/results/ablation.md"
        for cited in re.findall(r"(?:docs/results|cfg)/[\w./-]*[\w/]", header):
            assert (ROOT / cited).exists(), f"{config.name}'s header cites {cited}, which does not exist"


def _documented_commands() -> list[tuple[str, str]]:
    """Every ``ultralytics-biformer ...`` command line in the README's and docs' bash blocks, as (file, line)."""
    commands = []
    for path in [README, *sorted((ROOT / "docs").rglob("*.md"))]:
        for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" # ")[0].strip()
                inner = re.findall(r"\$\((ultralytics-biformer [^)]*)\)", line)  # data=$(ultralytics-biformer dataset)
                line = re.sub(r"\$\([^)]*\)", "$SUBSTITUTED", line)
                for command in inner + (
                    [line[line.index("ultralytics-biformer ") :]] if "ultralytics-biformer " in line else []
                ):
                    commands.append((path.name, command))
    return commands


def test_every_documented_command_parses():
    """A reader copies these: each names a real command and passes only keys and values it accepts. Placeholders
    (``...``, ``$(...)``, shell variables) are left out of the check, not the command."""
    import importlib
    import shlex

    from ultralytics_biformer.cli import COMMANDS
    from ultralytics_biformer.cli.args import parse_options

    commands = _documented_commands()
    assert len(commands) > 10
    for source, line in commands:
        words = shlex.split(line.split(" && ")[0].split(" | ")[0].rstrip(";"))
        command, tokens = words[1], words[2:]
        assert command in COMMANDS, f"{source}: unknown command in {line!r}"
        module = importlib.import_module(f"ultralytics_biformer.cli.{command}")
        checked = [t for t in tokens if "..." not in t and "$" not in t and t not in ("help",)]
        parse_options(checked, module.OPTIONS, command)  # raises ArgumentError on a bad key or value

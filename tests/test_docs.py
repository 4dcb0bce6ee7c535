"""Statements in the docs that a reader acts on: downloads in examples, the evidence each shipped config cites, the
figures the README quotes, the commands it documents."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_python_examples_say_when_weights_are_downloaded():
    blocks = [
        b
        for page in (README, ROOT / "docs" / "guide.md")
        for b in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    ]
    assert blocks
    for block in blocks:
        for weights in re.findall(r"[\"'](yolo[\w.-]*\.pt)[\"']", block):
            assert "download" in block and "local" in block, (
                f"an example passes {weights}, which Ultralytics downloads, without saying so or what to pass offline"
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
    configs = sorted((ROOT / "ultralytics_biformer" / "cfg").rglob("*.yaml"))
    assert len(configs) > 10
    for config in configs:
        header = _header(config)
        studies = ("docs/results/ablation.md", "docs/results/context.md")
        assert any(study in header for study in studies), f"{config.name}'s header cites neither of {studies}"
        for cited in re.findall(r"(?:docs/results|(?:ultralytics_biformer/)?cfg)/[\w./-]*[\w/]", header):
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
                # The command where a shell line starts it, not a folder of that name (cd ultralytics-biformer).
                started = re.search(r"(?:^|&& |; )(ultralytics-biformer .*)", line)
                for command in inner + ([started[1]] if started else []):
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


def test_every_figure_the_readme_quotes_is_in_the_page_it_links():
    """The README's results table cites a page per row; each figure in the row's answer must appear on that page, so
    a figure cannot outlive the record it came from."""
    text = README.read_text()
    table = text.split("| question | answer | where |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert len(table) >= 3
    for row in table:
        _, answer, where = (cell.strip() for cell in row.strip("|").split("|"))
        page = ROOT / re.search(r"\]\(([^)#]+)", where)[1]
        figures = re.findall(r"[+-]?\d+\.\d+[%x]?", answer)
        for figure in figures:
            assert figure in page.read_text(), f"README quotes {figure} from {page.name}, which does not hold it"
    ablation = (ROOT / "docs" / "results" / "ablation.md").read_text()
    flat, ablation = " ".join(text.split()), " ".join(ablation.split())
    for claim in ("one time in five", "0.011", "80%"):
        assert claim in flat and claim in ablation, claim


def test_install_figures_in_the_readme_are_the_measured_ones():
    install = (ROOT / "docs" / "results" / "install.md").read_text()
    paragraph = README.read_text().split("## Install", 1)[1].split("## Set-up", 1)[0]
    figures = re.findall(r"\b\d[\d,]*(?= (?:s|MiB)\b)", paragraph)
    assert len(figures) >= 5, figures
    for figure in figures:
        assert figure.replace(",", "") in install, f"README's install figure {figure} is not in install.md"


def test_every_help_states_each_key_s_default():
    """A reader of any command's help learns what happens when a key is left out."""
    import importlib

    from ultralytics_biformer.cli import COMMANDS
    from ultralytics_biformer.cli.args import keys_help

    for command in COMMANDS:
        module = importlib.import_module(f"ultralytics_biformer.cli.{command}")
        for line in keys_help(module.OPTIONS).splitlines():
            assert re.search(r"default|\(preset\)|\(required\)", line), f"{command} help: {line.strip()}"

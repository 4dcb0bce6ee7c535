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

"""scripts/context_study.py: the learned-epoch rule, Holm over every model and distance of the study, and part 4's
variants in a family of their own."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import load_script


@pytest.fixture(scope="module")
def study():
    return load_script("context_study")


def test_learned_epoch_is_where_map50_stays_above_halfway(study):
    assert study.learned_epoch([0.5, 0.52, 0.8, 0.7, 0.8, 0.9]) == 5  # a dip after epoch 3 resets it
    assert study.learned_epoch([0.76, 0.9]) == 1
    assert study.learned_epoch([0.5, 0.9, 0.6]) is None  # not learned by the end
    assert study.learned_epoch([]) is None
    assert study.LEARNED_MAP50 == 0.75  # halfway between guessing (0.5) and knowing (1.0) the class


def test_late_gain_is_what_the_curve_still_rose_over_its_last_epochs(study):
    assert study.late_gain([0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5], epochs=5) == pytest.approx(0.5 - 0.2)
    assert study.late_gain([0.9, 0.8, 0.7], epochs=2) == pytest.approx(-0.2)  # a falling curve is a loss
    assert study.late_gain([0.1, 0.2], epochs=2) is None  # too short to tell


def _records(root: Path, distance: int, maps: dict[str, list[float]], map50=None):
    folder = root / f"context-d{distance}" / "records"
    folder.mkdir(parents=True)
    for model, values in maps.items():
        for seed, value in enumerate(values):
            curve = map50 or [0.5, 0.8]
            record = {
                "model": model,
                "seed": seed,
                "map": value,
                "map50": curve[-1],
                "curves": {"metrics/mAP50(B)": curve},
            }
            (folder / f"{Path(model).stem}-seed{seed}.json").write_text(json.dumps(record))
    (folder / "yolo11n-seed0.job.json").write_text("{}")  # job files are not records


def test_summary_pairs_by_seed_and_corrects_over_the_whole_study(study, tmp_path):
    base = [0.5, 0.5, 0.5]
    _records(tmp_path, 8, {"yolo11n.yaml": base, "yolo12n.yaml": [0.45, 0.47, 0.46]})  # p 0.0202 alone
    _records(tmp_path, 48, {"yolo11n.yaml": base, "yolo12n.yaml": [0.52, 0.47, 0.50]}, map50=[0.5, 0.52])
    curve, runs = study.summarise(study.load(tmp_path))
    rows = {(r["distance"], r["model"]): r for r in curve}
    near = rows[8, "yolo12n.yaml"]
    assert near["diff"].mean == pytest.approx(-0.04) and near["diff"].p_value == pytest.approx(0.0202, abs=1e-4)
    assert near["p_holm"] == pytest.approx(2 * near["diff"].p_value)  # two tested comparisons in the family
    assert near["verdict"] == "worse"  # 0.040 < 0.05
    assert rows[48, "yolo12n.yaml"]["verdict"] == "no detectable difference"
    assert "diff" not in rows[8, "yolo11n.yaml"]
    assert {(r["distance"], r["learned_epoch"]) for r in runs} == {(8, 2), (48, None)}
    lines = study.write(curve, runs, tmp_path)
    assert (tmp_path / "curve.png").is_file()
    with open(tmp_path / "curve.csv") as f:
        written = list(csv.DictReader(f))
    assert [(r["distance"], r["model"], r["verdict"]) for r in written] == [
        ("8", "yolo11n.yaml", ""),
        ("8", "yolo12n.yaml", "worse"),
        ("48", "yolo11n.yaml", ""),
        ("48", "yolo12n.yaml", "no detectable difference"),
    ]
    assert any("| 48 | `yolo12n.yaml` | 0 | 0.5200 | 0.5200 | 2 | never |" in line for line in lines)


def test_comparisons_without_a_p_value_count_in_the_family_and_early_verdicts_are_interim(study, tmp_path):
    _records(tmp_path, 8, {"yolo11n.yaml": [0.5, 0.5], "yolo12n.yaml": [0.45, 0.46]})  # two seeds
    _records(tmp_path, 48, {"yolo11n.yaml": [0.5], "yolo12n.yaml": [0.52]})  # one seed: no p-value yet
    curve, _ = study.summarise(study.load(tmp_path))
    rows = {(r["distance"], r["model"]): r for r in curve}
    near, far = rows[8, "yolo12n.yaml"], rows[48, "yolo12n.yaml"]
    assert near["p_holm"] == pytest.approx(min(1.0, 2 * near["diff"].p_value))  # the untested one counts
    assert near["verdict"] == "interim, 2 of 3 seeds: no detectable difference"
    assert far["p_holm"] is None and far["verdict"] == "no verdict possible with one seed"


def test_part_4_variants_are_decided_apart_from_the_study_and_against_the_default_too(study, tmp_path):
    base = [0.5, 0.5, 0.5]
    _records(tmp_path, 8, {"yolo11n.yaml": base, "yolo12n.yaml": [0.45, 0.47, 0.46]})  # p 0.0202 alone
    _records(
        tmp_path,
        40,
        {"yolo11n.yaml": base, "yolo11n-biformer.yaml": [0.52, 0.47, 0.50], "cfg/v.yaml": [0.61, 0.58, 0.60]},
    )
    curve, _ = study.summarise(study.load(tmp_path))
    rows = {(r["distance"], r["model"]): r for r in curve}
    near, variant = rows[8, "yolo12n.yaml"], rows[40, "v.yaml"]
    assert near["p_holm"] == pytest.approx(2 * near["diff"].p_value)  # the study's two, not three, comparisons
    assert variant["family"] == "part 4" and variant["p_holm"] == pytest.approx(variant["diff"].p_value)  # alone
    assert variant["verdict"] == "part 4: better"
    assert variant["diff_default"].mean == pytest.approx(0.10)  # paired with yolo11n-biformer.yaml, seed by seed
    assert "diff_default" not in rows[40, "yolo11n-biformer.yaml"]
    lines = study.write(curve, [], tmp_path)
    assert any(line.startswith("| 40 | `v.yaml` | 0 1 2 | +0.1000 [") for line in lines)


def test_later_seeds_leave_the_verdicts_to_the_design_s_seeds_and_are_reported_apart(study, tmp_path):
    # Seeds 0-2 are all the design's verdicts may see: there yolo12n is behind in each (p 0.0202). Seeds 3 and 4,
    # added later, are far ahead; they may move only the exploratory row over every seed.
    _records(tmp_path, 40, {"yolo11n.yaml": [0.5] * 5, "yolo12n.yaml": [0.45, 0.47, 0.46, 0.9, 0.9]})
    _records(tmp_path, 8, {"yolo11n.yaml": [0.5] * 3, "yolo11n-biformer.yaml": [0.52, 0.47, 0.50]})
    curve, runs = study.summarise(study.load(tmp_path))
    design = {(r["distance"], r["model"]): r for r in curve if r.get("family") != study.BEYOND}
    beyond = [r for r in curve if r.get("family") == study.BEYOND]
    far = design[40, "yolo12n.yaml"]
    assert far["seeds"] == "0 1 2" and design[40, "yolo11n.yaml"]["seeds"] == "0 1 2"
    assert far["diff"].mean == pytest.approx(-0.04)
    assert far["p_holm"] == pytest.approx(2 * far["diff"].p_value)  # the family is still the design's two
    assert far["verdict"] == "worse"
    assert [(r["distance"], r["model"], r["seeds"]) for r in beyond] == [(40, "yolo12n.yaml", "0 1 2 3 4")]
    assert beyond[0]["diff"].mean == pytest.approx((-0.05 - 0.03 - 0.04 + 0.4 + 0.4) / 5)
    assert beyond[0]["p_holm"] is None and beyond[0]["verdict"] == "exploratory"
    assert len(runs) == 16  # every run is listed, later seeds too
    lines = study.write(curve, runs, tmp_path)
    verdict_table = lines[: lines.index("")]
    assert not any("0 1 2 3 4" in line for line in verdict_table)
    assert any(line.startswith("| 40 | `yolo12n.yaml` | 0 1 2 3 4 | +0.1360 [") for line in lines)
    with open(tmp_path / "curve.csv") as f:
        assert [r["family"] for r in csv.DictReader(f)].count(study.BEYOND) == 1

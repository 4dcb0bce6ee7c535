"""Tests of ``ultralytics_biformer.cli.dataset``: the ``dataset`` command."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ultralytics_biformer.cli import main
from ultralytics_biformer.data import synthetic
from ultralytics_biformer.data.presets import PRESET_SPECS
from ultralytics_biformer.data.synthetic import (
    CLASSIFY_NAMES,
    DatasetSpec,
    cached_dataset,
)

pytestmark = pytest.mark.usefixtures("private_cache")  # every test gets its own empty dataset cache


def test_dataset_command_prints_only_the_yaml_path(capsys, tmp_path):
    assert main(["dataset", "train=4", "val=2", "imgsz=64", "seed=1"]) == 0
    out = capsys.readouterr().out
    path = Path(out.strip())
    assert out == f"{path}\n"
    assert path.is_file() and path.is_relative_to(tmp_path / "cache")
    assert len(list((path.parent / "images" / "train").iterdir())) == 4


def test_dataset_command_says_on_stderr_which_dataset_it_gives(capsys):
    arguments = ["dataset", "preset=quick", "task=pose", "train=3", "val=2", "imgsz=64"]
    spec = DatasetSpec(seed=PRESET_SPECS["quick"].seed, train=3, val=2, imgsz=64, task="pose")
    assert main(arguments) == 0
    first = capsys.readouterr()
    assert first.out == f"{cached_dataset(spec)}\n"
    assert spec.describe() in first.err and "preset quick" in first.err and "generating" in first.err
    assert main(arguments) == 0
    second = capsys.readouterr()
    assert second.out == first.out
    assert spec.describe() in second.err and "reusing the cached copy" in second.err and "Generating" not in second.err


def test_dataset_command_gives_the_drawing_version_asked_for(capsys):
    base = ["dataset", "preset=quick", "train=2", "val=2", "imgsz=64"]
    assert main(base) == 0 and main([*base, "version=1"]) == 0
    latest, old = (Path(line) for line in capsys.readouterr().out.split())
    assert latest.parent.name == replace(PRESET_SPECS["quick"], train=2, val=2, imgsz=64).folder_name
    assert old.parent.name == replace(PRESET_SPECS["quick"], train=2, val=2, imgsz=64, version=1).folder_name
    assert "-v2-" in latest.parent.name and "-v1-" in old.parent.name
    assert "# context-tokens v1" in old.read_text() and "# context-tokens v2" in latest.read_text()


def test_dataset_and_compare_default_to_the_same_preset_and_say_so(capsys, monkeypatch, tmp_path):
    from ultralytics_biformer.bench.plan import PRESETS, make_plan
    from ultralytics_biformer.cli import compare, dataset

    def as_if_cached(spec, root=None):  # no generation in a unit test: pretend it is there
        return Path("/cached/data.yaml")

    monkeypatch.setattr(synthetic, "generate_dataset", lambda spec, out_dir: pytest.fail("generated in a unit test"))
    monkeypatch.setattr(synthetic, "cached_dataset", as_if_cached)
    monkeypatch.setattr(dataset, "cached_dataset", as_if_cached)
    assert main(["dataset"]) == 0
    out, err = capsys.readouterr()
    assert out == "/cached/data.yaml\n"
    default = dataset.DEFAULT_PRESET
    plan = make_plan(compare.parse_options(["train=False", f"project={tmp_path}"], compare.OPTIONS, "compare"))
    assert plan.settings["preset"] == default  # compare without preset= or data= takes the same preset
    assert PRESETS[default].dataset == PRESET_SPECS[default]  # hence the same dataset
    assert PRESET_SPECS[default].describe() in err and f"preset {default} (the default, as compare's" in err
    for command in ("dataset", "compare"):
        assert main([command, "help"]) == 0
        assert f"default {default}" in capsys.readouterr().out  # each help states it


def test_dataset_command_classify_prints_the_dataset_folder(capsys, tmp_path):
    assert main(["dataset", "task=classify", "train=2", "val=2", "imgsz=64"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.is_dir() and path.is_relative_to(tmp_path / "cache")
    assert sorted(p.name for p in (path / "train").iterdir()) == sorted(CLASSIFY_NAMES)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["train=0"], "train=0: expected an integer >= 1"),
        (["colour=red"], "unknown argument 'colour'"),
        (["preset=huge"], "preset=huge: expected one of full, quick, study"),
        (["imgsz=16"], "at least 32 pixels"),
        (["task=depth"], "task=depth: expected one of detect, segment, pose, obb, classify"),
        (["style=coco"], "style=coco: expected one of tokens, pretrain"),
        (["task=classify", "val=1"], "a classify dataset needs at least 2 train and 2 val images"),
        (["version=3"], "version=3: expected one of 1, 2"),
    ],
)
def test_dataset_command_rejects_bad_arguments(capsys, tmp_path, arguments, message):
    assert main(["dataset", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("ultralytics-biformer dataset: error: ") and message in err.splitlines()[0]
    assert not (tmp_path / "cache").exists()


def test_dataset_command_makes_a_context_dataset(capsys):
    assert main(["dataset", "style=context", "distance=12", "train=2", "val=2", "imgsz=64"]) == 0
    out, err = capsys.readouterr()
    path = Path(out.strip())
    assert path.parent.name.endswith("-context-v1-d12") and path.is_file()
    assert "preset context (the default of style=context)" in err and "distance 12px" in err
    assert main(["dataset", "distance=12"]) == 2
    assert "applies to style context only" in capsys.readouterr().err

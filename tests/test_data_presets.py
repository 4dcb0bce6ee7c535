"""Tests of ``ultralytics_biformer.data.presets``: the named dataset specs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ultralytics_biformer.data.presets import PRESET_SPECS, preset_spec
from ultralytics_biformer.data.synthetic import (
    DatasetSpec,
)

pytestmark = pytest.mark.usefixtures("private_cache")  # every test gets its own empty dataset cache


def test_presets_live_in_the_data_module():
    from ultralytics_biformer import data

    assert PRESET_SPECS is data.PRESET_SPECS
    assert {"full", "quick", "study"} <= PRESET_SPECS.keys()
    assert preset_spec("quick", task="obb") == replace(PRESET_SPECS["quick"], task="obb")
    with pytest.raises(ValueError, match="unknown dataset preset 'huge'; accepted: full, quick, study"):
        preset_spec("huge")


def test_study_preset_is_the_dataset_the_study_used():
    """The ablation study trained on this spec's cache folder: its name is a contract, written out here on purpose."""
    study = PRESET_SPECS["study"]
    assert study == DatasetSpec(seed=0, train=240, val=120, imgsz=256, version=1)
    assert study.folder_name == "context-tokens-v1-seed0-240x120-256px"
    assert preset_spec("study", style="pretrain", seed=1, train=480).version == 1  # the fine-tune's source domain

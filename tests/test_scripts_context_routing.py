"""scripts/context_routing.py: the evidence share of routed regions, against uniform routing and the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import load_script

from ultralytics_biformer.cli.routes import LayerRoutes
from ultralytics_biformer.functional import region_grid


@pytest.fixture(scope="module")
def routing():
    return load_script("context_routing")


def layer(routes) -> LayerRoutes:
    """An 8x8 map at stride 4 (a 32 px image) in 2x2 regions of 16 px: 0 top-left, 1 top-right, 2, 3 below."""
    return LayerRoutes("model.16.bra.attn", 8, 8, 4.0, region_grid(8, 8, 2), np.asarray(routes))


def test_routed_share_is_the_evidence_in_the_regions_routed_from_the_tokens_region(routing):
    evidence = np.zeros((32, 32), dtype=bool)
    evidence[:, 16:] = True  # the right half: regions 1 and 3
    evidence[16:24, 16:] = False  # half of region 3 is clearing
    routes = [[1], [1], [2], [0]]  # region 0 -> 1 (all evidence), 2 -> itself (none)
    rows = routing.token_routing(layer(routes), evidence, np.array([[4.0, 4.0], [6.0, 20.0]]))
    uniform = (0 + 1 + 0 + 0.5) / 4
    np.testing.assert_allclose(rows, [[1.0, uniform, 1.0, 0.0], [0.0, uniform, 1.0, 1.0]])


def test_oracle_averages_the_topk_richest_regions(routing):
    evidence = np.zeros((32, 32), dtype=bool)
    evidence[:16, 16:] = True  # region 1 only
    evidence[16:, :8] = True  # half of region 2
    rows = routing.token_routing(layer([[1, 2], [0, 3], [0, 1], [1, 2]]), evidence, np.array([[20.0, 20.0]]))
    np.testing.assert_allclose(rows, [[0.75, 0.375, 0.75, 0.0]])  # region 3 routes to 1 and 2, the two richest


def test_a_study_without_weights_is_a_usage_error(routing, tmp_path, capsys):
    (tmp_path / "context-d8" / "records").mkdir(parents=True)
    with pytest.raises(SystemExit):
        routing.main(["--project", str(tmp_path)])
    assert "no finished run of yolo11n-biformer.yaml" in capsys.readouterr().err


def test_runs_are_found_in_a_moved_checkout_and_other_folders_are_ignored(routing, tmp_path):
    import json

    (tmp_path / "context-d24-rerun").mkdir()  # not a study folder
    (tmp_path / "context-d8.md").write_text("")
    records, weights = tmp_path / "context-d8" / "records", tmp_path / "context-d8" / "runs" / "b-seed0" / "weights"
    records.mkdir(parents=True)
    weights.mkdir(parents=True)
    (weights / "best.pt").write_bytes(b"")
    moved = {
        "seed": 0,
        "weights": "/elsewhere/context-d8/runs/b-seed0/weights/best.pt",
        "save_dir": "/elsewhere/b-seed0",
    }
    (records / "b-seed0.json").write_text(json.dumps(moved))
    (records / "b-seed1.json").write_text(
        json.dumps({"seed": 1, "weights": "/nowhere/best.pt", "save_dir": "/x/b-seed1"})
    )
    (records / "b-seed0.job.json").write_text("{}")
    found = [(d, seed, path) for d, seed, path, _ in routing.study_runs(tmp_path, "b.yaml")]
    assert found == [(8, 0, weights / "best.pt")]

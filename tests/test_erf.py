"""Tests of ``ultralytics_biformer.erf``: the effective receptive field, exact on models whose field is known. The
``erf`` command is in test_cli_erf.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ultralytics_biformer.erf import ReceptiveField, detection_levels, effective_receptive_field


def _convs(k: int, stride: int = 1) -> nn.Sequential:
    layers = [nn.Conv2d(1, 1, 3, stride=stride if i == 0 else 1, padding=1, bias=False) for i in range(k)]
    for layer in layers:
        nn.init.constant_(layer.weight, 1 / 9)  # a symmetric field, and no gradient cancels to zero by chance
    return nn.Sequential(*layers)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_a_stack_of_k_3x3_convolutions_reaches_exactly_k_pixels_each_way(k):
    size = 4 * k + 5  # odd, with room on every side
    field = effective_receptive_field(_convs(k), torch.rand(3, 1, size, size))[0]
    ys, xs = np.nonzero(field.grid)
    centre = size // 2
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (centre - k, centre + k, centre - k, centre + k)
    assert field.centre == pytest.approx((centre + 0.5, centre + 0.5))
    assert field.extent() == pytest.approx(k * 2**0.5)  # to the corner pixel of the square
    assert field.radius(1.0) == pytest.approx(k * 2**0.5) and 0 < field.radius(0.5) < k * 2**0.5


def test_radius_holds_the_asked_mass_of_a_known_field():
    grid = np.zeros((5, 5))
    grid[2, 2], grid[2, 3], grid[0, 2] = 0.5, 0.3, 0.2  # centre, 1 px right, 2 px up
    field = ReceptiveField("x", 1, grid, (2.5, 2.5))
    assert field.radius(0.5) == 0 and field.radius(0.8) == 1 and field.radius(0.81) == 2
    with pytest.raises(ValueError, match="mass must be in"):
        field.radius(0)


def test_a_deeper_stack_has_a_wider_field_and_a_stride_is_read_off():
    shallow, deep = (effective_receptive_field(_convs(k), torch.rand(2, 1, 33, 33))[0] for k in (2, 6))
    assert deep.radius(0.9) > shallow.radius(0.9)
    strided = effective_receptive_field(_convs(2, stride=2), torch.rand(1, 1, 32, 32))[0]
    assert strided.stride == 2


def test_detection_levels_of_ultralytics_models():
    from ultralytics import YOLO

    import ultralytics_biformer  # noqa: F401 - registers the biformer blocks

    for name in ("yolo11n.yaml", "yolo11n-biformer.yaml"):
        model = YOLO(name).model.eval()
        assert list(detection_levels(model)) == ["P3", "P4", "P5"]
        fields = effective_receptive_field(model, torch.rand(1, 3, 64, 64))
        assert [f.stride for f in fields] == [8, 16, 32]
        assert fields[0].radius(0.9) < fields[2].radius(0.9)
    with pytest.raises(ValueError, match="no multi-scale detection head"):
        detection_levels(_convs(1))

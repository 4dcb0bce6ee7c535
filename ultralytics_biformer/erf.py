"""The effective receptive field (Luo et al., NeurIPS 2016, arXiv 1701.04128) of a model's feature maps.

The effective receptive field of a feature map is the gradient of its centre position, summed over channels, with
respect to the input image: how much each input pixel moves that output. Luo et al. show it is far smaller than the
theoretical field, roughly Gaussian, and that training widens it. Here it is averaged over images (absolute values,
summed over colour channels) and summarised by the radii around the centre that hold 50% and 90% of its mass.

For an Ultralytics detection model the maps are the detection levels (the inputs of its head: P3, P4, P5); for any
other module, its output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["ReceptiveField", "detection_levels", "effective_receptive_field"]


@dataclass(frozen=True)
class ReceptiveField:
    """The effective receptive field of one feature map.

    Attributes:
        name (str): The map's name, e.g. ``P3``.
        stride (int): Input pixels per position of the map.
        grid (np.ndarray): ``(H, W)`` mean absolute input gradient of the map's centre position, summed over
            colour channels and normalised to sum to 1.
        centre (tuple[float, float]): The field's centroid ``(x, y)`` in input pixels, about which the radii are
            measured. Strided convolutions with padding centre a position's field up to half a stride away from
            the anchor point ``(j + 0.5) * stride`` the head predicts at, so the anchor would overstate the radii.
    """

    name: str
    stride: int
    grid: np.ndarray
    centre: tuple[float, float]

    def radius(self, mass: float) -> float:
        """The radius in pixels of the smallest disk about the centre holding ``mass`` (0-1] of the field."""
        if not 0 < mass <= 1:
            raise ValueError(f"mass must be in (0, 1], got {mass}")
        h, w = self.grid.shape
        ys, xs = np.mgrid[0:h, 0:w] + 0.5
        distance = np.hypot(xs - self.centre[0], ys - self.centre[1]).ravel()
        order = np.argsort(distance, kind="stable")
        held = np.cumsum(self.grid.ravel()[order])
        return float(distance[order][np.searchsorted(held, mass * held[-1] - 1e-12)])

    def extent(self) -> float:
        """The largest distance in pixels from the centre of any pixel that moves the centre output at all."""
        ys, xs = np.nonzero(self.grid)
        return float(np.hypot(xs + 0.5 - self.centre[0], ys + 0.5 - self.centre[1]).max()) if len(xs) else 0.0


def detection_levels(model: nn.Module) -> dict[str, nn.Module]:
    """The modules whose outputs feed an Ultralytics model's head, named ``P3``, ``P4``, ... by their stride.

    Raises:
        ValueError: ``model`` is not an Ultralytics model with a multi-scale head.
    """
    layers = getattr(model, "model", None)
    head = layers[-1] if isinstance(layers, nn.Sequential) and len(layers) else None
    sources = getattr(head, "f", None)
    strides = getattr(head, "stride", None)
    if not isinstance(sources, (list, tuple)) or strides is None or len(strides) != len(sources):
        raise ValueError(
            f"{type(model).__name__} has no multi-scale detection head (Ultralytics' Detect and its subclasses); "
            "pass the modules to measure explicitly"
        )
    return {f"P{int(np.log2(float(s)))}": layers[i] for i, s in zip(sources, strides)}


def effective_receptive_field(
    model: nn.Module,
    images: torch.Tensor,
    levels: dict[str, nn.Module] | None = None,
    strides: dict[str, int] | None = None,
) -> list[ReceptiveField]:
    """Measure the effective receptive field of each of ``levels`` over ``images``.

    Args:
        model (nn.Module): Called as ``model(images)``; put it in eval mode first to measure it as it infers.
        images (torch.Tensor): ``(B, C, H, W)`` inputs, e.g. letterboxed images scaled to [0, 1].
        levels (dict[str, nn.Module], optional): Named submodules whose outputs to measure; for an Ultralytics
            detection model, its detection levels when None, for any other module the module itself.
        strides (dict[str, int], optional): Stride of each level; read off the output sizes when None.

    Returns:
        (list[ReceptiveField]): One per level, in the order of ``levels``.

    Examples:
        >>> convs = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(2)])
        >>> _ = [nn.init.constant_(conv.weight, 1 / 9) for conv in convs]
        >>> field = effective_receptive_field(convs, torch.rand(1, 1, 9, 9))[0]
        >>> round(field.extent(), 3)  # two 3x3 convolutions reach 2 pixels each way: to (2, 2) from the centre
        2.828
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if levels is None:
        try:
            levels = detection_levels(model)
        except ValueError:
            levels = {"output": model}
    outputs: dict[str, torch.Tensor] = {}
    hooks = [
        module.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out))
        for name, module in levels.items()
    ]
    h, w = images.shape[-2:]
    grids = {name: torch.zeros(h, w, dtype=torch.float64) for name in levels}
    sizes = {}
    try:
        for image in images.split(1):
            x = image.detach().clone().requires_grad_(True)
            outputs.clear()
            model(x)
            names = list(levels)
            for name in names:  # one backward per level through the one forward, so each gradient is its own
                out = outputs[name][0] if isinstance(outputs[name], (list, tuple)) else outputs[name]
                sizes[name] = out.shape[-2:]
                cy, cx = out.shape[-2] // 2, out.shape[-1] // 2
                (gradient,) = torch.autograd.grad(out[:, :, cy, cx].sum(), x, retain_graph=name != names[-1])
                grids[name] += gradient.abs().sum((0, 1)).double()
    finally:
        for hook in hooks:
            hook.remove()
    fields = []
    for name in levels:
        oh, _ = sizes[name]
        stride = strides[name] if strides and name in strides else max(1, round(h / oh))
        total = float(grids[name].sum())
        if total == 0:
            raise ValueError(f"level {name}'s centre does not depend on the input at all (a zero gradient)")
        grid = (grids[name] / total).numpy()
        ys, xs = np.mgrid[0:h, 0:w] + 0.5
        fields.append(ReceptiveField(name, stride, grid, (float((grid * xs).sum()), float((grid * ys).sum()))))
    return fields

"""YOLO blocks built on bi-level routing attention: BRA, C2PSA_BRA and C3k2_BRA.

``C2PSA_BRA`` and ``C3k2_BRA`` are their stock Ultralytics twins plus routing, and keep every stock parameter name,
so stock checkpoints transfer into them completely. Each can also be made from an already built stock twin in place
(``from_stock``), which is how the model-YAML integration gives them exactly the stock layer bookkeeping.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn as nn
from ultralytics.nn.modules.block import C2PSA, C3k2, PSABlock
from ultralytics.nn.modules.conv import Conv

from ..functional import check_routing_args
from .attention import BiLevelRoutingAttention, _check_heads

__all__ = ["BRA", "C2PSA_BRA", "C3k2_BRA", "check_layer_scale"]


def check_layer_scale(layer_scale) -> None:
    """Raise a ValueError unless ``layer_scale`` is a real number in [0, 1]."""
    if not isinstance(layer_scale, numbers.Real) or isinstance(layer_scale, bool) or not 0 <= layer_scale <= 1:
        raise ValueError(f"layer_scale must be a number from 0 to 1, got {layer_scale!r}")


class BRA(nn.Module):
    """Channel-preserving BiFormer block: depthwise position conv, bi-level routing attention, then an MLP.

    ``x = x + pos(x); x = x + attn(x); x = x + mlp(x)``, as in a BiFormer block.

    Normalisation is BatchNorm inside each Ultralytics ``Conv`` rather than BiFormer's LayerNorm: ``model.fuse()``
    folds it into the preceding convolution, so at inference it costs nothing, needs no NCHW/NHWC permutes, and exports
    as plain convolutions to every format; LayerNorm could do none of that. The last BatchNorm of each residual branch
    starts at zero, so a freshly inserted block is the identity and a model that gains BRA blocks starts from the
    outputs of the pretrained stock model it was initialised from. ``layer_scale`` > 0 starts those BatchNorm weights
    at that value instead: BatchNorm's affine weight closing a residual branch is exactly a learnable per-channel layer
    scale (as in CaiT), so this is LayerScale at no cost, and it still folds away at ``fuse()``.

    Args:
        c (int): Input and output channels.
        n_win (int): Regions per axis for the attention.
        topk (int): Key regions each query region attends to.
        num_heads (int, optional): Attention heads; when None, YOLO11's ``max(c // 64, 1)``, lowered to the nearest
            divisor of ``c`` for widths it does not divide.
        mlp_ratio (float): MLP hidden width relative to ``c``; ``int(c * mlp_ratio)`` must be at least 1.
        layer_scale (float): Initial gain of each residual branch; 0 (default) makes a new block the identity.
        region_means (bool): The attention also attends to every region's mean key and value.

    Examples:
        >>> block = BRA(64, n_win=8, topk=4)
        >>> block(torch.randn(2, 64, 80, 80)).shape
        torch.Size([2, 64, 80, 80])
    """

    def __init__(
        self,
        c: int,
        n_win: int = 7,
        topk: int = 4,
        num_heads: int | None = None,
        mlp_ratio: float = 2.0,
        layer_scale: float = 0.0,
        region_means: bool = False,
    ):
        super().__init__()
        check_layer_scale(layer_scale)
        if num_heads is None:
            num_heads = next(h for h in range(max(c // 64, 1), 0, -1) if c % h == 0)
        hidden = int(c * mlp_ratio) if isinstance(mlp_ratio, numbers.Real) else 0
        if hidden < 1:
            raise ValueError(f"mlp_ratio must give an MLP at least 1 channel wide: int({c} * {mlp_ratio!r}) < 1")
        self.pos = Conv(c, c, 3, g=c, act=False)
        self.attn = BiLevelRoutingAttention(
            c, num_heads=num_heads, attn_ratio=0.5, n_win=n_win, topk=topk, region_means=region_means
        )
        self.mlp = nn.Sequential(Conv(c, hidden, 1), Conv(hidden, c, 1, act=False))
        for branch_end in (self.pos, self.attn.proj, self.mlp[-1]):
            nn.init.constant_(branch_end.bn.weight, layer_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Refine ``x`` of shape ``(B, c, H, W)``; the shape is preserved."""
        x = x + self.pos(x)
        x = x + self.attn(x)
        return x + self.mlp(x)


class C2PSA_BRA(C2PSA):
    """YOLO11's C2PSA with the global attention of every PSABlock replaced by bi-level routing attention.

    Parameters have exactly the names and shapes of ``C2PSA(c1, c2, n, e)``, so a stock C2PSA state dict loads
    strictly, and when ``topk`` covers every region the output equals stock C2PSA's: routing is the only change.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels; must equal c1, as for C2PSA.
        n (int): PSABlocks.
        e (float): Hidden-channel ratio.
        n_win (int): Regions per axis for the attention.
        topk (int): Key regions each query region attends to.
        region_means (bool): The attention also attends to every region's mean key and value.

    Examples:
        >>> m = C2PSA_BRA(256, 256, n=1, n_win=5, topk=4)
        >>> m(torch.randn(1, 256, 20, 20)).shape
        torch.Size([1, 256, 20, 20])
    """

    def __init__(
        self, c1: int, c2: int, n: int = 1, e: float = 0.5, *, n_win: int = 7, topk: int = 4, region_means: bool = False
    ):
        if c1 != c2:
            raise ValueError(f"C2PSA_BRA preserves channels: c1={c1} and c2={c2} must be equal")
        check_routing_args(n_win, topk, region_means)  # here, not per block: with n=0 there is no block to check them
        super().__init__(c1, c2, n, e)
        self._route_attention(n_win, topk, region_means)

    def _route_attention(self, n_win: int, topk: int, region_means: bool) -> None:
        """Turn every PSABlock's attention into routing attention, the arguments already checked."""
        for block in self.m:
            BiLevelRoutingAttention._from_attention(block.attn, n_win, topk, region_means)

    @classmethod
    def from_stock(cls, module: C2PSA, *, n_win: int, topk: int, region_means: bool = False) -> C2PSA_BRA:
        """Turn a built stock ``C2PSA`` into ``C2PSA_BRA`` in place; its parameters are kept as they are."""
        if type(module) is not C2PSA or not all(type(b) is PSABlock for b in module.m):
            raise TypeError(f"expected a stock C2PSA of PSABlocks, got {type(module).__name__}")
        check_routing_args(n_win, topk, region_means)
        for block in module.m:  # every check before the class changes: a refused call leaves the module stock
            _check_heads(block.attn.proj.conv.out_channels, block.attn.num_heads)
        module.__class__ = cls
        module._route_attention(n_win, topk, region_means)
        return module


class C3k2_BRA(C3k2):
    """YOLO11's C3k2 whose last inner branch is refined by a :class:`BRA` block, stored under the key ``bra``.

    The refinement sits where YOLO26's attention C3k2 puts its PSABlock: on the hidden-width branch that feeds
    ``cv2``, so the attention runs at half the output width, which costs less than a full-width BRA row in the same
    place (docs/results/README.md gives the measured latency of both). Every C3k2 parameter keeps its name (``cv1``,
    ``cv2``, ``m``), so a stock checkpoint's C3k2 tensors transfer, and since a new BRA block is the identity the layer
    starts out computing exactly what stock C3k2 does.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        n (int): Inner blocks.
        c3k (bool): Use C3k inner blocks.
        e (float): Hidden-channel ratio; the BRA block works on ``int(c2 * e)`` channels.
        attn (bool): Use attention inner blocks (YOLO26's last neck layer).
        g (int): Convolution groups.
        shortcut (bool): Residual connections in the inner blocks.
        n_win (int): Regions per axis for the BRA refinement.
        topk (int): Key regions each query region attends to.
        layer_scale (float): Initial gain of the BRA block's residual branches (see :class:`BRA`).
        region_means (bool): The BRA block's attention also attends to every region's mean key and value.

    Examples:
        >>> m = C3k2_BRA(128, 64, n=1, n_win=8, topk=4)
        >>> m(torch.randn(1, 128, 80, 80)).shape
        torch.Size([1, 64, 80, 80])
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        c3k: bool = False,
        e: float = 0.5,
        attn: bool = False,
        g: int = 1,
        shortcut: bool = True,
        *,
        n_win: int = 7,
        topk: int = 4,
        layer_scale: float = 0.0,
        region_means: bool = False,
    ):
        super().__init__(c1, c2, n, c3k, e, attn, g, shortcut)
        # its attention checks the routing arguments
        self.bra = BRA(self.c, n_win=n_win, topk=topk, layer_scale=layer_scale, region_means=region_means)

    @classmethod
    def from_stock(
        cls, module: C3k2, *, n_win: int, topk: int, layer_scale: float = 0.0, region_means: bool = False
    ) -> C3k2_BRA:
        """Turn a built stock ``C3k2`` into ``C3k2_BRA`` in place, adding the BRA refinement."""
        if type(module) is not C3k2:
            raise TypeError(f"expected a stock C3k2, got {type(module).__name__}")
        # raises before the module changes
        bra = BRA(module.c, n_win=n_win, topk=topk, layer_scale=layer_scale, region_means=region_means)
        like = next(module.parameters())
        module.__class__ = cls
        module.bra = bra.to(device=like.device, dtype=like.dtype).train(module.training)
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """C3k2's forward with the last inner branch refined by BRA before ``cv2`` fuses the branches."""
        return self._branches(list(self.cv1(x).chunk(2, 1)))

    def forward_split(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` with ``split()`` instead of ``chunk()``, as stock C3k2 offers for export."""
        return self._branches(list(self.cv1(x).split((self.c, self.c), 1)))

    def _branches(self, y: list[torch.Tensor]) -> torch.Tensor:
        y.extend(m(y[-1]) for m in self.m)
        y[-1] = self.bra(y[-1])
        return self.cv2(torch.cat(y, 1))

"""BiLevelRoutingAttention: YOLO11's ``Attention`` with its global attention replaced by bi-level routing."""

from __future__ import annotations

import torch
from ultralytics.nn.modules.block import Attention

from .._int_checks import is_positive_int
from ..functional import check_routing_args, routing_attention_heads

__all__ = ["BiLevelRoutingAttention"]


def _check_heads(dim: int, num_heads, attn_ratio: float = 0.5) -> None:
    """Raise a ValueError unless ``num_heads`` divides ``dim`` into heads whose key width ``attn_ratio`` keeps >= 1."""
    if not is_positive_int(num_heads):
        raise ValueError(f"num_heads must be a positive integer, got {num_heads!r}")
    if dim % num_heads:
        raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
    if int(dim // num_heads * attn_ratio) < 1:
        raise ValueError(
            f"dim={dim} over num_heads={num_heads} heads leaves key width int({dim // num_heads} * "
            f"attn_ratio={attn_ratio!r}) = 0; use fewer heads or a larger attn_ratio"
        )


class BiLevelRoutingAttention(Attention):
    """Multi-head bi-level routing attention with a depthwise local-context term, NCHW in and out.

    ``out = proj(BRA(q, k, v) + pe(v))`` where q, k, v come from one 1x1 projection, ``BRA`` is
    :func:`~ultralytics_biformer.functional.bilevel_routing_attention` and ``pe`` is a 3x3 depthwise conv on v, the
    paper's local context enhancement (LCE). Parameters, their names and the channel layout of ``qkv`` are exactly
    those of Ultralytics' ``Attention`` (the attention inside YOLO11's C2PSA), so its weights load unchanged; with
    ``topk`` at least the number of regions the output equals ``Attention``'s.

    Args:
        dim (int): Input and output channels.
        num_heads (int): Attention heads; ``dim`` must be divisible by it.
        attn_ratio (float): Key width relative to the head width (YOLO11 uses 0.5, so dk = dv / 2).
        n_win (int): Regions per axis (the paper's S); a map smaller than that uses fewer, see ``region_grid``.
        topk (int): Key regions each query region attends to.
        region_means (bool): Every query also attends to the mean key and value of every region (see
            :func:`~ultralytics_biformer.functional.bilevel_routing_attention`).

    Attributes:
        qkv (Conv): 1x1 projection to per-head ``[q, k, v]`` channel blocks.
        pe (Conv): 3x3 depthwise local context on v.
        proj (Conv): 1x1 output projection.

    Examples:
        >>> attn = BiLevelRoutingAttention(128, num_heads=2, n_win=7, topk=4)
        >>> attn(torch.randn(1, 128, 20, 20)).shape
        torch.Size([1, 128, 20, 20])
    """

    region_means = False  # the default of modules pickled before the option existed, which lack the attribute

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        attn_ratio: float = 0.5,
        *,
        n_win: int = 7,
        topk: int = 4,
        region_means: bool = False,
    ):
        _check_heads(dim, num_heads, attn_ratio)
        check_routing_args(n_win, topk, region_means)  # here, once: forward passes take them as checked
        super().__init__(dim, num_heads=num_heads, attn_ratio=attn_ratio)
        self.n_win, self.topk, self.region_means = n_win, topk, region_means

    @classmethod
    def from_attention(
        cls, attn: Attention, *, n_win: int, topk: int, region_means: bool = False
    ) -> BiLevelRoutingAttention:
        """Turn a stock ``Attention`` into routing attention in place, keeping its parameters and their names."""
        check_routing_args(n_win, topk, region_means)
        return cls._from_attention(attn, n_win, topk, region_means)

    @classmethod
    def _from_attention(cls, attn: Attention, n_win: int, topk: int, region_means: bool) -> BiLevelRoutingAttention:
        """:meth:`from_attention` for arguments its caller has checked."""
        if type(attn) is not Attention:
            raise TypeError(f"expected an ultralytics Attention, got {type(attn).__name__}")
        # Every check comes before the class changes, so a refused call leaves ``attn`` stock and working.
        _check_heads(attn.proj.conv.out_channels, attn.num_heads)  # stock Attention would fail only at run time
        attn.__class__ = cls  # adds no parameters or buffers, so the module is complete as it stands
        attn.n_win, attn.topk, attn.region_means = n_win, topk, region_means
        return attn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply routing attention to ``x`` of shape ``(B, dim, H, W)``."""
        B, C, H, W = x.shape
        widths = [self.key_dim, self.key_dim, self.head_dim]
        q, k, v = self.qkv(x).view(B, self.num_heads, sum(widths), H, W).split(widths, 2)  # not -1: B may be 0
        # Ultralytics' exporter sets ``format = "coreml"`` on every Attention, ours included, and its own Attention then
        # switches to scaled_dot_product_attention, which CoreML maps to its fused op: so do we. Same result either way.
        fused = True if getattr(self, "format", None) == "coreml" else None  # no `format` before ultralytics 8.4.x
        out = routing_attention_heads(q, k, v, self.n_win, self.topk, self.scale, fused, self.region_means)
        return self.proj(out + self.pe(v.reshape(B, C, H, W)))

    def extra_repr(self) -> str:
        means = ", region_means=True" if self.region_means else ""
        return f"num_heads={self.num_heads}, n_win={self.n_win}, topk={self.topk}{means}"

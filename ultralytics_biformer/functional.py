"""Bi-Level Routing Attention as a pure function (BiFormer, Zhu et al., CVPR 2023, arXiv 2303.08810).

The feature map is tiled into a grid of regions. Level one routes each query region to the ``topk`` key regions whose
mean key is most similar to its mean query; level two runs ordinary softmax attention from every query token to the
tokens of its routed regions only.

Differences from the reference implementation, each for a reason:

- Routed key/value regions are fetched with one ``index_select`` over a flat ``(batch*heads*regions)`` axis instead of
  ``torch.gather`` over tensors expanded to the key length: no expanded index tensor, and the backward is a single
  ``index_add``.
- Token attention runs through ``F.scaled_dot_product_attention``, so the ``tokens x routed-tokens`` score matrix is
  never materialised on backends with a fused kernel.
- Any ``H, W >= 1`` works: maps that do not divide into regions are zero-padded, and padded key positions are masked
  out so the result never depends on them.
- Region descriptors and routing scores are computed in float32 whatever the input dtype, autocast included, so
  fp16/bf16 inputs of large magnitude cannot overflow the routing, and AMP training routes as fp32 validation does.
- One code path serves eager calls and ``torch.jit.trace`` (every ONNX, TorchScript and OpenVINO export of
  Ultralytics traces). While tracing, sizes are traced 0-dim tensors instead of Python ints and the region grid is
  computed from them, so exported graphs stay exact at every input size; only the eager shortcuts that depend on a
  size are skipped (see the comment above :func:`routing_attention_heads`).
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ._int_checks import check_positive_int

__all__ = [
    "RegionGrid",
    "bilevel_routing_attention",
    "check_routing_args",
    "region_grid",
    "route_regions",
    "routing_attention_heads",
]


class RegionGrid(NamedTuple):
    """How a ``height x width`` map is tiled: ``rows x cols`` regions of ``region_h x region_w`` tokens.

    The last row and column of regions may be partly padding; every region holds at least one real token. While
    ``torch.jit.trace`` records the operator, the sizes are traced 0-dim int64 tensors, so that the grid is computed
    from each input's size in the exported graph.
    """

    height: int
    width: int
    rows: int
    cols: int
    region_h: int
    region_w: int

    @property
    def num_regions(self) -> int:
        return self.rows * self.cols

    @property
    def region_tokens(self) -> int:
        return self.region_h * self.region_w

    @property
    def padded(self) -> bool:
        return self.rows * self.region_h != self.height or self.cols * self.region_w != self.width


def _without_autocast(device_type: str):
    """Pause autocast on ``device_type``; a no-op for devices autocast does not know (``meta``), where it would raise."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def _low_precision(t: torch.Tensor) -> bool:
    """Whether a matmul of ``t`` runs in fp16 or bf16: its own dtype, or the dtype autocast would cast it to."""
    device = t.device.type
    if t.dtype in (torch.float16, torch.bfloat16):
        return True
    return (
        t.dtype == torch.float32
        and torch.amp.is_autocast_available(device)
        and torch.is_autocast_enabled(device)
        and torch.get_autocast_dtype(device) in (torch.float16, torch.bfloat16)
    )


def _at_most(n, cap: int):
    """``min(n, cap)`` for a size ``n`` that is a Python int, or a traced 0-dim tensor (which ``min`` would freeze)."""
    return n.clamp(max=cap) if isinstance(n, torch.Tensor) else min(n, cap)


def _ceil_div(a, b):
    """``ceil(a / b)`` for positive sizes, Python ints or traced tensors alike."""
    return (a + b - 1) // b


def _split_axis(length: int, n_win: int) -> tuple[int, int]:
    """Return ``(regions, region_length)`` for one axis: ``ceil(L / min(n_win, L))`` long regions, as few as cover L."""
    region_len = _ceil_div(length, _at_most(length, n_win))
    return _ceil_div(length, region_len), region_len


def region_grid(height: int, width: int, n_win: int) -> RegionGrid:
    """Tile a ``height x width`` map into at most ``n_win x n_win`` regions.

    Per axis of length L: ``r = min(n_win, L)`` regions are wanted, each ``s = ceil(L / r)`` tokens long, and
    ``ceil(L / s)`` regions are used, so that no region is pure padding. Region ``i`` covers ``[i*s, min((i+1)*s, L))``.

    Args:
        height (int): Map height, at least 1.
        width (int): Map width, at least 1.
        n_win (int): Regions wanted per axis, at least 1.

    Returns:
        (RegionGrid): The tiling.

    Examples:
        >>> region_grid(20, 20, 7)  # 20 = 6 regions of 3 + 1 region of 2
        RegionGrid(height=20, width=20, rows=7, cols=7, region_h=3, region_w=3)
        >>> region_grid(8, 8, 7)  # 8 = 4 regions of 2: fewer regions than asked, none of them padding only
        RegionGrid(height=8, width=8, rows=4, cols=4, region_h=2, region_w=2)
    """
    check_positive_int("n_win", n_win)
    return _region_grid(height, width, n_win)


def _region_grid(height: int, width: int, n_win: int) -> RegionGrid:
    """:func:`region_grid` for an ``n_win`` its caller has checked."""
    # Traced sizes are left unchecked: a comparison would freeze the example's answer into the graph.
    if not torch.jit.is_tracing() and (height < 1 or width < 1):
        raise ValueError(f"feature map must be at least 1x1, got {height}x{width}")
    rows, region_h = _split_axis(height, n_win)
    cols, region_w = _split_axis(width, n_win)
    return RegionGrid(height, width, rows, cols, region_h, region_w)


# The region partition below is written as reshape and permute with the grid's sizes rather than einops: einops reads
# every dimension of its input and multiplies them out again, which under tracing records that arithmetic in every
# exported graph (docs/design.md, "Export graphs", has the count). Each reshape carries its einops pattern in a comment.
#
# Each direction is two transposes of rank 5 at most rather than one of rank 7: channels move last (or back) as an image
# layout change, and regions are then reordered as whole rows of ``region_w * d`` contiguous values. Eager PyTorch
# copies either form as fast; ONNX Runtime's Transpose has fast paths only for the low-rank ones, which cut its layout
# time in the BRA layers to a fraction (benchmarks/latency_profile.md, before and after).


def _to_regions(x: torch.Tensor, grid: RegionGrid) -> torch.Tensor:
    """``(B, heads, d, H, W)`` -> ``(B, heads, regions, region_tokens, d)``, zero-padding the map to the grid."""
    heads, d = x.shape[1], x.shape[2]  # read before the pad, so a traced graph shares the reads with the caller's
    if torch.jit.is_tracing() or grid.padded:  # a traced graph pads at every size (by 0 where the grid fits)
        x = F.pad(x, (0, grid.cols * grid.region_w - grid.width, 0, grid.rows * grid.region_h - grid.height))
    # b h d y x -> (b h) y x d
    x = x.reshape(-1, d, grid.rows * grid.region_h, grid.cols * grid.region_w).permute(0, 2, 3, 1)
    # (b h) (nh sh) (nw sw) d -> b h (nh nw) (sh sw) d
    x = x.reshape(-1, grid.rows, grid.region_h, grid.cols, grid.region_w * d).transpose(2, 3)
    return x.reshape(-1, heads, grid.num_regions, grid.region_tokens, d)


def _from_regions(x: torch.Tensor, grid: RegionGrid) -> torch.Tensor:
    """Inverse of :func:`_to_regions`: ``(B, heads, regions, tokens, d)`` -> ``(B, heads*d, H, W)``."""
    heads, d = x.shape[1], x.shape[-1]
    # b h (nh nw) (sh sw) d -> (b h) (nh sh) (nw sw) d
    x = x.reshape(-1, grid.rows, grid.cols, grid.region_h, grid.region_w * d).transpose(2, 3)
    # (b h) y x d -> b (h d) y x
    x = x.reshape(-1, heads, grid.rows * grid.region_h, grid.cols * grid.region_w, d).permute(0, 1, 4, 2, 3)
    x = x.reshape(-1, heads * d, grid.rows * grid.region_h, grid.cols * grid.region_w)
    # The reshape is a no-op (a view of the crop); it states the output's shape as the input's (B, C, H, W), where the
    # crop alone leaves it as min(H, rows * region_h) in a traced graph: shape inference (onnxslim) cannot prove those
    # equal and would carry the expression, and the cost of reasoning about it, through every later layer.
    return x[..., : grid.height, : grid.width].reshape(-1, heads * d, grid.height, grid.width)


def _padding_mask(grid: RegionGrid, device: torch.device) -> torch.Tensor | None:
    """:func:`_real_token_mask` where the grid pads the map, or while tracing (a traced graph must hold at every size,
    padded ones included); None otherwise, for every slot is then real and neither routing nor attention needs it."""
    return _real_token_mask(grid, device) if torch.jit.is_tracing() or grid.padded else None


def _real_token_mask(grid: RegionGrid, device: torch.device) -> torch.Tensor:
    """Boolean ``(regions, region_tokens)`` mask, True where a region slot holds a real (unpadded) token."""
    ys = torch.arange(grid.rows * grid.region_h, device=device) < grid.height
    xs = torch.arange(grid.cols * grid.region_w, device=device) < grid.width
    real = (ys[:, None] & xs[None, :]).reshape(grid.rows, grid.region_h, grid.cols, grid.region_w)
    return real.transpose(1, 2).reshape(grid.num_regions, grid.region_tokens)  # (nh sh) (nw sw) -> (nh nw) (sh sw)


def _region_mean(t: torch.Tensor, grid: RegionGrid, real: torch.Tensor | None, dtype=None) -> torch.Tensor:
    """Mean over the real tokens of each region of a region-partitioned ``(B, heads, regions, tokens, d)`` tensor:
    ``(B, heads, regions, d)``, accumulated in ``dtype`` (t's own when None); ``real`` is the grid's
    :func:`_padding_mask`. Zero padding adds nothing to a sum, so dividing by the real-token count gives the mean."""
    counts = grid.region_tokens if real is None else real.sum(-1, keepdim=True)  # (R, 1) integers
    return t.sum(3, dtype=dtype) / counts


def route_regions(q: torch.Tensor, k: torch.Tensor, n_win: int, topk: int) -> torch.Tensor:
    """Level one: for each query region, the indices of its ``min(topk, regions)`` most related key regions.

    Region descriptors are the means of q and k over the real tokens of each region and over all channels, so every
    head shares one routing. The result is an index, not differentiable; gradients reach q and k through level two.

    Args:
        q (torch.Tensor): Queries ``(B, C, H, W)``.
        k (torch.Tensor): Keys ``(B, C, H, W)``.
        n_win (int): Regions per axis wanted.
        topk (int): Key regions kept per query region.

    Returns:
        (torch.Tensor): ``(B, regions, min(topk, regions))`` int64 key-region indices, best first.
    """
    if not torch.jit.is_tracing() and (q.dim() != 4 or k.shape != q.shape):  # traced sizes would freeze
        raise ValueError(f"q and k must share one shape (B, C, H, W), got q {tuple(q.shape)} and k {tuple(k.shape)}")
    check_routing_args(n_win, topk)
    grid = _region_grid(q.shape[-2], q.shape[-1], n_win)
    if not torch.jit.is_tracing() and q.shape[0] == 0:  # reshapes to -1 cannot infer a size from an empty batch
        return torch.empty(0, grid.num_regions, min(topk, grid.num_regions), dtype=torch.long, device=q.device)
    q, k = _to_regions(q.unsqueeze(1), grid), _to_regions(k.unsqueeze(1), grid)
    return _route(q, k, grid, _padding_mask(grid, q.device), topk, best_first=True)


def _route(
    q: torch.Tensor, k: torch.Tensor, grid: RegionGrid, real: torch.Tensor | None, topk: int, best_first: bool
) -> torch.Tensor:
    """Routing on region-partitioned ``(B, heads, regions, tokens, d)`` tensors, ``real`` being the grid's
    :func:`_padding_mask`; see :func:`route_regions`. Routes come best first only when ``best_first``: level two
    does not care about their order, and skipping the sort is cheaper."""
    # Autocast would run the affinity matmul in fp16, where it overflows to inf (every region then ties) or rounds
    # near-ties apart from the float32 routing of validation and export.
    with torch.no_grad(), _without_autocast(q.device.type):
        # b h r d -> b r (h d): one descriptor per region over all heads' channels
        q_region, k_region = (
            _region_mean(t, grid, real, torch.float32).transpose(1, 2).reshape(t.shape[0], grid.num_regions, -1)
            for t in (q, k)
        )
        affinity = q_region @ k_region.transpose(-1, -2)  # (B, R, R), the paper's A^r
        return affinity.topk(_at_most(grid.num_regions, topk), dim=-1, sorted=best_first).indices  # the paper's I^r


# Level two: token attention. ``_attend`` computes softmax(q k^T * scale) v either through PyTorch's fused kernel or
# explicitly; the three strategies below differ only in which keys each query region sees and how they are fetched.

# While all the scores of a call fit in cache (4 Mi floats, 16 MiB), the explicit matmul-softmax beats the fused CPU
# kernel, forward and backward; past that it turns memory-bound and the fused kernel wins (docs/design.md).
FUSED_MIN_SCORES = 1 << 22

# Without autograd, routed keys and values are gathered for this many bytes of query regions at a time.
GATHER_BLOCK_BYTES = 16 << 20


def _fused_is_faster(q: torch.Tensor, keys: int) -> bool:
    """Whether the fused kernel is the faster path for queries ``q`` of shape ``(..., queries, d)`` against ``keys``
    keys each: always on CUDA; on CPU once the scores would not fit in cache (``FUSED_MIN_SCORES``)."""
    return q.is_cuda or q.shape[:-1].numel() * keys >= FUSED_MIN_SCORES


def _attend(q, k, v, mask, scale, fused):
    """Softmax attention ``softmax(q k^T * scale) v`` over the last two dims of ``(..., tokens, dim)`` tensors.

    ``mask`` is boolean (True = may attend) and broadcasts against the scores; the fused path needs q, k and v of one
    width (see :func:`_fused_widths`). The explicit path takes no mask: its padding is masked in the keys beforehand
    (:func:`_scale_and_mask_keys`), which also scales q and leaves ``scale`` None.
    """
    assert fused or mask is None, "the explicit path masks padding in the keys, not in the scores"
    return _fused_attention(q, k, v, mask, scale) if fused else _explicit_attention(q, k, v, scale)


def _fused_attention(q, k, v, mask, scale):
    """:func:`_attend` through ``F.scaled_dot_product_attention``, which never materialises the scores where a fused
    kernel exists."""
    # CPU's fused kernel takes 4-D (batch, heads, tokens, dim) inputs only: other ranks silently fall back to the
    # unfused path, which materialises the scores.
    lead = q.shape[:-2]
    if mask is not None:
        mask = mask.expand(*lead, *mask.shape[-2:]).reshape(-1, 1, *mask.shape[-2:])
    q, k, v = (t.reshape(-1, 1, *t.shape[-2:]) for t in (q, k, v))
    if isinstance(scale, torch.Tensor):  # the default scale of a traced call, which SDPA's float argument would freeze
        q, scale = q * scale, 1.0
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return out.view(*lead, *out.shape[-2:])


def _explicit_attention(q, k, v, scale):
    """:func:`_attend` as matmul and softmax: plain MatMul/Softmax nodes in an exported graph."""
    q = q if scale is None else q * scale
    return (q @ k.transpose(-1, -2)).softmax(dim=-1) @ v


def _scale_and_mask_keys(q, k, mask, scale):
    """Scale q and mask padded keys through one extra channel of q and k, for the explicit path.

    q gains a channel of ones and k one of 0 at real tokens and the dtype's lowest value at padding, so every score is
    ``scale * q.k`` plus 0 or that lowest value: padded keys weigh exp(-huge) = 0 after softmax. The mask then rides
    along with k through the gather and costs one more column of the score matmul, where masking the scores costs a
    pass over every score: in an exported graph, a Where node over all of them, which every traced graph has since it
    must hold at padded sizes too. The fused path keeps a boolean mask: it may run in fp16, whose lowest value a large
    real score could reach.

    Args:
        q (torch.Tensor): Region-partitioned queries ``(B, heads, regions, tokens, dk)``; k alike.
        mask (torch.Tensor): The grid's ``(regions, tokens)`` real-token mask.
        scale (float | torch.Tensor): Score scale.

    Returns:
        (tuple): q and k with ``dk + 1`` channels, q scaled.
    """
    bias = (~mask).to(k.dtype) * torch.finfo(k.dtype).min  # (R, T): 0 where real (0 * lowest is -0.0, still 0)
    k = torch.cat([k, bias.unsqueeze(-1).expand(*k.shape[:-1], 1)], dim=-1)
    return F.pad(q * scale, (0, 1), value=1.0), k


def _fused_widths(q, k, v):
    """Zero-pad q and k, or v, to one head width, as fused kernels require; q.k and the first dv outputs are unchanged."""
    dk, dv = q.shape[-1], v.shape[-1]
    return _widen(q, dv - dk), _widen(k, dv - dk), _widen(v, dk - dv)


def _widen(t: torch.Tensor, n) -> torch.Tensor:
    """Zero-pad the last dim of ``t`` by ``n`` where ``n`` is positive.

    While tracing, ``n`` is a traced size, which a Python ``if`` would freeze: the graph pads by ``max(n, 0)``.
    """
    if isinstance(n, torch.Tensor):
        return F.pad(t, (0, n.clamp(min=0)))
    return F.pad(t, (0, n)) if n > 0 else t


def _global_attention(q, k, v, mask, lead, grid: RegionGrid, scale, fused, means=None) -> torch.Tensor:
    """Strategy for routing that keeps every region: every token attends to every token, nothing is gathered.

    When each query region routes to all regions, its routed keys are all keys, and softmax attention does not depend
    on the order of its keys; so the tokens attend in the region-major order the partition left them in, which is
    exactly global multi-head attention.

    Args:
        q (torch.Tensor): Region-partitioned queries ``(B, heads, regions, tokens, d)``; k and v alike.
        mask (torch.Tensor | None): The grid's ``(regions, tokens)`` real-token mask; None when every slot is real, or
            when the keys carry it (:func:`_scale_and_mask_keys`).
        lead (tuple): ``(B, heads)``, the sizes read from the head-split inputs.
        grid (RegionGrid): The partition's grid.
        scale (float | torch.Tensor): Score scale.
        fused (bool): Run :func:`_fused_attention`, else :func:`_explicit_attention`.
        means (tuple, optional): ``(B, heads, regions, d)`` region-mean keys and values, every query's extra keys.

    Returns:
        (torch.Tensor): ``(B, heads, regions, tokens, dv)``.
    """
    all_tokens = grid.num_regions * grid.region_tokens
    q, k, v = (t.reshape(*lead, all_tokens, -1) for t in (q, k, v))  # b h r t d -> b h (r t) d
    mask = None if mask is None else mask.reshape(1, 1, -1)
    if means is not None:
        k, v = (torch.cat([t, t_mean], dim=-2) for t, t_mean in zip((k, v), means))
        mask = None if mask is None else _also_attend(mask, grid.num_regions)
    mask = None if mask is None else mask.unsqueeze(0)
    return _attend(q, k, v, mask, scale, fused).reshape(*lead, grid.num_regions, grid.region_tokens, -1)


def _routed_attention(q, k, v, routes, mask, lead, grid: RegionGrid, scale, fused, means=None) -> torch.Tensor:
    """Strategy for routing that keeps some regions: every query region attends to the tokens of its routed regions,
    gathered for all query regions at once (the paper's ``K^g, V^g``).

    Autograd needs every gathered copy for the backward, and a traced graph cannot loop over a traced number of
    blocks, so both take this strategy; eager calls without autograd take :func:`_routed_attention_in_blocks`.

    Args:
        q (torch.Tensor): Region-partitioned queries ``(B, heads, regions, tokens, d)``; k and v alike.
        routes (torch.Tensor): ``(B, regions, K)`` key-region indices from :func:`_route`.
        mask (torch.Tensor | None): The grid's ``(regions, tokens)`` real-token mask; None when every slot is real, or
            when the keys carry it (:func:`_scale_and_mask_keys`).
        lead (tuple): ``(B, heads)``, the sizes read from the head-split inputs.
        grid (RegionGrid): The partition's grid.
        scale (float | torch.Tensor): Score scale.
        fused (bool): Run :func:`_fused_attention`, else :func:`_explicit_attention`.
        means (tuple, optional): As for :func:`_global_attention`.

    Returns:
        (torch.Tensor): ``(B, heads, regions, tokens, dv)``.
    """
    q, k, v, index, mask, means = _one_region_per_row(q, k, v, routes, mask, lead, grid, means)
    out = _attend_routed(q, k, v, index, mask, scale, fused, means)
    return out.reshape(*lead, grid.num_regions, grid.region_tokens, -1)


def _routed_attention_in_blocks(
    q, k, v, routes, mask, lead, grid: RegionGrid, scale, fused, means=None
) -> torch.Tensor:
    """:func:`_routed_attention` for one block of query regions at a time, for eager calls without autograd.

    Gathered keys and values are ``K`` times the size of k and v. Without autograd nothing needs a block's copies once
    its attention is done, so only one block's, about ``GATHER_BLOCK_BYTES``, exist at a time. Same arguments and
    result as :func:`_routed_attention`.
    """
    q, k, v, index, mask, means = _one_region_per_row(q, k, v, routes, mask, lead, grid, means)
    keys_per_row = index.shape[-1] * grid.region_tokens + (0 if means is None else grid.num_regions)
    rows_per_block = max(1, GATHER_BLOCK_BYTES // (keys_per_row * (k.shape[-1] + v.shape[-1]) * k.element_size()))
    blocks = [slice(i, i + rows_per_block) for i in range(0, len(q), rows_per_block)]
    outs = [
        _attend_routed(
            q[b],
            k,
            v,
            index[b],
            None if mask is None else mask[b],
            scale,
            fused,
            None if means is None else (means[0][b], means[1][b]),
        )
        for b in blocks
    ]
    out = outs[0] if len(outs) == 1 else torch.cat(outs)  # cat would copy a lone block
    return out.reshape(*lead, grid.num_regions, grid.region_tokens, -1)


def _one_region_per_row(q, k, v, routes, mask, lead, grid: RegionGrid, means=None):
    """Lay region-partitioned ``(B, heads, regions, tokens, d)`` tensors out as one region per row, and index each
    query row's routed rows of k and v.

    Returns:
        (tuple): q, k and v as ``(B*heads*regions, tokens, d)``; the ``(B*heads*regions, K)`` flat index of the routed
        rows; the ``(B*heads*regions, 1, keys)`` mask of the keys each row attends to, or None when ``mask`` is None;
        and ``means`` repeated for each query row as ``(B*heads*regions, regions, d)``, or None.
    """
    batch, heads = lead
    regions, tokens, n_routed = grid.num_regions, grid.region_tokens, routes.shape[-1]
    # Flat index into the (B*heads*R) axis of k and v: one index_select fetches every routed region for every head,
    # and its backward is a single index_add.
    head_offset = torch.arange(batch * heads, device=q.device).view(batch, heads, 1, 1) * regions
    index = (routes.unsqueeze(1) + head_offset).reshape(-1, n_routed)  # (B*heads*R, K)
    q, k, v = (t.reshape(batch * heads * regions, tokens, -1) for t in (q, k, v))
    if mask is not None:  # b r k t -> (b h r) 1 (k t): each row's routed tokens, alike for every head
        keys = n_routed * tokens  # not -1, which OpenVINO 2026.4 read as 1 in this reshape, failing the export
        mask = mask.index_select(0, routes.flatten()).reshape(batch, 1, regions, keys)
        mask = mask.expand(batch, heads, regions, keys).reshape(-1, 1, keys)
    if means is not None:  # b h r d -> (b h q) r d: every query region attends to the same region means
        means = tuple(t.unsqueeze(2).expand(-1, -1, regions, -1, -1).reshape(-1, regions, t.shape[-1]) for t in means)
        mask = None if mask is None else _also_attend(mask, regions)
    return q, k, v, index, mask, means


def _attend_routed(q, k, v, index, mask, scale, fused, means=None):
    """Attention of query rows ``q`` to the tokens of their routed rows ``index`` of k and v, and to ``means``, the
    region-mean keys and values laid out per row, where given."""
    k_g, v_g = _gather_rows(k, index), _gather_rows(v, index)  # the paper's K^g and V^g
    if means is not None:
        k_g, v_g = (torch.cat([t, t_mean], dim=1) for t, t_mean in zip((k_g, v_g), means))
    return _attend(q, k_g, v_g, mask, scale, fused)


def _also_attend(mask: torch.Tensor, n) -> torch.Tensor:
    """A key mask ``(..., keys)`` extended by ``n`` keys that every query may attend to (region means are real)."""
    return torch.cat([mask, mask.new_ones(*mask.shape[:-1], n)], dim=-1)


def _gather_rows(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Regions ``index`` (rows x K) of ``t`` (regions x T x d), concatenated per row: ``(rows, K*T, d)``.

    Whole regions are copied as rows of a 2-D view: that ``index_select`` is a plain row copy, cheaper than selecting
    regions of the 3-D tensor.
    """
    rows = t.flatten(1).index_select(0, index.flatten())
    return rows.view(index.shape[0], -1, t.shape[-1])


def _needs_grad(*tensors: torch.Tensor) -> bool:
    """Whether autograd records operations on any of ``tensors``."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def bilevel_routing_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    num_heads: int,
    n_win: int,
    topk: int,
    scale: float | None = None,
    fused: bool | None = None,
    region_means: bool = False,
) -> torch.Tensor:
    """Bi-Level Routing Attention over ``(B, C, H, W)`` maps.

    Each query token attends to every real token of the ``min(topk, regions)`` key regions routed to its region (see
    :func:`region_grid` for the tiling and :func:`route_regions` for the routing). Head ``h`` owns the ``h``-th
    contiguous block of channels of q, k and v. When ``topk`` covers every region this is exactly global multi-head
    attention.

    With ``region_means`` every query also attends, in the same softmax, to one extra key per region of the grid: the
    mean key of its real tokens, carrying their mean value. Routing reaches only the regions whose mean key matches the
    query region's, and is chosen without gradient; the region means give every query a coarse view of the whole map,
    routed or not, at a cost of ``regions`` keys per query.

    Args:
        q (torch.Tensor): Queries ``(B, num_heads*dk, H, W)``.
        k (torch.Tensor): Keys ``(B, num_heads*dk, H, W)``.
        v (torch.Tensor): Values ``(B, num_heads*dv, H, W)``; dv may differ from dk.
        num_heads (int): Attention heads.
        n_win (int): Regions wanted per axis (the paper's S).
        topk (int): Key regions each query region attends to (the paper's k).
        scale (float, optional): Score scale; ``dk ** -0.5`` when None.
        fused (bool, optional): True runs ``F.scaled_dot_product_attention``, False the explicit matmul-softmax path;
            None (default) picks the faster for the block size and device. Both give the same result (fp16 and bf16
            scores run in float32 on either path).
        region_means (bool): Also attend to the mean key and value of every region.

    Returns:
        (torch.Tensor): ``(B, num_heads*dv, H, W)``, the dtype and device of v.

    Examples:
        >>> q, k, v = torch.randn(2, 64, 20, 20), torch.randn(2, 64, 20, 20), torch.randn(2, 128, 20, 20)
        >>> bilevel_routing_attention(q, k, v, num_heads=2, n_win=7, topk=4).shape
        torch.Size([2, 128, 20, 20])
    """
    _check_inputs(q, k, v, num_heads, n_win, topk, region_means)
    q, k, v = (t.unflatten(1, (num_heads, -1)) for t in (q, k, v))
    return routing_attention_heads(q, k, v, n_win, topk, scale, fused, region_means)


# Export. Ultralytics exports ONNX (``dynamo=False``), TorchScript and OpenVINO by tracing. A tracer records tensor
# operations only: a Python int computed from a size is frozen at the example input's size, so a ``dynamic=True``
# export would tile every other input like the example and be silently wrong. While tracing, sizes read from ``.shape``
# are 0-dim tensors that the tracer follows, and the operator keeps them tensors end to end: the grid arithmetic
# (``_ceil_div``, ``_at_most``), reshapes and pads all take either, so the graph computes the grid for each input
# itself. What a tracer cannot follow is a Python branch on a size, so :func:`routing_attention_heads`, which alone
# makes the choices that depend on one, makes each while tracing the way that holds at every size: the real-token mask
# is always applied (it is all True where nothing is padded), the global strategy is taken only when
# ``topk >= n_win**2``, which covers every region at every size, routed keys are gathered in one block, the routes are
# sorted (ONNX leaves an unsorted TopK's order to each runtime), and ``fused=None`` means the explicit matmul-softmax
# path, which exports to plain MatMul and Softmax nodes that every runtime runs. Traced graphs equal the eager
# operator at every size (tests/test_functional.py and tests/test_modules.py check it).


def routing_attention_heads(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    n_win: int,
    topk: int,
    scale: float | None = None,
    fused: bool | None = None,
    region_means: bool = False,
) -> torch.Tensor:
    """:func:`bilevel_routing_attention` on head-split ``(B, heads, d, H, W)`` inputs, unchecked.

    Modules that produce q, k and v as slices of one projection call this directly, saving a copy of each; they check
    ``n_win`` and ``topk`` once, when they are built, rather than on every call. This function partitions the map into
    regions and then picks one of three strategies that compute the same attention:

    - :func:`_global_attention` when routing keeps every region: no routing and no gather.
    - :func:`_routed_attention`: the routed regions of all query regions gathered at once, as autograd and a traced
      graph need.
    - :func:`_routed_attention_in_blocks`: gathered for one block of query regions at a time, for eager calls without
      autograd, so that the gathered copies never all exist at once.

    Every choice that depends on a size is made here, and made for every size while tracing (see "Export" above).

    Args:
        q (torch.Tensor): Queries ``(B, heads, dk, H, W)``.
        k (torch.Tensor): Keys ``(B, heads, dk, H, W)``.
        v (torch.Tensor): Values ``(B, heads, dv, H, W)``.
        n_win (int): Regions wanted per axis, a positive integer.
        topk (int): Key regions each query region attends to, a positive integer.
        scale (float, optional): Score scale; ``dk ** -0.5`` when None.
        fused (bool, optional): As for :func:`bilevel_routing_attention`.
        region_means (bool): As for :func:`bilevel_routing_attention`.

    Returns:
        (torch.Tensor): ``(B, heads*dv, H, W)``.
    """
    tracing = torch.jit.is_tracing()  # sizes are then traced tensors, which no Python branch may depend on
    if not tracing and q.shape[0] == 0:  # reshapes to -1 cannot infer a size from an empty batch
        return v.flatten(1, 2).clone()
    # (B, heads) are read from the inputs, whose size reads a traced graph shares with the partition's; read from a
    # partitioned tensor instead they would add nodes to every exported graph.
    lead, dv = q.shape[:2], v.shape[2]
    grid = _region_grid(q.shape[-2], q.shape[-1], n_win)
    scale = q.shape[2] ** -0.5 if scale is None else scale
    q, k, v = (_to_regions(t, grid) for t in (q, k, v))  # (B, heads, R, T, d)
    mask = _padding_mask(grid, q.device)  # (R, T) or None
    every_region = topk >= n_win * n_win or (not tracing and topk >= grid.num_regions)
    routes = None if every_region else _route(q, k, grid, mask, topk, best_first=tracing)  # (B, R, K)
    if fused is None:
        fused = not tracing and _fused_is_faster(q, min(topk, grid.num_regions) * grid.region_tokens)
    if fused:
        q, k, v = _fused_widths(q, k, v)  # before any gather, which multiplies k and v by K
        means = _region_means(k, v, grid, mask) if region_means else None
        out = _level_two(q, k, v, routes, mask, lead, grid, scale, True, means)
    else:
        out = _explicit_level_two(q, k, v, routes, mask, lead, grid, scale, region_means)
    return _from_regions(out[..., :dv], grid)


def _region_means(k, v, grid: RegionGrid, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(B, heads, regions, d)`` mean keys and values over each region's real tokens, for ``region_means``.

    Summed in float32 at least: an fp16 sum of a region's tokens overflows long before their mean could."""
    return tuple(_region_mean(t, grid, mask, torch.promote_types(t.dtype, torch.float32)).to(t.dtype) for t in (k, v))


def _explicit_level_two(q, k, v, routes, mask, lead, grid: RegionGrid, scale, region_means) -> torch.Tensor:
    """:func:`_level_two` on the explicit path, padding masked in the keys (:func:`_scale_and_mask_keys`)."""
    if _low_precision(q):
        # fp16 scores overflow to inf, and softmax turns that into NaN, once |q.k| * scale passes 65504, which large
        # activations reach under AMP; bf16 scores keep 8 bits of mantissa, far coarser than the fused kernels, which
        # accumulate in float32. So level two runs in float32 for these dtypes, autocast paused (it would cast the
        # matmuls back), and the result takes the dtype the fused path would give.
        dtype = v.dtype if v.dtype != torch.float32 else torch.get_autocast_dtype(v.device.type)
        with _without_autocast(q.device.type):
            q, k, v = q.float(), k.float(), v.float()
            return _explicit_level_two(q, k, v, routes, mask, lead, grid, scale, region_means).to(dtype)
    means = _region_means(k, v, grid, mask) if region_means else None  # before the keys gain the mask channel
    if mask is not None:
        q, k = _scale_and_mask_keys(q, k, mask, scale)
        scale = None
        if means is not None:  # a mask channel of 0: region means are real keys
            means = (F.pad(means[0], (0, 1)), means[1])
    return _level_two(q, k, v, routes, None, lead, grid, scale, False, means)


def _level_two(q, k, v, routes, mask, lead, grid: RegionGrid, scale, fused, means=None) -> torch.Tensor:
    """Token attention of region-partitioned q, k and v by the strategy that suits the call: global when ``routes``
    is None (routing keeps every region), else routed, in blocks for eager calls without autograd. ``means`` are the
    region-mean keys and values every query also attends to, or None."""
    if routes is None:
        return _global_attention(q, k, v, mask, lead, grid, scale, fused, means)
    if torch.jit.is_tracing() or _needs_grad(q, k, v):
        return _routed_attention(q, k, v, routes, mask, lead, grid, scale, fused, means)
    return _routed_attention_in_blocks(q, k, v, routes, mask, lead, grid, scale, fused, means)


def _check_inputs(q, k, v, num_heads, n_win, topk, region_means):
    if q.dim() != 4 or k.shape != q.shape or v.dim() != 4 or v.shape[0] != q.shape[0] or v.shape[2:] != q.shape[2:]:
        raise ValueError(
            "q and k must share one shape (B, heads*dk, H, W) and v must be (B, heads*dv, H, W); "
            f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if len({q.dtype, k.dtype, v.dtype}) > 1 or len({q.device, k.device, v.device}) > 1:
        raise ValueError(
            "q, k and v must share one dtype and device; got "
            f"{', '.join(f'{n} {t.dtype} on {t.device}' for n, t in zip('qkv', (q, k, v)))}"
        )
    check_positive_int("num_heads", num_heads)
    if q.shape[1] % num_heads or v.shape[1] % num_heads:
        raise ValueError(
            f"channels of q ({q.shape[1]}) and v ({v.shape[1]}) must be divisible by num_heads={num_heads}"
        )
    check_routing_args(n_win, topk, region_means)


def check_routing_args(n_win, topk, region_means=False) -> None:
    """Raise a ValueError naming the argument unless ``n_win`` and ``topk`` are positive integers and
    ``region_means`` is True or False.

    The one check of the routing arguments, made where they enter: the public functions here and the construction or
    conversion of a module. Internal calls, every forward pass included, take them as checked.
    """
    check_positive_int("n_win", n_win)
    check_positive_int("topk", topk)
    if not isinstance(region_means, bool):
        raise ValueError(f"region_means must be True or False, got {region_means!r}")

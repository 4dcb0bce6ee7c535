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
- Region descriptors and routing scores are computed in float32 whatever the input dtype, so fp16/bf16 inputs of
  large magnitude cannot overflow the routing.
- While ``torch.jit.trace`` records the model (every ONNX, TorchScript and OpenVINO export of Ultralytics does) the
  grid is computed with tensor arithmetic instead of Python ints, so that exported graphs stay exact at every input
  size; see :func:`_traced_routing_attention`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange

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

    The last row and column of regions may be partly padding; every region holds at least one real token.
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


def _split_axis(length: int, n_win: int) -> tuple[int, int]:
    """Return ``(regions, region_length)`` for one axis: ``ceil(L / min(n_win, L))`` long regions, as few as cover L."""
    region_len = math.ceil(length / min(n_win, length))
    return math.ceil(length / region_len), region_len


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
    if height < 1 or width < 1:
        raise ValueError(f"feature map must be at least 1x1, got {height}x{width}")
    if n_win < 1:
        raise ValueError(f"n_win must be a positive integer, got {n_win}")
    rows, region_h = _split_axis(height, n_win)
    cols, region_w = _split_axis(width, n_win)
    return RegionGrid(height, width, rows, cols, region_h, region_w)


def _to_regions(x: torch.Tensor, grid: RegionGrid) -> torch.Tensor:
    """``(B, heads, d, H, W)`` -> ``(B, heads, regions, region_tokens, d)``, zero-padding the map to the grid."""
    pad_h, pad_w = grid.rows * grid.region_h - grid.height, grid.cols * grid.region_w - grid.width
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return rearrange(x, "b h d (nh sh) (nw sw) -> b h (nh nw) (sh sw) d", sh=grid.region_h, sw=grid.region_w)


def _from_regions(x: torch.Tensor, grid: RegionGrid) -> torch.Tensor:
    """Inverse of :func:`_to_regions`: ``(B, heads, regions, tokens, d)`` -> ``(B, heads*d, H, W)``."""
    x = rearrange(x, "b h (nh nw) (sh sw) d -> b (h d) (nh sh) (nw sw)", nh=grid.rows, sh=grid.region_h)
    return x[..., : grid.height, : grid.width]


def _real_token_mask(grid: RegionGrid, device: torch.device) -> torch.Tensor:
    """Boolean ``(regions, region_tokens)`` mask, True where a region slot holds a real (unpadded) token."""
    ys = torch.arange(grid.rows * grid.region_h, device=device) < grid.height
    xs = torch.arange(grid.cols * grid.region_w, device=device) < grid.width
    return rearrange(ys[:, None] & xs[None, :], "(nh sh) (nw sw) -> (nh nw) (sh sw)", sh=grid.region_h, sw=grid.region_w)


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
    grid = region_grid(q.shape[-2], q.shape[-1], n_win)
    return _route(_to_regions(q.unsqueeze(1), grid), _to_regions(k.unsqueeze(1), grid), grid, topk)


def _route(q: torch.Tensor, k: torch.Tensor, grid: RegionGrid, topk: int) -> torch.Tensor:
    """Routing on region-partitioned ``(B, heads, regions, tokens, d)`` tensors; see :func:`route_regions`."""
    with torch.no_grad():
        # Zero padding adds nothing to a sum, so dividing by the real-token count gives the mean over real tokens.
        counts = _real_token_mask(grid, q.device).sum(-1, keepdim=True).float()  # (R, 1)
        q_region = rearrange(q.sum(3, dtype=torch.float32), "b h r d -> b r (h d)") / counts
        k_region = rearrange(k.sum(3, dtype=torch.float32), "b h r d -> b r (h d)") / counts
        affinity = q_region @ k_region.transpose(-1, -2)  # (B, R, R)
        return affinity.topk(min(topk, grid.num_regions), dim=-1, sorted=False).indices


# While all the scores of a call fit in cache (4 Mi floats, 16 MiB), the explicit matmul-softmax beats the fused CPU
# kernel, forward and backward; past that it turns memory-bound and the fused kernel wins by up to 5x (measured on a
# 2-core x86 CPU, torch 2.14).
FUSED_MIN_SCORES = 1 << 22

# Without autograd, routed keys and values are gathered for this many bytes of query regions at a time.
GATHER_BLOCK_BYTES = 16 << 20


def _attend(q, k, v, mask, scale, fused):
    """Softmax attention over the last two dims of ``(..., tokens, dim)`` tensors.

    ``mask`` is boolean (True = may attend) and broadcasts against the scores. The fused path needs q, k and v of one
    width (see ``_fused_widths``).
    """
    if not fused:
        if q.dtype == torch.float16:
            # fp16 scores overflow to inf, and softmax turns that into NaN, once |q.k| * scale passes 65504, which large
            # activations reach under AMP. Scores and softmax run in float32 for this dtype only (the fused kernels
            # accumulate in float32 already); autocast is paused, or it would cast the matmuls back to fp16.
            with torch.autocast(q.device.type, enabled=False):
                return _attend(q.float(), k.float(), v.float(), mask, scale, False).to(v.dtype)
        scores = (q * scale) @ k.transpose(-1, -2)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return scores.softmax(dim=-1) @ v
    # CPU's fused kernel takes 4-D (batch, heads, tokens, dim) inputs only: other ranks silently fall back to the
    # unfused path, which materialises the scores.
    lead = q.shape[:-2]
    if mask is not None:
        mask = mask.expand(*lead, *mask.shape[-2:]).reshape(-1, 1, *mask.shape[-2:])
    q, k, v = (t.reshape(-1, 1, *t.shape[-2:]) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return out.view(*lead, *out.shape[-2:])


def _gather_rows(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Regions ``index`` (rows x K) of ``t`` (regions x T x d), concatenated per row: ``(rows, K*T, d)``.

    Whole regions are copied as rows of a 2-D view: that ``index_select`` is a plain row copy, twice as fast as 3-D.
    """
    rows = t.reshape(len(t), -1).index_select(0, index.reshape(-1))
    return rows.view(len(index), -1, t.shape[-1])


def _fused_widths(q, k, v):
    """Zero-pad q and k, or v, to one head width, as fused kernels require; q.k and the first dv outputs are unchanged."""
    dk, dv = q.shape[-1], v.shape[-1]
    if dk < dv:
        q, k = F.pad(q, (0, dv - dk)), F.pad(k, (0, dv - dk))
    elif dv < dk:
        v = F.pad(v, (0, dk - dv))
    return q, k, v


def bilevel_routing_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    num_heads: int,
    n_win: int,
    topk: int,
    scale: float | None = None,
    fused: bool | None = None,
) -> torch.Tensor:
    """Bi-Level Routing Attention over ``(B, C, H, W)`` maps.

    Each query token attends to every real token of the ``min(topk, regions)`` key regions routed to its region (see
    :func:`region_grid` for the tiling and :func:`route_regions` for the routing). Head ``h`` owns the ``h``-th
    contiguous block of channels of q, k and v. When ``topk`` covers every region this is exactly global multi-head
    attention.

    Args:
        q (torch.Tensor): Queries ``(B, num_heads*dk, H, W)``.
        k (torch.Tensor): Keys ``(B, num_heads*dk, H, W)``.
        v (torch.Tensor): Values ``(B, num_heads*dv, H, W)``; dv may differ from dk.
        num_heads (int): Attention heads.
        n_win (int): Regions wanted per axis (the paper's S).
        topk (int): Key regions each query region attends to (the paper's k).
        scale (float, optional): Score scale; ``dk ** -0.5`` when None.
        fused (bool, optional): True runs ``F.scaled_dot_product_attention``, False the explicit matmul-softmax path;
            None (default) picks the faster for the block size and device. Both give the same result.

    Returns:
        (torch.Tensor): ``(B, num_heads*dv, H, W)``, the dtype and device of v.

    Examples:
        >>> q, k, v = torch.randn(2, 64, 20, 20), torch.randn(2, 64, 20, 20), torch.randn(2, 128, 20, 20)
        >>> bilevel_routing_attention(q, k, v, num_heads=2, n_win=7, topk=4).shape
        torch.Size([2, 128, 20, 20])
    """
    _check_inputs(q, k, v, num_heads, n_win, topk)
    q, k, v = (t.unflatten(1, (num_heads, -1)) for t in (q, k, v))
    return routing_attention_heads(q, k, v, n_win, topk, scale, fused)


def routing_attention_heads(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    n_win: int,
    topk: int,
    scale: float | None = None,
    fused: bool | None = None,
) -> torch.Tensor:
    """:func:`bilevel_routing_attention` on head-split ``(B, heads, d, H, W)`` inputs, unchecked.

    Modules that produce q, k and v as slices of one projection call this directly, saving a copy of each.

    Returns:
        (torch.Tensor): ``(B, heads*dv, H, W)``.
    """
    if torch.jit.is_tracing():  # an exporter is recording the graph: Python ints would freeze in it
        return _traced_routing_attention(q, k, v, n_win, topk, scale, fused)
    batch, num_heads, dv = q.shape[0], q.shape[1], v.shape[2]
    grid = region_grid(q.shape[-2], q.shape[-1], n_win)
    scale = q.shape[2] ** -0.5 if scale is None else scale
    q, k, v = (_to_regions(t, grid) for t in (q, k, v))  # (B, heads, R, T, d)
    regions, tokens = grid.num_regions, grid.region_tokens
    real = _real_token_mask(grid, q.device) if grid.padded else None  # (R, T)
    routes = _route(q, k, grid, topk)  # (B, R, K)
    n_routed = routes.shape[-1]
    if fused is None:
        fused = q.is_cuda or q.shape[:3].numel() * tokens * n_routed * tokens >= FUSED_MIN_SCORES
    if fused:
        q, k, v = _fused_widths(q, k, v)  # before the gather, which multiplies k and v by K

    if n_routed == regions:
        # Every region is routed to every region: the order of keys cannot matter, so skip the gather and run one
        # global attention over all tokens (region-major order on both sides).
        q, k, v = (rearrange(t, "b h r t d -> b h (r t) d") for t in (q, k, v))
        mask = None if real is None else real.reshape(1, 1, 1, regions * tokens)
        out = _attend(q, k, v, mask, scale, fused).view(batch, num_heads, regions, tokens, -1)
    else:
        # Flat index into the (B*heads*R) axis of the region-partitioned k and v: one index_select fetches every
        # routed region for every head, and its backward is a single index_add.
        head_offset = torch.arange(batch * num_heads, device=q.device).view(batch, num_heads, 1, 1) * regions
        flat = (routes.unsqueeze(1) + head_offset).reshape(-1, n_routed)  # (B*heads*R, K)
        q, k, v = (t.reshape(batch * num_heads * regions, tokens, -1) for t in (q, k, v))  # one row per region
        mask = None
        if real is not None:
            mask = real.index_select(0, routes.reshape(-1)).view(batch, 1, regions, n_routed * tokens)
            mask = mask.expand(batch, num_heads, regions, -1).reshape(-1, 1, n_routed * tokens)
        # Without autograd nothing needs the gathered copies afterwards, so query regions are processed in blocks
        # and only one block's routed keys and values exist at a time; with autograd the backward needs them all.
        rows_per_block = len(q)
        if not torch.is_grad_enabled() or not (q.requires_grad or k.requires_grad or v.requires_grad):
            bytes_per_row = n_routed * tokens * (k.shape[-1] + v.shape[-1]) * k.element_size()
            rows_per_block = max(1, GATHER_BLOCK_BYTES // bytes_per_row)
        out = torch.cat(
            [
                _attend(
                    q[i : i + rows_per_block],
                    _gather_rows(k, flat[i : i + rows_per_block]),
                    _gather_rows(v, flat[i : i + rows_per_block]),
                    None if mask is None else mask[i : i + rows_per_block],
                    scale,
                    fused,
                )
                for i in range(0, len(q), rows_per_block)
            ]
        ).view(batch, num_heads, regions, tokens, -1)
    return _from_regions(out[..., :dv], grid)


# Export path. Ultralytics exports ONNX (``dynamo=False``), TorchScript and OpenVINO by tracing. A tracer records
# tensor operations only: the Python ints of ``region_grid``, the ``padded`` and ``n_routed == regions`` branches and
# einops' reshapes above would be frozen at the example input's size, so a ``dynamic=True`` export would tile every
# other input like the example and be silently wrong. While tracing, sizes read from ``.shape`` are 0-dim tensors that
# the tracer follows; this path keeps them tensors end to end, so the graph computes the grid for each input itself.
# It is the eager path's arithmetic, minus its size-dependent shortcuts: the real-token mask is always applied (it is
# all True where nothing is padded), ``min(topk, regions)`` is a graph value, and the global shortcut is taken only
# when ``topk >= n_win**2``, which covers every region at every size. Outputs equal the eager path's (tests check it).


def _size(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``t.shape[dim]`` as a 0-dim int64 tensor: traced while tracing, a constant otherwise."""
    n = t.shape[dim]
    return n if isinstance(n, torch.Tensor) else torch.tensor(n)


def _traced_split(length: torch.Tensor, n_win: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_split_axis` in tensor arithmetic; ``ceil(a / b)`` is ``(a + b - 1) // b`` for positive ints."""
    wanted = length.clamp(max=n_win)
    region_len = (length + wanted - 1) // wanted
    return (length + region_len - 1) // region_len, region_len


def _traced_routing_attention(q, k, v, n_win, topk, scale=None, fused=None):
    """:func:`routing_attention_heads` with every size a traced tensor; same inputs, same result.

    ``fused=None`` means the explicit matmul-softmax path here: it exports to plain MatMul/Where/Softmax nodes that every
    runtime runs, whatever the example size.
    """
    batch, num_heads, height, width = _size(q, 0), _size(q, 1), _size(q, 3), _size(q, 4)
    rows, region_h = _traced_split(height, n_win)
    cols, region_w = _traced_split(width, n_win)
    regions, tokens = rows * cols, region_h * region_w
    scale = q.shape[2] ** -0.5 if scale is None else scale
    dv = _size(v, 2)

    def to_regions(t):  # (B, heads, d, H, W) -> (B, heads, R, T, d), zero-padded to the grid
        t = F.pad(t, (0, cols * region_w - width, 0, rows * region_h - height))
        t = t.reshape(batch, num_heads, -1, rows, region_h, cols, region_w).permute(0, 1, 3, 5, 4, 6, 2)
        return t.reshape(batch, num_heads, regions, tokens, -1)

    q, k, v = to_regions(q), to_regions(k), to_regions(v)
    ys = torch.arange(rows * region_h, device=q.device) < height
    xs = torch.arange(cols * region_w, device=q.device) < width
    real = (ys[:, None] & xs[None, :]).reshape(rows, region_h, cols, region_w).transpose(1, 2).reshape(regions, tokens)

    with torch.no_grad():  # _route, with the region mean over the real tokens counted by the mask
        counts = real.sum(-1, keepdim=True).float()
        q_region = q.sum(3, dtype=torch.float32).transpose(1, 2).reshape(batch, regions, -1) / counts
        k_region = k.sum(3, dtype=torch.float32).transpose(1, 2).reshape(batch, regions, -1) / counts
        affinity = q_region @ k_region.transpose(-1, -2)
        routes = affinity.topk(regions.clamp(max=topk), dim=-1).indices  # (B, R, K)

    if fused:  # _fused_widths without a Python branch: a pad of 0 is a no-op
        dk = _size(q, 4)
        q, k = (F.pad(t, (0, (dv - dk).clamp(min=0))) for t in (q, k))
        v = F.pad(v, (0, (dk - dv).clamp(min=0)))
    if topk >= n_win * n_win:  # every region is routed to every region at every size: one global attention
        q, k, v = (t.reshape(batch, num_heads, regions * tokens, -1) for t in (q, k, v))
        out = _attend(q, k, v, real.reshape(1, 1, 1, -1), scale, fused).reshape(batch, num_heads, regions, tokens, -1)
    else:
        n_routed = _size(routes, 2)
        head_offset = torch.arange(batch * num_heads, device=q.device).view(batch, num_heads, 1, 1) * regions
        flat = (routes.unsqueeze(1) + head_offset).reshape(-1)

        def gather(t):
            t = t.reshape(batch * num_heads * regions, -1).index_select(0, flat)
            return t.reshape(batch, num_heads, regions, n_routed * tokens, -1)

        mask = real.index_select(0, routes.reshape(-1)).reshape(batch, 1, regions, 1, n_routed * tokens)
        out = _attend(q, gather(k), gather(v), mask, scale, fused)
    out = out[..., :dv].reshape(batch, num_heads, rows, cols, region_h, region_w, dv)
    out = out.permute(0, 1, 6, 2, 4, 3, 5).reshape(batch, num_heads * dv, rows * region_h, cols * region_w)
    # The reshape is a no-op on the values; it states the output's shape as (B, C, H, W) of the input, where the slice
    # alone leaves it as min(H, rows * region_h): shape inference (onnxslim) cannot prove those equal and would
    # carry the expression, and the cost of reasoning about it, through every later layer.
    return out[..., :height, :width].reshape(batch, -1, height, width)


def _check_inputs(q, k, v, num_heads, n_win, topk):
    if q.dim() != 4 or k.shape != q.shape or v.dim() != 4 or v.shape[0] != q.shape[0] or v.shape[2:] != q.shape[2:]:
        raise ValueError(
            "q and k must share one shape (B, heads*dk, H, W) and v must be (B, heads*dv, H, W); "
            f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if not isinstance(num_heads, int) or isinstance(num_heads, bool) or num_heads < 1:
        raise ValueError(f"num_heads must be a positive integer, got {num_heads!r}")
    if q.shape[1] % num_heads or v.shape[1] % num_heads:
        raise ValueError(f"channels of q ({q.shape[1]}) and v ({v.shape[1]}) must be divisible by num_heads={num_heads}")
    check_routing_args(n_win, topk)


def check_routing_args(n_win, topk) -> None:
    """Raise a ValueError naming ``n_win`` or ``topk`` unless both are positive integers."""
    for name, value in (("n_win", n_win), ("topk", topk)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

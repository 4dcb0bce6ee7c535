"""Tests of ``ultralytics_biformer.functional``: the bi-level routing attention operator against an independent dense
reference, in low precision, and traced for export at one size then run at others.

The reference in this file shares no code with :mod:`ultralytics_biformer.functional`: it derives the region tiling from
the documented rule, routes with region means over real tokens, and runs full softmax attention over all ``H*W`` tokens
under a boolean mask that keeps only the tokens of each query's routed regions.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from helpers import LARGE

from ultralytics_biformer import functional as Fn
from ultralytics_biformer.functional import (
    bilevel_routing_attention,
    region_grid,
    route_regions,
    routing_attention_heads,
)

FUSED = (True, False, None)  # None lets the operator pick; all three must agree with the reference
GIB = 2**30

# (batch, heads, dk, dv, H, W, n_win, topk)
SHAPES = [
    pytest.param(2, 2, 4, 6, 5, 13, 4, 3, id="non-square-padded-dk<dv"),
    pytest.param(2, 3, 2, 5, 3, 40, 7, 5, id="3x40-H<n_win"),
    pytest.param(1, 1, 3, 3, 1, 1, 7, 4, id="1x1"),
    pytest.param(1, 2, 4, 4, 17, 9, 8, 4, id="odd-padded"),
    pytest.param(3, 1, 8, 4, 7, 7, 7, 1, id="one-token-regions-topk1-dk>dv"),
    pytest.param(2, 2, 4, 4, 20, 20, 7, 4, id="20x20-n_win7"),
    pytest.param(1, 2, 4, 8, 16, 16, 4, 20, id="topk>regions"),
    pytest.param(1, 2, 4, 8, 6, 6, 3, 9, id="topk==regions"),
    pytest.param(2, 1, 4, 4, 10, 7, 3, 9, id="topk==regions-padded"),
    pytest.param(2, 2, 4, 4, 24, 24, 2, 2, id="large-regions"),
]


def axis_spans(length: int, n_win: int) -> list[tuple[int, int]]:
    """Token spans ``[start, stop)`` of the regions along one axis, from the documented rule.

    ``r = min(n_win, L)`` regions are wanted, each ``s = ceil(L / r)`` long; region ``i`` covers
    ``[i*s, min((i+1)*s, L))`` and there are as many as start inside the axis.
    """
    wanted = min(n_win, length)
    size = -(-length // wanted)
    return [(start, min(start + size, length)) for start in range(0, length, size)]


def region_labels(height: int, width: int, n_win: int) -> tuple[torch.Tensor, int]:
    """Region index of every token of a ``height x width`` map (row-major regions), and the number of regions."""
    rows, cols = axis_spans(height, n_win), axis_spans(width, n_win)
    labels = torch.empty(height, width, dtype=torch.long)
    for i, (y0, y1) in enumerate(rows):
        for j, (x0, x1) in enumerate(cols):
            labels[y0:y1, x0:x1] = i * len(cols) + j
    return labels.flatten(), len(rows) * len(cols)


def reference_affinity(q: torch.Tensor, k: torch.Tensor, n_win: int) -> torch.Tensor:
    """Float64 ``(B, R, R)`` routing scores: mean query of each region dot mean key of each region, all channels."""
    labels, regions = region_labels(q.shape[-2], q.shape[-1], n_win)
    members = F.one_hot(labels, regions).double()  # (N, R)
    q_mean, k_mean = ((t.double().flatten(2) @ members) / members.sum(0) for t in (q, k))  # (B, C, R)
    return q_mean.transpose(1, 2) @ k_mean


def reference_routes(q: torch.Tensor, k: torch.Tensor, n_win: int, topk: int) -> torch.Tensor:
    """``(B, R, min(topk, R))`` indices of the best key regions per query region, sorted ascending (as a set)."""
    affinity = reference_affinity(q, k, n_win)
    return affinity.topk(min(topk, affinity.shape[-1]), dim=-1).indices.sort(dim=-1).values


def routing_margin(q: torch.Tensor, k: torch.Tensor, n_win: int, topk: int) -> float:
    """Smallest gap between the last kept and the first dropped routing score, relative to the largest score.

    Float32 and float64 routing agree whenever this is well above float32 rounding; 1.0 when nothing is dropped.
    """
    affinity = reference_affinity(q, k, n_win)
    if topk >= affinity.shape[-1]:
        return 1.0
    ranked = affinity.sort(dim=-1, descending=True).values
    return ((ranked[..., topk - 1] - ranked[..., topk]).min() / affinity.abs().max()).item()


def with_clear_routing(draw, n_win: int, topk: int):
    """Call ``draw(generator)`` with seeds 0, 1, ... until the ``(q, k, v)`` it returns has no near-tie in its routing,
    so that any correct routing, in any precision, picks the same regions."""
    for seed in range(50):
        q, k, v = draw(torch.Generator().manual_seed(seed))
        if routing_margin(q, k, n_win, topk) > 1e-4:
            return q, k, v
    raise RuntimeError("no input with a clear routing margin found")


def routed_inputs(batch, heads, dk, dv, height, width, n_win, topk, dtype=torch.float64, magnitude=1.0, offset=0.0):
    """Random ``q, k, v`` with a clear routing (see :func:`with_clear_routing`).

    Values are drawn in float64 as ``magnitude * N(0, 1)``, plus ``offset`` for q and k, then cast to ``dtype``.

    Args:
        magnitude (float): Scale of all three tensors.
        offset (float): Added to q and k; a nonzero mean makes region sums depend strongly on token counts.
    """

    def draw(gen):
        def normal(channels, shift):
            return magnitude * torch.randn(batch, channels, height, width, generator=gen, dtype=torch.float64) + shift

        return tuple(normal(heads * d, shift).to(dtype) for d, shift in ((dk, offset), (dk, offset), (dv, 0.0)))

    return with_clear_routing(draw, n_win, topk)


def dense_reference(q, k, v, num_heads, n_win, topk, scale=None, region_means=False):
    """Masked global multi-head attention: each query sees exactly the tokens of its region's routed key regions, and
    with ``region_means`` also one key per region, the mean of its tokens' keys, carrying the mean of their values."""
    batch, _, height, width = q.shape
    labels, regions = region_labels(height, width, n_win)
    allowed = torch.zeros(batch, regions, regions, dtype=torch.bool)
    allowed.scatter_(-1, reference_routes(q, k, n_win, topk), True)
    mask = allowed[:, labels][:, :, labels]  # (B, N query tokens, N key tokens)
    q, k, v = (t.unflatten(1, (num_heads, -1)).flatten(3).transpose(-1, -2) for t in (q, k, v))  # (B, h, N, d)
    if region_means:
        members = F.one_hot(labels, regions).to(k.dtype)  # (N, R)
        k, v = (torch.cat([t, (members.T @ t) / members.sum(0)[:, None]], dim=-2) for t in (k, v))
        mask = torch.cat([mask, torch.ones(batch, height * width, regions, dtype=torch.bool)], dim=-1)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = (q @ k.transpose(-1, -2) * scale).masked_fill(~mask.unsqueeze(1), float("-inf"))
    out = scores.softmax(dim=-1) @ v  # (B, h, N, dv)
    return out.transpose(-1, -2).reshape(batch, -1, height, width)


def test_axis_spans_follow_the_documented_examples():
    """The reference tiling itself: 20 tokens in 7 wanted regions are 6 of 3 and one of 2; 8 in 7 are 4 of 2."""
    assert axis_spans(20, 7) == [(0, 3), (3, 6), (6, 9), (9, 12), (12, 15), (15, 18), (18, 20)]
    assert axis_spans(8, 7) == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert axis_spans(3, 8) == [(0, 1), (1, 2), (2, 3)]
    assert axis_spans(1, 5) == [(0, 1)]


@pytest.mark.parametrize("batch, heads, dk, dv, height, width, n_win, topk", SHAPES)
@pytest.mark.parametrize("fused", FUSED)
def test_matches_dense_reference(batch, heads, dk, dv, height, width, n_win, topk, fused):
    q, k, v = routed_inputs(batch, heads, dk, dv, height, width, n_win, topk)
    out = bilevel_routing_attention(q, k, v, heads, n_win, topk, fused=fused)
    assert out.shape == (batch, heads * dv, height, width) and out.dtype == torch.float64
    torch.testing.assert_close(out, dense_reference(q, k, v, heads, n_win, topk), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch, heads, dk, dv, height, width, n_win, topk", SHAPES)
@pytest.mark.parametrize("fused", FUSED)
def test_region_means_match_dense_reference(batch, heads, dk, dv, height, width, n_win, topk, fused):
    q, k, v = routed_inputs(batch, heads, dk, dv, height, width, n_win, topk, offset=1.0)
    out = bilevel_routing_attention(q, k, v, heads, n_win, topk, fused=fused, region_means=True)
    expected = dense_reference(q, k, v, heads, n_win, topk, region_means=True)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)


def test_region_means_change_the_output_and_reach_unrouted_regions():
    """A query whose region routes only to itself still depends on the values of every other region."""
    q, k, v = (t.requires_grad_() for t in routed_inputs(1, 1, 4, 4, 8, 8, 4, 1))
    out = bilevel_routing_attention(q, k, v, 1, 4, 1, region_means=True)
    assert not torch.allclose(out, bilevel_routing_attention(q, k, v, 1, 4, 1))
    out[0, :, 0, 0].sum().backward()  # one query token of region 0
    routed = set(route_regions(q.detach(), k.detach(), 4, 1)[0, 0].tolist())
    labels, _ = region_labels(8, 8, 4)
    reached = {int(r) for r in labels[v.grad[0].abs().sum(0).flatten() > 0]}
    assert reached == set(range(16)) and routed < reached


@pytest.mark.parametrize("fused", FUSED)
def test_explicit_scale(fused):
    q, k, v = routed_inputs(2, 2, 4, 6, 9, 11, 4, 3)
    out = bilevel_routing_attention(q, k, v, 2, 4, 3, scale=0.37, fused=fused)
    torch.testing.assert_close(out, dense_reference(q, k, v, 2, 4, 3, scale=0.37), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("height, width", [(13, 10), (5, 13), (20, 20)])
def test_region_means_count_only_real_tokens(height, width, fused):
    """With q and k far from zero mean, region sums scale with token count, so routing on sums or on means over
    padded slots would rank the partly padded edge regions differently from the true means."""
    q, k, v = routed_inputs(2, 2, 4, 4, height, width, 4, 3, offset=3.0)
    torch.testing.assert_close(route_regions(q, k, 4, 3).sort(dim=-1).values, reference_routes(q, k, 4, 3))
    out = bilevel_routing_attention(q, k, v, 2, 4, 3, fused=fused)
    torch.testing.assert_close(out, dense_reference(q, k, v, 2, 4, 3), rtol=1e-10, atol=1e-12)


def test_head_split_entry_point_matches():
    """``routing_attention_heads`` on non-contiguous head-split slices of one tensor, as the modules call it."""
    q, k, v = routed_inputs(2, 2, 4, 8, 9, 14, 4, 3)
    qkv = torch.cat([t.unflatten(1, (2, -1)) for t in (q, k, v)], dim=2)  # (B, heads, dk+dk+dv, H, W)
    q_h, k_h, v_h = qkv.split([4, 4, 8], dim=2)
    out = routing_attention_heads(q_h, k_h, v_h, 4, 3)
    torch.testing.assert_close(out, dense_reference(q, k, v, 2, 4, 3), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fused", FUSED)
def test_channels_last_equals_contiguous(fused):
    q, k, v = routed_inputs(2, 2, 4, 6, 11, 13, 4, 3)
    out = bilevel_routing_attention(q, k, v, 2, 4, 3, fused=fused)
    q_cl, k_cl, v_cl = (t.contiguous(memory_format=torch.channels_last) for t in (q, k, v))
    assert q_cl.stride() != q.stride()
    torch.testing.assert_close(bilevel_routing_attention(q_cl, k_cl, v_cl, 2, 4, 3, fused=fused), out)


@pytest.mark.parametrize("region_means", (False, True), ids=("", "region-means"))
@pytest.mark.parametrize("fused", (True, False))
@pytest.mark.parametrize(
    "height, width, n_win, topk",
    [
        pytest.param(5, 7, 3, 2, id="routed-padded"),
        pytest.param(4, 6, 2, 4, id="all-regions-unpadded"),
        pytest.param(5, 3, 2, 4, id="all-regions-padded"),
    ],
)
def test_gradcheck(height, width, n_win, topk, fused, region_means):
    """Fast mode compares random projections of the analytic and numerical Jacobians: any wrong gradient entry shows
    up in them almost surely, at a fraction of the cost of comparing every entry."""
    q, k, v = (t.requires_grad_() for t in routed_inputs(1, 2, 2, 3, height, width, n_win, topk))
    assert torch.autograd.gradcheck(
        lambda q, k, v: bilevel_routing_attention(q, k, v, 2, n_win, topk, fused=fused, region_means=region_means),
        (q, k, v),
        fast_mode=True,
    )


@pytest.mark.parametrize("region_means", (False, True), ids=("", "region-means"))
@pytest.mark.parametrize("fused", (True, False))
def test_gathering_in_blocks_equals_one_gather(monkeypatch, fused, region_means):
    """Eager calls without autograd gather routed regions a block of query regions at a time; a block budget of one
    byte makes every query region its own block."""
    q, k, v = routed_inputs(2, 2, 4, 6, 13, 10, 4, 3)
    expected = dense_reference(q, k, v, 2, 4, 3, region_means=region_means)
    monkeypatch.setattr(Fn, "GATHER_BLOCK_BYTES", 1)
    out = bilevel_routing_attention(q, k, v, 2, 4, 3, fused=fused, region_means=region_means)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("dtype", (torch.bfloat16, torch.float16), ids=("bfloat16", "float16"))
@pytest.mark.parametrize("height, width, topk", [(7, 9, 2), (16, 16, 3), (12, 12, 16)])
def test_half_precision_large_inputs_stay_finite(height, width, topk, dtype, fused):
    """Inputs of magnitude ~1e3 give q.k products ~1e6, beyond float16's range unless scores avoid it.

    Forward for both half types, backward for bfloat16 (the training dtype on CPU).
    """
    q, k, v = routed_inputs(2, 2, 8, 16, height, width, 4, topk, dtype=dtype, magnitude=1e3)
    q, k, v = (t.requires_grad_(dtype == torch.bfloat16) for t in (q, k, v))
    out = bilevel_routing_attention(q, k, v, 2, 4, topk, fused=fused)
    assert out.dtype == dtype and torch.isfinite(out).all()
    if dtype == torch.bfloat16:
        out.float().square().mean().backward()
        assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16), ids=("float16", "bfloat16"))
def test_explicit_path_under_autocast_matches_float32(dtype):
    """float32 inputs under autocast: the explicit path must score in float32 as it does for half inputs, or float16
    scores overflow to NaN and bfloat16 ones round far coarser than the fused kernel's."""
    q, k, v = routed_inputs(1, 2, 8, 8, 8, 8, 2, 2, dtype=torch.float32, magnitude=1e3)  # q.k ~ 1e6
    expected = dense_reference(q.double(), k.double(), v.double(), 2, 2, 2)
    with torch.autocast("cpu", dtype=dtype):
        out = bilevel_routing_attention(q, k, v, 2, 2, 2, fused=False)
    assert out.dtype == dtype and torch.isfinite(out).all()
    # Only the output's own rounding to ``dtype`` remains: half an ulp of the largest output value.
    tolerance = expected.abs().max().item() * torch.finfo(dtype).eps
    assert (out.double() - expected).abs().max().item() <= tolerance


def test_bfloat16_explicit_path_equals_fused_path():
    """The docstring promises both paths give the same result; for bfloat16 that needs float32 scores on both."""
    q, k, v = routed_inputs(2, 2, 8, 8, 12, 12, 3, 2, dtype=torch.bfloat16, magnitude=4.0)
    expected = dense_reference(q.double(), k.double(), v.double(), 2, 3, 2)
    for fused in (True, False):
        out = bilevel_routing_attention(q, k, v, 2, 3, 2, fused=fused)
        tolerance = expected.abs().max().item() * torch.finfo(torch.bfloat16).eps
        assert (out.double() - expected).abs().max().item() <= tolerance, f"fused={fused}"


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("height, width", [(6, 6), (5, 7)], ids=("fits", "padded"))
def test_empty_batch(height, width, fused):
    q, k, v = (torch.randn(0, c, height, width, requires_grad=True) for c in (8, 8, 12))
    out = bilevel_routing_attention(q, k, v, 2, 3, 2, fused=fused)
    assert out.shape == (0, 12, height, width) and out.requires_grad
    out.sum().backward()
    assert route_regions(q.detach(), k.detach(), 3, 2).shape == (0, 9, 2)


def test_meta_tensors_give_shapes():
    """Shape inference on the meta device (as for model summaries): autocast knows no meta device, so pausing it must
    not raise there."""
    q, k, v = (torch.empty(2, c, 9, 7, device="meta") for c in (8, 8, 12))
    assert bilevel_routing_attention(q, k, v, 2, 4, 3).shape == (2, 12, 9, 7)
    assert route_regions(q, k, 4, 3).shape == (2, 12, 3)


@pytest.mark.parametrize("offset_side", ("q", "k"))
def test_half_precision_routing_is_exact(offset_side):
    """Routing of bfloat16 inputs equals float64 routing of the same values, so region sums are not bfloat16.

    One side carries a large common offset: rounding its region sums to bfloat16 would change them by more than its
    fluctuations. The other is centred over channels, so that the offset alone does not decide the ranking.
    """

    def draw(gen):
        offset = 1e4 + 1e2 * torch.randn(2, 32, 24, 24, generator=gen, dtype=torch.float64)
        centred = 1e3 * torch.randn(2, 32, 24, 24, generator=gen, dtype=torch.float64)
        pair = (offset.bfloat16(), (centred - centred.mean(1, keepdim=True)).bfloat16())
        return (*(pair if offset_side == "q" else pair[::-1]), None)

    q, k, _ = with_clear_routing(draw, 6, 4)
    torch.testing.assert_close(route_regions(q, k, 6, 4).sort(dim=-1).values, reference_routes(q, k, 6, 4))


@pytest.mark.parametrize(
    "height, width, n_win, topk",
    [(16, 16, 4, 3), (5, 13, 4, 100), (3, 40, 7, 5), (1, 1, 3, 2), (20, 20, 7, 49), (8, 8, 7, 1)],
)
def test_route_regions(height, width, n_win, topk):
    q, k, _ = routed_inputs(2, 1, 8, 1, height, width, n_win, topk)
    regions = len(axis_spans(height, n_win)) * len(axis_spans(width, n_win))
    routes = route_regions(q, k, n_win, topk)
    assert routes.shape == (2, regions, min(topk, regions)) and routes.dtype == torch.int64
    sorted_routes = routes.sort(dim=-1).values
    torch.testing.assert_close(sorted_routes, reference_routes(q, k, n_win, topk))
    if topk >= regions:
        assert torch.equal(sorted_routes, torch.arange(regions).expand(2, regions, regions))
    scores = reference_affinity(q, k, n_win).gather(-1, routes)
    assert (scores[..., :-1] >= scores[..., 1:]).all(), "routes are not best first"


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16), ids=("float16", "bfloat16"))
def test_routing_under_autocast_is_float32_routing(dtype):
    """Autocast must not run the affinity in half precision: with activations of magnitude ~1e2 over 64 channels,
    region affinities pass float16's 65504 and would all become inf, ties that route arbitrarily."""
    q, k, _ = routed_inputs(2, 1, 64, 1, 16, 16, 4, 3, dtype=torch.float32, magnitude=1e2, offset=1e2)
    assert reference_affinity(q, k, 4).abs().max() > torch.finfo(torch.float16).max
    with torch.autocast("cpu", dtype=dtype):
        routes = route_regions(q, k, 4, 3)
    torch.testing.assert_close(routes.sort(dim=-1).values, reference_routes(q, k, 4, 3))


def test_routing_traced_at_one_size_follows_every_size():
    """Under ``torch.jit.trace`` the grid is computed from traced sizes: routing traced on a 9x7 map routes maps of other
    sizes (other grids, padded or not) like the reference, and tracing it freezes no size."""
    n_win, topk = 4, 3

    def routing(q, k):
        return route_regions(q, k, n_win, topk)

    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        traced = torch.jit.trace(routing, routed_inputs(1, 1, 8, 1, 9, 7, n_win, topk)[:2], check_trace=False)
    for height, width in [(16, 16), (5, 13), (3, 40), (1, 1), (20, 20)]:
        q, k, _ = routed_inputs(2, 1, 8, 1, height, width, n_win, topk)
        routes = traced(q, k)
        assert routes.shape == routing(q, k).shape, f"{height}x{width}"
        torch.testing.assert_close(routes.sort(dim=-1).values, reference_routes(q, k, n_win, topk))


@pytest.mark.parametrize("height, width", [(1, 1), (1, 9), (5, 13), (3, 40), (20, 20), (8, 8), (480, 640), (63, 17)])
@pytest.mark.parametrize("n_win", [1, 2, 3, 7, 8, 50])
def test_region_grid_follows_rule(height, width, n_win):
    grid = region_grid(height, width, n_win)
    rows, cols = axis_spans(height, n_win), axis_spans(width, n_win)
    assert (grid.height, grid.width, grid.rows, grid.cols) == (height, width, len(rows), len(cols))
    assert (grid.region_h, grid.region_w) == (rows[0][1] - rows[0][0], cols[0][1] - cols[0][0])
    assert grid.num_regions == len(rows) * len(cols) and grid.region_tokens == grid.region_h * grid.region_w
    assert grid.padded == (grid.rows * grid.region_h != height or grid.cols * grid.region_w != width)
    for spans, size, length in ((rows, grid.region_h, height), (cols, grid.region_w, width)):
        assert len(spans) <= n_win and all(stop > start for start, stop in spans)  # no pure-padding region
        assert (len(spans) - 1) * size < length <= len(spans) * size


@pytest.mark.parametrize(
    "call, pattern",
    [
        pytest.param(lambda: region_grid(8, 8, 0), r"n_win.* 0$", id="grid-n_win=0"),
        pytest.param(lambda: region_grid(8, 8, -1), r"n_win.* -1$", id="grid-n_win=-1"),
        pytest.param(lambda: region_grid(0, 5, 2), r"0x5", id="grid-empty-map"),
    ],
)
def test_region_grid_rejects_bad_args(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def _operator_call(q_channels=8, v_channels=8, q_size=(6, 6), k_size=(6, 6), v_size=(6, 6), **kwargs):
    """A call of the operator on zeros of the given shapes, with keyword overrides of num_heads, n_win and topk."""
    args = {"num_heads": 2, "n_win": 3, "topk": 2} | kwargs
    q, k = torch.zeros(1, q_channels, *q_size), torch.zeros(1, q_channels, *k_size)
    return lambda: bilevel_routing_attention(q, k, torch.zeros(1, v_channels, *v_size), **args)


@pytest.mark.parametrize(
    "call, pattern",
    [
        pytest.param(_operator_call(n_win=0), r"n_win.* 0$", id="n_win=0"),
        pytest.param(_operator_call(n_win=-3), r"n_win.* -3$", id="n_win=-3"),
        pytest.param(_operator_call(n_win=2.0), r"n_win.* 2\.0$", id="n_win=2.0"),
        pytest.param(_operator_call(topk=0), r"topk.* 0$", id="topk=0"),
        pytest.param(_operator_call(topk=-1), r"topk.* -1$", id="topk=-1"),
        pytest.param(_operator_call(topk=1.5), r"topk.* 1\.5$", id="topk=1.5"),
        pytest.param(_operator_call(num_heads=0), r"num_heads.* 0$", id="num_heads=0"),
        pytest.param(_operator_call(q_channels=9), r"\(9\).*num_heads=2", id="dk-not-divisible"),
        pytest.param(_operator_call(v_channels=7), r"\(7\).*num_heads=2", id="dv-not-divisible"),
        pytest.param(_operator_call(k_size=(6, 5)), re.escape("k (1, 8, 6, 5)"), id="k-shape"),
        pytest.param(_operator_call(v_size=(5, 6)), re.escape("v (1, 8, 5, 6)"), id="v-shape"),
        pytest.param(_operator_call(q_size=(36,), k_size=(36,)), re.escape("q (1, 8, 36)"), id="q-3d"),
        pytest.param(
            lambda: bilevel_routing_attention(torch.zeros(1, 8, 6, 6), torch.zeros(1, 8, 6, 6), torch.zeros(1, 8, 6, 6).half(), 2, 3, 2),
            r"one dtype and device.*v torch.float16",
            id="v-dtype",
        ),
        pytest.param(lambda: route_regions(torch.zeros(1, 8, 6, 6), torch.zeros(1, 8, 6, 6), 3, 0), r"topk.* 0$", id="routes-topk=0"),
        pytest.param(lambda: route_regions(torch.zeros(1, 8, 6, 6), torch.zeros(1, 8, 6, 6), 3, -1), r"topk.* -1$", id="routes-topk=-1"),
        pytest.param(lambda: route_regions(torch.zeros(1, 8, 6, 6), torch.zeros(1, 8, 6, 5), 3, 2), re.escape("k (1, 8, 6, 5)"), id="routes-k-shape"),
    ],
)
def test_operator_rejects_bad_args(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


# Runs in a fresh interpreter so that no other test's allocations count. The peak is VmHWM, the resident high-water
# mark of the probe's own address space, reset to the current resident size (inputs included) just before the forward
# through /proc/self/clear_refs. ``ru_maxrss`` would not do: Linux carries the parent's resident size at fork into a
# child's ``ru_maxrss`` across exec, so a large pytest process would set the probe's "peak".
MEMORY_PROBE = """
import json, torch
from ultralytics_biformer.functional import bilevel_routing_attention

def status_bytes(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) * 1024

q, k, v = (torch.randn(1, c, 480, 640) for c in (32, 32, 64))
with open("/proc/self/clear_refs", "w") as clear_refs:
    clear_refs.write("5")  # VmHWM := VmRSS
baseline = status_bytes("VmRSS")
with torch.inference_mode():
    out = bilevel_routing_attention(q, k, v, num_heads=2, n_win=8, topk=4)
extra = status_bytes("VmHWM") - baseline
print(json.dumps({"shape": list(out.shape), "finite": bool(out.isfinite().all()), "extra": extra}))
"""


@pytest.mark.slow
def test_eval_forward_memory_on_a_large_map():
    """Routing keeps memory bounded: global attention over these 307200 tokens would need ~750 GB of scores."""
    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, timeout=600, check=False
    )
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout)
    assert result["shape"] == [1, 64, 480, 640] and result["finite"]
    assert result["extra"] < 2 * GIB, f"forward needed {result['extra'] / GIB:.2f} GiB beyond its inputs"


SIZES = [(1, 1), (1, 6), (5, 1), (3, 4), (8, 8), (9, 7), (13, 20), (20, 20), (21, 11)]


@pytest.mark.parametrize(
    "n_win, topk, region_means",
    [(1, 1, False), (2, 2, False), (3, 4, False), (4, 3, False), (7, 4, False), (2, 4, False), (3, 9, False)]
    + [(3, 4, True), (3, 9, True)],
)
@pytest.mark.parametrize("fused", [False, True])
def test_export_path_equals_eager_path(n_win, topk, region_means, fused):
    """The operator traced at one size computes exactly what it does eagerly at every size, padded or not, routed or
    global, and tracing it freezes nothing."""

    def operator(q, k, v):
        return Fn.routing_attention_heads(q, k, v, n_win, topk, None, fused, region_means)

    g = torch.Generator().manual_seed(n_win * 10 + topk)
    example = tuple(torch.randn(2, 2, d, 9, 7, generator=g, dtype=torch.float64) for d in (4, 4, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        traced = torch.jit.trace(operator, example, check_trace=False)
    for h, w in SIZES:
        q, k = torch.randn(2, 2, 2, 4, h, w, generator=g, dtype=torch.float64).unbind(0)
        v = torch.randn(2, 2, 6, h, w, generator=g, dtype=torch.float64)
        eager, export = operator(q, k, v), traced(q, k, v)
        torch.testing.assert_close(export, eager, rtol=1e-12, atol=1e-12, msg=f"{h}x{w} n_win={n_win} topk={topk}")


@pytest.mark.parametrize("fused", [False, True], ids=["explicit", "fused"])
def test_region_means_of_fp16_inputs_do_not_overflow(fused):
    """A region of 144 tokens near 600 sums to ~86000, past fp16's 65504, though its mean is 600."""
    g = torch.Generator().manual_seed(0)
    q = 0.01 * torch.randn(1, 1, 8, 24, 24, generator=g, dtype=torch.float64)
    k, v = (600 + torch.randn(1, 1, 8, 24, 24, generator=g, dtype=torch.float64) for _ in range(2))
    ref = Fn.routing_attention_heads(q, k, v, 2, 1, None, fused, True)
    out = Fn.routing_attention_heads(q.half(), k.half(), v.half(), 2, 1, None, fused, True)
    assert out.isfinite().all()
    assert (out.double() - ref).abs().max() < 600 * 4 * torch.finfo(torch.float16).eps


@pytest.mark.parametrize("region_means", [False, True], ids=["", "region-means"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("fused", [False, True], ids=["explicit", "fused"])
def test_low_precision_operator(dtype, fused, region_means):
    """Both attention paths, in fp16 and bf16: finite forward and backward on inputs whose scores pass fp16's range,
    and within a few units of the dtype's rounding of float64 on ordinary inputs."""
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(2, 2, 16, 12, 12, generator=g) for _ in range(2))
    v = torch.randn(2, 2, 32, 12, 12, generator=g)
    args = (4, 3, None, fused, region_means)

    loud = [(t * LARGE).to(dtype).requires_grad_() for t in (q, k)] + [v.to(dtype).requires_grad_()]
    out = Fn.routing_attention_heads(*loud, *args)
    out.float().sum().backward()
    assert out.dtype == dtype and out.isfinite().all()
    assert all(t.grad.isfinite().all() for t in loud)

    ref = Fn.routing_attention_heads(q.double(), k.double(), v.double(), *args)
    out = Fn.routing_attention_heads(q.to(dtype), k.to(dtype), v.to(dtype), *args)
    error = (out.double() - ref).abs().mean() / ref.abs().mean()
    assert error < 10 * torch.finfo(dtype).eps, f"mean relative error {error:.3g}"

"""Tests of the BRA modules against their stock Ultralytics twins: weight compatibility, equality, conversion, fusing."""

from __future__ import annotations

import pytest
import torch
from helpers import randomize_bn_
from torch import nn
from ultralytics.nn.modules.block import C2PSA, Attention, C3k2
from ultralytics.nn.tasks import BaseModel

from ultralytics_biformer import BRA, C2PSA_BRA, BiLevelRoutingAttention, C3k2_BRA

# C3k2 variants as (c1, c2, n, c3k, e, attn): plain bottlenecks, C3k inner blocks, and YOLO26's attention blocks.
C3K2_ARGS = [
    pytest.param((64, 64, 1, False, 0.5, False), id="bottleneck"),
    pytest.param((64, 128, 2, True, 0.25, False), id="c3k"),
    pytest.param((128, 128, 1, False, 0.5, True), id="attn"),
]


@pytest.fixture(autouse=True)
def _seed():
    """Make the default weight initialisation of every module built in a test reproducible."""
    torch.manual_seed(0)


def eval64(module: nn.Module) -> nn.Module:
    """The module in float64 and eval mode, so that outputs can be compared to ~1e-12."""
    return module.double().eval()


def image(channels: int, height: int, width: int, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, channels, height, width, dtype=torch.float64)


def assert_same_keys_and_shapes(ours: nn.Module, stock: nn.Module) -> None:
    ours_sd, stock_sd = ours.state_dict(), stock.state_dict()
    assert ours_sd.keys() == stock_sd.keys()
    assert all(ours_sd[key].shape == value.shape for key, value in stock_sd.items())


@pytest.mark.parametrize("c1, n", [(128, 1), (256, 2)])  # one head, then two heads (channel layout of qkv matters)
def test_c2psa_bra_loads_stock_weights_and_equals_stock_when_routing_keeps_all(c1, n):
    stock = eval64(randomize_bn_(C2PSA(c1, c1, n)))
    ours = C2PSA_BRA(c1, c1, n, n_win=4, topk=16)  # a 12x12 map has 4x4 regions: every region is kept
    assert_same_keys_and_shapes(ours, stock)
    ours.load_state_dict(stock.state_dict(), strict=True)
    x = image(c1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(eval64(ours)(x), stock(x), rtol=1e-10, atol=1e-10)


def test_c2psa_bra_differs_from_stock_when_routing_drops_regions():
    stock = eval64(randomize_bn_(C2PSA(256, 256, 1)))
    ours = C2PSA_BRA(256, 256, 1, n_win=4, topk=2)
    ours.load_state_dict(stock.state_dict(), strict=True)
    x = image(256, 12, 12)
    with torch.no_grad():
        assert (eval64(ours)(x) - stock(x)).abs().max() > 1e-3


@pytest.mark.parametrize("height, width, n_win, topk", [(12, 12, 4, 16), (11, 7, 3, 9), (5, 3, 3, 100)])
def test_routing_attention_loads_stock_attention_and_equals_it_when_routing_keeps_all(height, width, n_win, topk):
    """Also on maps that need padding (11x7 and 5x3 with n_win=3), where padded keys must be masked."""
    stock = eval64(randomize_bn_(Attention(128, num_heads=2)))
    ours = BiLevelRoutingAttention(128, num_heads=2, n_win=n_win, topk=topk)
    assert_same_keys_and_shapes(ours, stock)
    ours.load_state_dict(stock.state_dict(), strict=True)
    x = image(128, height, width)
    with torch.no_grad():
        torch.testing.assert_close(eval64(ours)(x), stock(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("args", C3K2_ARGS)
def test_c3k2_bra_holds_stock_weights_and_starts_as_stock(args):
    stock = eval64(randomize_bn_(C3k2(*args)))
    ours = C3k2_BRA(*args, n_win=4, topk=2)
    ours_sd, stock_sd = ours.state_dict(), stock.state_dict()
    assert stock_sd.keys() <= ours_sd.keys()
    assert all(ours_sd[key].shape == value.shape for key, value in stock_sd.items())
    result = ours.load_state_dict(stock_sd, strict=False)
    assert not result.unexpected_keys
    assert result.missing_keys and all(key.startswith("bra.") for key in result.missing_keys)
    ours, x = eval64(ours), image(args[0], 13, 11)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), stock(x), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(ours.forward_split(x), stock.forward_split(x), rtol=1e-10, atol=1e-10)


def test_c3k2_bra_refinement_changes_the_output_once_trained():
    """The equality at init comes from the zero-initialised BRA branches, not from BRA being bypassed."""
    stock = eval64(randomize_bn_(C3k2(64, 64, 1)))
    ours = C3k2_BRA(64, 64, 1, n_win=4, topk=2)
    ours.load_state_dict(stock.state_dict(), strict=False)
    randomize_bn_(ours.bra, seed=1)
    x = image(64, 12, 12)
    with torch.no_grad():
        assert (eval64(ours)(x) - stock(x)).abs().max() > 1e-3


def test_c2psa_from_stock_converts_in_place():
    stock = eval64(randomize_bn_(C2PSA(256, 256, 2)))
    params = dict(stock.named_parameters())
    x = image(256, 12, 12)
    with torch.no_grad():
        before = stock(x)
        converted = C2PSA_BRA.from_stock(stock, n_win=4, topk=16)
        after = converted(x)
    assert converted is stock and type(converted) is C2PSA_BRA
    assert all(type(block.attn) is BiLevelRoutingAttention for block in converted.m)
    assert all((block.attn.n_win, block.attn.topk) == (4, 16) for block in converted.m)
    assert dict(converted.named_parameters()).keys() == params.keys()
    assert all(p is params[name] for name, p in converted.named_parameters())
    torch.testing.assert_close(after, before, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("args", C3K2_ARGS)
def test_c3k2_from_stock_converts_in_place(args):
    stock = eval64(randomize_bn_(C3k2(*args)))
    params = dict(stock.named_parameters())
    x = image(args[0], 12, 12)
    with torch.no_grad():
        before = stock(x)
        converted = eval64(C3k2_BRA.from_stock(stock, n_win=4, topk=2))
        after = converted(x)
    assert converted is stock and type(converted) is C3k2_BRA
    converted_params = dict(converted.named_parameters())
    assert params.keys() <= converted_params.keys() and all(converted_params[n] is p for n, p in params.items())
    new = converted_params.keys() - params.keys()
    assert new and all(name.startswith("bra.") for name in new)
    torch.testing.assert_close(after, before, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "convert, stock",
    [
        pytest.param(C2PSA_BRA.from_stock, lambda: C2PSA(128, 128), id="C2PSA"),
        pytest.param(C3k2_BRA.from_stock, lambda: C3k2(64, 64), id="C3k2"),
    ],
)
@pytest.mark.parametrize("n_win, topk, pattern", [(0, 2, r"n_win.* 0$"), (4, 1.5, r"topk.* 1\.5$")])
def test_from_stock_rejects_bad_args_and_leaves_module_stock(convert, stock, n_win, topk, pattern):
    module = stock()
    keys = module.state_dict().keys()
    with pytest.raises(ValueError, match=pattern):
        convert(module, n_win=n_win, topk=topk)
    assert type(module) in (C2PSA, C3k2) and module.state_dict().keys() == keys


@pytest.mark.parametrize(
    "convert, stock, stock_type, pattern",
    [
        pytest.param(
            lambda m: BiLevelRoutingAttention.from_attention(m, n_win=0, topk=2),
            lambda: Attention(128, num_heads=2),
            Attention,
            r"n_win.* 0$",
            id="Attention-n_win",
        ),
        # C2PSA(400) builds 3-head attention over 200 channels, which stock C2PSA accepts until its first forward.
        pytest.param(
            lambda m: C2PSA_BRA.from_stock(m, n_win=2, topk=2), lambda: C2PSA(400, 400), C2PSA, r"dim=200.*3", id="C2PSA-heads"
        ),
        pytest.param(
            lambda m: C3k2_BRA.from_stock(m, n_win=2, topk=2, layer_scale=2.0),
            lambda: C3k2(64, 64),
            C3k2,
            r"layer_scale.* 2\.0$",
            id="C3k2-layer_scale",
        ),
    ],
)
def test_refused_conversion_leaves_a_working_stock_module(convert, stock, stock_type, pattern):
    """Every check runs before the class changes: a refused conversion must not leave a half-converted module."""
    module = stock().eval()
    keys = module.state_dict().keys()
    with pytest.raises(ValueError, match=pattern):
        convert(module)
    assert type(module) is stock_type and module.state_dict().keys() == keys
    if stock_type is not C2PSA:  # that one fails in stock form too
        channels = 128 if stock_type is Attention else 64
        with torch.no_grad():
            module(torch.randn(1, channels, 8, 8))


def test_c3k2_from_stock_matches_the_module_dtype_and_mode():
    """The added BRA block follows the converted module: a float64 eval module stays float64 and in eval mode."""
    module = C3k2(64, 64).double().eval()
    converted = C3k2_BRA.from_stock(module, n_win=2, topk=2)
    assert all(p.dtype == torch.float64 for p in converted.bra.parameters())
    assert not any(m.training for m in converted.bra.modules())
    running_mean = converted.bra.mlp[0].bn.running_mean.clone()
    with torch.no_grad():
        converted(image(64, 8, 8))
    assert torch.equal(converted.bra.mlp[0].bn.running_mean, running_mean)  # eval: statistics untouched


@pytest.mark.parametrize("c", [200, 400, 66, 7])
def test_bra_default_heads_divide_any_width(c):
    """YOLO11's rule ``max(c // 64, 1)`` does not divide every width (200 // 64 = 3); the default lowers it to the
    nearest divisor, so BRA and C3k2_BRA build at every width stock C3k2 builds at."""
    block = BRA(c, n_win=2, topk=2)
    heads = block.attn.num_heads
    assert c % heads == 0 and heads <= max(c // 64, 1)
    assert all(c % h for h in range(heads + 1, max(c // 64, 1) + 1))  # the nearest divisor below the rule
    assert block(torch.randn(1, c, 6, 6)).shape == (1, c, 6, 6)
    assert C3k2_BRA(2 * c, 2 * c, n_win=2, topk=2).bra.attn.num_heads == heads


@pytest.mark.parametrize("c", [64, 128])
@pytest.mark.parametrize("height, width", [(1, 1), (7, 9), (3, 40), (13, 13), (20, 20)])
def test_bra_preserves_shape(c, height, width):
    block = randomize_bn_(BRA(c, n_win=7, topk=4))
    x = torch.randn(2, c, height, width, requires_grad=True)
    block.train()(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    with torch.no_grad():
        out = block.eval()(x)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_bra_starts_as_identity():
    x = image(128, 13, 9)
    with torch.no_grad():
        torch.testing.assert_close(eval64(BRA(128, n_win=4, topk=2))(x), x, rtol=0, atol=0)
        assert (eval64(randomize_bn_(BRA(128, n_win=4, topk=2)))(x) - x).abs().max() > 1e-3


def test_bra_layer_scale_starts_every_residual_branch_at_that_gain():
    block = BRA(64, n_win=4, topk=2, layer_scale=0.1)
    ends = [block.pos.bn.weight, block.attn.proj.bn.weight, block.mlp[-1].bn.weight]
    assert all(torch.equal(w, torch.full_like(w, 0.1)) for w in ends)
    x = image(64, 12, 12)
    with torch.no_grad():
        assert (eval64(block)(x) - x).abs().max() > 1e-3  # no longer the identity
    refined = C3k2_BRA(64, 64, layer_scale=0.1).bra
    assert torch.equal(refined.mlp[-1].bn.weight, torch.full_like(refined.mlp[-1].bn.weight, 0.1))


@pytest.mark.parametrize(
    "build, pattern",
    [
        pytest.param(lambda: BRA(64, layer_scale=-0.1), r"layer_scale.* -0\.1$", id="BRA-layer_scale<0"),
        pytest.param(lambda: BRA(64, layer_scale=True), r"layer_scale.* True$", id="BRA-layer_scale=True"),
        pytest.param(lambda: C3k2_BRA(64, 64, layer_scale=2), r"layer_scale.* 2$", id="C3k2_BRA-layer_scale=2"),
        pytest.param(lambda: BRA(64, n_win=0), r"n_win.* 0$", id="BRA-n_win=0"),
        pytest.param(lambda: BRA(64, topk=-1), r"topk.* -1$", id="BRA-topk=-1"),
        pytest.param(lambda: BRA(64, topk=1.5), r"topk.* 1\.5$", id="BRA-topk=1.5"),
        pytest.param(lambda: BRA(100, num_heads=3), r"dim=100.*num_heads=3", id="BRA-heads"),
        pytest.param(lambda: C2PSA_BRA(128, 128, n_win=0), r"n_win.* 0$", id="C2PSA_BRA-n_win=0"),
        pytest.param(lambda: C2PSA_BRA(128, 128, topk=-1), r"topk.* -1$", id="C2PSA_BRA-topk=-1"),
        pytest.param(lambda: C2PSA_BRA(128, 128, topk=1.5), r"topk.* 1\.5$", id="C2PSA_BRA-topk=1.5"),
        pytest.param(lambda: C2PSA_BRA(128, 64), r"c1=128.*c2=64", id="C2PSA_BRA-c1!=c2"),
        pytest.param(lambda: C2PSA_BRA(128, 128, n=0, n_win=0), r"n_win.* 0$", id="C2PSA_BRA-no-blocks-n_win=0"),
        pytest.param(lambda: C3k2_BRA(64, 64, n_win=0), r"n_win.* 0$", id="C3k2_BRA-n_win=0"),
        pytest.param(lambda: C3k2_BRA(64, 64, topk=-1), r"topk.* -1$", id="C3k2_BRA-topk=-1"),
        pytest.param(lambda: C3k2_BRA(64, 64, topk=1.5), r"topk.* 1\.5$", id="C3k2_BRA-topk=1.5"),
        pytest.param(lambda: BiLevelRoutingAttention(64, 2, n_win=0), r"n_win.* 0$", id="attn-n_win=0"),
        pytest.param(lambda: BiLevelRoutingAttention(64, 2, topk=1.5), r"topk.* 1\.5$", id="attn-topk=1.5"),
        pytest.param(lambda: BiLevelRoutingAttention(100, num_heads=3), r"dim=100.*num_heads=3", id="attn-heads"),
        pytest.param(lambda: BiLevelRoutingAttention(64, num_heads=0), r"num_heads.* 0$", id="attn-heads=0"),
        pytest.param(lambda: BRA(64, num_heads=2.0), r"num_heads.* 2\.0$", id="BRA-heads=2.0"),
        pytest.param(lambda: BiLevelRoutingAttention(64, num_heads=64), r"key width.*= 0", id="attn-key-width-0"),
        pytest.param(lambda: BiLevelRoutingAttention(64, 2, attn_ratio=0), r"key width.*= 0", id="attn-ratio-0"),
        pytest.param(lambda: BRA(64, mlp_ratio=0), r"mlp_ratio.*64 \* 0\)", id="BRA-mlp_ratio=0"),
        pytest.param(lambda: BRA(64, mlp_ratio=-1), r"mlp_ratio", id="BRA-mlp_ratio<0"),
    ],
)
def test_invalid_args_raise_value_error_naming_the_value(build, pattern):
    with pytest.raises(ValueError, match=pattern):
        build()


def test_routing_args_are_checked_once_when_built_not_per_forward(monkeypatch):
    """``n_win`` and ``topk`` are user input when a block is built; a forward pass takes them as checked."""
    import ultralytics_biformer.functional as Fn
    import ultralytics_biformer.modules.attention as attention

    blocks = [BRA(64, n_win=3, topk=2), C2PSA_BRA(128, 128, n_win=2, topk=4), C3k2_BRA(64, 64, n_win=2, topk=2)]

    def refuse(*args):
        raise AssertionError(f"checked again: {args!r}")

    for module, name in ((Fn, "check_routing_args"), (Fn, "check_positive_int"), (attention, "check_routing_args")):
        monkeypatch.setattr(module, name, refuse)
    with torch.no_grad():
        for block, c in zip(blocks, (64, 128, 64)):
            assert block(torch.randn(1, c, 9, 7)).shape[1] == c


def test_ultralytics_fuse_keeps_outputs():
    """``BaseModel.fuse`` folds every BatchNorm into its conv and switches ``Conv`` to ``forward_fuse``."""
    model = BaseModel()
    model.model = nn.Sequential(
        C3k2_BRA(64, 128, 1, n_win=4, topk=2), C2PSA_BRA(128, 128, 1, n_win=4, topk=2), BRA(128, n_win=3, topk=4)
    )
    model = eval64(randomize_bn_(model))
    x = image(64, 13, 10)
    with torch.no_grad():
        before = model.model(x)
        model.fuse(verbose=False)
        after = model.model(x)
    assert model.is_fused() and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-9)

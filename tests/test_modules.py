"""Tests of ``ultralytics_biformer.modules``: the BRA modules against their stock Ultralytics twins (weight
compatibility, equality, conversion, fusing), and at the edges: mixed precision, torch.compile, tiny and odd sizes,
channels_last, tracing for export, SyncBatchNorm, bad routing arguments."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch
from helpers import LARGE, detection_batch, randomize_bn_, routing_layers, wake_branches
from torch import nn
from ultralytics.cfg import get_cfg
from ultralytics.nn.modules.block import C2PSA, Attention, C3k2
from ultralytics.nn.tasks import BaseModel, DetectionModel

from ultralytics_biformer import BRA, C2PSA_BRA, BiLevelRoutingAttention, C3k2_BRA, bilevel_routing_attention
from ultralytics_biformer._int_checks import is_positive_int

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
        pytest.param(lambda: BRA(64, region_means=1), r"region_means.* 1$", id="BRA-region_means=1"),
        pytest.param(lambda: C2PSA_BRA(128, 128, region_means="yes"), r"region_means.*'yes'$", id="C2PSA_BRA-means"),
        pytest.param(lambda: C3k2_BRA(64, 64, region_means=None), r"region_means.* None$", id="C3k2_BRA-means"),
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


@pytest.mark.parametrize("region_means", [False, True], ids=["", "region-means"])
def test_traced_module_follows_the_input_size(region_means):
    """A BRA block traced at one size computes the eager result at other sizes, and tracing it warns of nothing frozen."""
    torch.manual_seed(0)
    block = wake_branches(BRA(64, n_win=4, topk=3, region_means=region_means)).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(block, torch.randn(1, 64, 16, 16), check_trace=False)
    frozen = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    assert not frozen, f"tracing froze values: {[str(w.message) for w in frozen]}"
    with torch.no_grad():
        for b, h, w in [(1, 16, 16), (2, 9, 13), (1, 1, 1), (3, 40, 24), (1, 5, 3), (2, 17, 16)]:
            x = torch.randn(b, 64, h, w)
            torch.testing.assert_close(traced(x), block(x), rtol=1e-4, atol=1e-5, msg=f"{b}x{h}x{w}")


def test_a_module_pickled_before_region_means_existed_loads_without_them():
    """Checkpoints pickle whole modules; one saved before the option lacks the attribute and must run as it did."""
    torch.manual_seed(0)
    block = wake_branches(BRA(64, n_win=4, topk=2)).eval()
    del block.attn.__dict__["region_means"]
    restored = pickle.loads(pickle.dumps(block))
    x = torch.randn(1, 64, 12, 12)
    with torch.no_grad():
        assert restored.attn.region_means is False
        torch.testing.assert_close(restored(x), block(x))


def test_a_frozen_grid_would_be_caught(monkeypatch):
    """Negative control: traced without the export path, the grid freezes and the check above fails at other sizes."""
    torch.manual_seed(0)
    attn = BiLevelRoutingAttention(64, num_heads=2, n_win=4, topk=3).eval()
    monkeypatch.setattr(torch.jit, "is_tracing", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(attn, torch.randn(1, 64, 16, 16), check_trace=False)
    monkeypatch.undo()
    x = torch.randn(1, 64, 10, 14)  # 4x4 regions of 3x4 instead of 4x4 tokens, padded
    with torch.no_grad():
        try:
            wrong = traced(x)
        except RuntimeError:
            return  # frozen reshapes cannot even run at this size: also caught
        assert not torch.allclose(wrong, attn(x), atol=1e-3), "a frozen grid went unnoticed"


def test_coreml_path_equals_default_path():
    """Ultralytics' exporter sets ``format='coreml'`` on every Attention, which then runs SDPA; ours gives the same."""
    torch.manual_seed(0)
    attn = BiLevelRoutingAttention(64, num_heads=2, n_win=4, topk=3).eval()
    coreml = BiLevelRoutingAttention(64, num_heads=2, n_win=4, topk=3).eval()
    coreml.load_state_dict(attn.state_dict())
    coreml.format = "coreml"
    with torch.no_grad():
        for h, w in [(16, 16), (13, 9), (1, 1), (40, 40)]:
            x = torch.randn(2, 64, h, w)
            torch.testing.assert_close(coreml(x), attn(x), rtol=1e-4, atol=1e-5)
        traced = torch.jit.trace(coreml, torch.randn(1, 64, 16, 16), check_trace=False)
        x = torch.randn(1, 64, 11, 19)
        torch.testing.assert_close(traced(x), attn(x), rtol=1e-4, atol=1e-5)


def test_sync_batchnorm_conversion():
    """convert_sync_batchnorm reaches the BatchNorms inside our blocks, keeps every state-dict key, and the converted
    model computes what the original does (eval; SyncBatchNorm's training forward needs CUDA, see
    test_e2e_distributed.py)."""
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    model = DetectionModel("yolo11n-biformer.yaml", nc=2, verbose=False)
    wake_branches(model)
    model.eval()
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(DetectionModel("yolo11n-biformer.yaml", nc=2, verbose=False))
    synced.load_state_dict(model.state_dict())
    synced.eval()
    assert not [n for n, m in synced.named_modules() if type(m) is torch.nn.BatchNorm2d]
    inside_ours = [
        m
        for block in synced.modules()
        if isinstance(block, (BRA, C2PSA_BRA, C3k2_BRA))
        for m in block.modules()
        if isinstance(m, torch.nn.SyncBatchNorm)
    ]
    assert inside_ours, "no SyncBatchNorm inside the biformer blocks"
    assert synced.state_dict().keys() == model.state_dict().keys()
    x = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        torch.testing.assert_close(synced(x)[0], model(x)[0])


def loud_model(device: str = "cpu") -> DetectionModel:
    """yolo11n-biformer whose every attention works on large-magnitude activations."""
    torch.manual_seed(0)
    model = DetectionModel("yolo11n-biformer.yaml", nc=2, verbose=False).to(device)
    model.args = get_cfg()  # the loss reads its gains from here, as in the trainer
    wake_branches(model)
    for attn in routing_layers(model):
        torch.nn.init.constant_(attn.qkv.bn.weight, LARGE)
    return model.train()


def amp_step(model: DetectionModel, device: str, dtype: torch.dtype) -> tuple[torch.Tensor, list[str]]:
    """One trainer step under autocast, with a GradScaler as the trainer uses for fp16; returns the loss and the
    names of parameters whose (unscaled) gradient is missing or non-finite.

    The scaler starts at scale 1: at its default 65536 a first step may overflow by design (the scaler then skips it
    and lowers the scale), which would hide whether the model's own fp16 arithmetic stays finite.
    """
    scaler = torch.amp.GradScaler(device, init_scale=1.0, enabled=dtype == torch.float16)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    with torch.autocast(device, dtype=dtype):
        loss, _ = model.loss(detection_batch(0, device=device))
        loss = loss.sum()
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    bad = [
        n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.isfinite().all())
    ]
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), bad


def test_large_activations_overflow_an_unprotected_fp16_attention():
    """Calibration of the AMP tests: at this magnitude Ultralytics' own Attention produces non-finite fp16 outputs."""
    torch.manual_seed(0)
    attn = Attention(64, num_heads=2).train()
    torch.nn.init.constant_(attn.qkv.bn.weight, LARGE)
    with torch.autocast("cpu", dtype=torch.float16):
        out = attn(torch.randn(2, 64, 20, 20))
    assert not out.isfinite().all()


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_amp_training_step_is_finite_on_cpu(dtype):
    """CUDA AMP semantics on CPU: autocast (+ GradScaler for fp16) around a real loss; loss and gradients stay finite."""
    model = loud_model()
    loss, bad = amp_step(model, "cpu", dtype)
    assert loss.isfinite(), f"loss {loss}"
    assert not bad, f"missing or non-finite gradients: {bad[:5]}"


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_amp_training_step_is_finite_on_cuda():
    model = loud_model("cuda")
    loss, bad = amp_step(model, "cuda", torch.float16)
    assert loss.isfinite() and not bad, (loss, bad[:5])


@pytest.mark.slow
def test_compiled_bra_block_matches_eager():
    """CPU inductor compiles a BRA block into one graph (fullgraph) whose outputs equal eager ones."""
    torch.manual_seed(0)
    block = BRA(32, n_win=4, topk=2).eval()
    wake_branches(block)
    compiled = torch.compile(block, backend="inductor", fullgraph=True)
    x = torch.randn(2, 32, 13, 20)  # a padded grid
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), block(x), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_biformer_model_compiles_without_graph_breaks():
    """Dynamo captures a biformer detector's backbone and neck, every routing layer included, as one graph.

    The run stops before the Detect head (``embed``): Ultralytics' anchor generation breaks the graph with an
    ``.item()`` in stock models too, which says nothing about our blocks.
    """
    model = DetectionModel("yolo11n-biformer.yaml", verbose=False).fuse().eval()
    torch._dynamo.reset()
    with torch.no_grad():
        explanation = torch._dynamo.explain(lambda x: model(x, embed=[16, 19, 22]))(torch.randn(1, 3, 96, 128))
    assert explanation.graph_break_count == 0, [str(b.reason) for b in explanation.break_reasons]
    assert explanation.graph_count == 1


def layer_zoo() -> list[BiLevelRoutingAttention]:
    """Every distinct routing attention of the shipped nano detectors: yolo11, yolo26 and the neck variant."""
    layers = []
    for cfg in ("yolo11n-biformer.yaml", "yolo26n-biformer.yaml", "yolo11n-biformer-neck.yaml"):
        model = DetectionModel(cfg, verbose=False).eval()
        layers += routing_layers(model)
    unique = {(m.qkv.conv.in_channels, m.num_heads, m.n_win, m.topk): m for m in layers}
    return list(unique.values())


@pytest.fixture(scope="module")
def zoo():
    torch.manual_seed(0)
    return layer_zoo()


def test_every_routing_layer_works_at_every_small_size(zoo):
    """Every shipped routing layer, at every feature size from 1x1 to (2*n_win+1)^2 (all grid regimes: fewer tokens
    than regions, exact tiling, padding), gives finite outputs of the input's shape equal to the layer's export (traced
    once, at the largest of these sizes)."""
    assert zoo
    for attn in zoo:
        c, n = attn.qkv.conv.in_channels, attn.n_win
        g = torch.Generator().manual_seed(c + n)
        export = torch.jit.trace(attn, torch.randn(1, c, 2 * n + 1, 2 * n + 1, generator=g), check_trace=False)
        for h in range(1, 2 * n + 2):
            for w in range(1, 2 * n + 2):
                x = torch.randn(1, c, h, w, generator=g)
                with torch.no_grad():
                    out = attn(x)
                    traced = export(x)
                assert out.shape == x.shape and out.isfinite().all(), (c, n, h, w)
                torch.testing.assert_close(traced, out, rtol=1e-5, atol=1e-5, msg=f"c={c} n_win={n} {h}x{w}")


def test_batch_size_and_channels_last_do_not_change_results(zoo):
    """Batch 1 and a batch of 48 give each sample the same output; channels_last input gives the same output."""
    for attn in zoo:
        c, n = attn.qkv.conv.in_channels, attn.n_win
        x = torch.randn(48, c, 2 * n + 1, n + 3)  # padded along both axes
        with torch.no_grad():
            batched = attn(x)
            for i in (0, 17, 47):
                torch.testing.assert_close(attn(x[i : i + 1]), batched[i : i + 1], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(attn(x.to(memory_format=torch.channels_last)), batched, rtol=1e-4, atol=1e-5)


def test_blocks_work_from_1x1_up():
    """The blocks around the attention (BRA, C2PSA_BRA, C3k2_BRA) keep their shapes down to 1x1 maps."""
    torch.manual_seed(0)
    for block, c_out in (
        (BRA(64, n_win=7, topk=4), 64),
        (C2PSA_BRA(128, 128, n_win=7, topk=4), 128),
        (C3k2_BRA(64, 32, n_win=7, topk=4), 32),
    ):
        block.eval()
        for h, w in ((1, 1), (1, 9), (9, 1), (2, 3), (7, 7), (15, 8)):
            with torch.no_grad():
                out = block(torch.randn(2, block_in(block), h, w))
            assert out.shape == (2, c_out, h, w) and out.isfinite().all(), (type(block).__name__, h, w)


def block_in(block) -> int:
    return block.pos.conv.in_channels if isinstance(block, BRA) else block.cv1.conv.in_channels


@pytest.mark.parametrize("n_win, topk", [(0, 4), (-1, 4), (7, 0), (7, -3), (7.0, 4), (7, True), (None, 4), ("7", 4)])
def test_bad_routing_arguments_are_rejected_everywhere(n_win, topk):
    """Constructors and the functional API reject non-positive or non-integer n_win/topk, naming the argument."""
    name = "topk" if is_positive_int(n_win) else "n_win"
    builders = [
        lambda: BiLevelRoutingAttention(64, num_heads=2, n_win=n_win, topk=topk),
        lambda: BRA(64, n_win=n_win, topk=topk),
        lambda: C2PSA_BRA(128, 128, n_win=n_win, topk=topk),
        lambda: C3k2_BRA(64, 64, n_win=n_win, topk=topk),
        lambda: bilevel_routing_attention(*torch.randn(3, 1, 8, 4, 4), num_heads=2, n_win=n_win, topk=topk),
    ]
    for build in builders:
        with pytest.raises(ValueError, match=name):
            build()

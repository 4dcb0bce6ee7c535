"""Where a biformer model's CPU latency goes: each BRA layer's share of latency and FLOPs, and what runs inside it.

For one image (batch 1) at each ``--imgsz``, a biformer model (default ``yolo11n-biformer.yaml``, random weights,
fused, eval) is compared with its stock twin (``yolo11n.yaml``: the config's name without ``-biformer``,
``-backbone`` or ``-neck``):

1. **Layer shares (PyTorch).** The BRA layers are the top-level layers ``model.model[i]`` that hold one of the
   package's modules (``BRA``, ``C2PSA_BRA``, ``C3k2_BRA``, ``BiLevelRoutingAttention``), found by ``isinstance``, not
   by index. The stock twin of layer ``i`` is the stock model's layer ``i`` where ours is an instance of its class
   (C2PSA_BRA of C2PSA, C3k2_BRA of C3k2); a standalone BRA row has none. Each layer's latency is timed with forward
   hooks (``perf_counter``) inside whole-model forwards, both models interleaved, median over ``--iters``; its share
   is that over the median whole-model time. FLOPs per layer are counted by ``torch.utils.flop_counter.FlopCounterMode``
   on the fused model (a multiply-add is 2 FLOPs; convolutions, matmuls and fused attention count, while top-k,
   gathers, softmax and elementwise ops count 0).
2. **Inside the BRA layers (PyTorch).** ``torch.profiler`` over ``--iters`` whole-model forwards. Forward hooks wrap
   each BRA (and twin) layer and some of its submodules in ``record_function`` labels (the operator and modules are
   not edited): an op is attributed to the innermost labelled module, and its inclusive CPU time goes to
   - a module's role where the module has one: ``qkv``, ``pe`` (LCE) and ``proj`` of an attention (ours or stock
     Ultralytics' ``Attention``), ``pos`` and ``mlp`` of a ``BRA`` block, and "rest of layer" for every op of the layer
     outside an attention or BRA block (C3k2's cv1/cv2/bottlenecks, C2PSA's FFN, residual adds there);
   - inside an attention or BRA block itself, a category by op name from :data:`TORCH_OP_CATEGORIES` (topk: routing
     top-k; sum/div: region means; index_select: gather; matmul/SDPA/softmax/masked_fill/mul: attention;
     reshape/permute/pad/copy_/cat...: layout; arange/lt/and: masks and index arithmetic); an op not in the table lands
     in "other". The routing affinity matmul is an ``aten::matmul`` like the token attention's and counts as attention
     (it is regions x regions, small next to the token attention).
   Only top-level ops are counted (an ``aten::matmul``'s inner ``aten::bmm`` is part of it), so nothing is counted
   twice; "no op (Python, hooks)" is the layer's time outside any op. The profiler inflates small ops, so these
   shares lean towards many-small-op categories; the latency shares of part 1 are unprofiled.
3. **Inside the BRA layers (ONNX Runtime)**, unless ``--no-onnx``: a static ONNX export of both models per size (to a
   temporary folder), run with ``SessionOptions.enable_profiling``; per-node kernel times after the warm-up runs are
   attributed by node name (``/model.16/bra/attn/qkv/conv/Conv`` is module ``model.16.bra.attn.qkv``, with the role
   that module has in PyTorch) and, inside an attention or BRA block, by op type from :data:`ONNX_OP_CATEGORIES`.
   Nodes that ONNX Runtime's graph optimiser fused or renamed beyond recognition count in "unattributed".

Output: the tables are printed and written to ``--out``/``latency_profile.md`` (default ``benchmarks/``), with the
machine facts of ``scripts/benchmark_latency.py`` (CPU, cores, versions, load average at the start and the end).

Usage:
    python scripts/profile_latency.py [--model yolo11n-biformer.yaml] [--stock yolo11n.yaml] [--imgsz 320,640]
        [--iters 50] [--warmup 5] [--threads 1] [--no-onnx] [--out benchmarks]

    Smoke test (numbers worthless; keep them out of benchmarks/):
    python scripts/profile_latency.py --iters 2 --warmup 1 --imgsz 320 --out /tmp/profile-smoke
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/ is no package: benchmark_latency sits beside us
import benchmark_latency as bench  # (machine facts, exports, ONNX Runtime sessions, the timing helpers)

LABEL = "latency-profile|"  # prefix of this script's record_function labels: LABEL + "<layer>|<role>"
LAYER, OPS = "rest of layer", "ops"  # roles: a whole layer; a module whose ops are categorised by op name
NO_OP, UNATTRIBUTED = "no op (Python, hooks)", "unattributed"

ROLE_QKV, ROLE_LCE, ROLE_PROJ = "qkv projection", "LCE (pe conv)", "output projection"
ROLE_POS, ROLE_MLP = "BRA block pos conv", "BRA block MLP"

LAYOUT, MASKS = "layout (reshape/permute/pad/copy/cat)", "masks and index arithmetic"
ATTENTION, OTHER = "attention", "other"
# PyTorch op name -> category, for ops that run directly in an attention or BRA block (not in its qkv/pe/proj/pos/mlp).
TORCH_OP_CATEGORIES = {
    **dict.fromkeys(["aten::topk"], "routing top-k"),
    **dict.fromkeys(["aten::sum", "aten::mean", "aten::div"], "region means"),
    **dict.fromkeys(["aten::index_select", "aten::gather", "aten::index", "aten::take"], "gather"),
    **dict.fromkeys(
        [
            "aten::matmul",
            "aten::bmm",
            "aten::mm",
            "aten::baddbmm",
            "aten::scaled_dot_product_attention",
            "aten::_scaled_dot_product_flash_attention_for_cpu",
            "aten::softmax",
            "aten::_softmax",
            "aten::masked_fill",
            "aten::mul",
        ],
        ATTENTION,
    ),
    **dict.fromkeys(["aten::add", "aten::add_"], "residual and elementwise adds"),
    **dict.fromkeys(
        [
            "aten::reshape",
            "aten::view",
            "aten::_unsafe_view",
            "aten::permute",
            "aten::transpose",
            "aten::t",
            "aten::contiguous",
            "aten::clone",
            "aten::copy_",
            "aten::pad",
            "aten::constant_pad_nd",
            "aten::flatten",
            "aten::unflatten",
            "aten::split",
            "aten::split_with_sizes",
            "aten::chunk",
            "aten::slice",
            "aten::select",
            "aten::narrow",
            "aten::expand",
            "aten::unsqueeze",
            "aten::squeeze",
            "aten::cat",
            "aten::stack",
            "aten::as_strided",
            "aten::empty",
            "aten::empty_like",
            "aten::to",
            "aten::_to_copy",
            "aten::detach",
            "aten::alias",
            "aten::unbind",
        ],
        LAYOUT,
    ),
    **dict.fromkeys(["aten::arange", "aten::lt", "aten::__and__", "aten::bitwise_and", "aten::bitwise_not"], MASKS),
    **dict.fromkeys(["aten::conv2d", "aten::convolution", "aten::_convolution", "aten::silu"], "other convolutions"),
}

# ONNX op type -> category, the same categories for nodes of an attention or BRA block outside its role submodules.
ONNX_OP_CATEGORIES = {
    **dict.fromkeys(["TopK"], "routing top-k"),
    **dict.fromkeys(["ReduceSum", "ReduceMean", "Div"], "region means"),
    **dict.fromkeys(["Gather", "GatherElements", "GatherND"], "gather"),
    **dict.fromkeys(["MatMul", "FusedMatMul", "Softmax", "Where", "Mul"], ATTENTION),
    **dict.fromkeys(["Add"], "residual and elementwise adds"),
    **dict.fromkeys(
        [
            "Reshape",
            "Transpose",
            "Pad",
            "Slice",
            "Concat",
            "Split",
            "Flatten",
            "Unsqueeze",
            "Squeeze",
            "Expand",
            "Shape",
            "Cast",
            "Identity",
        ],
        LAYOUT,
    ),
    **dict.fromkeys(["Range", "Less", "And", "Not", "Equal", "Greater", "ConstantOfShape"], MASKS),
    **dict.fromkeys(["Conv", "FusedConv", "Sigmoid"], "other convolutions"),
}


# Row order of the breakdown tables: BRA's steps in the order they run, then the rest; a category not listed (none is
# expected) goes last.
CATEGORY_ORDER = [
    ROLE_QKV, "region means", "routing top-k", MASKS, "gather", ATTENTION, LAYOUT, ROLE_LCE, ROLE_PROJ,
    "residual and elementwise adds", ROLE_POS, ROLE_MLP, "other convolutions", OTHER, UNATTRIBUTED, NO_OP, LAYER,
]  # fmt: skip


def torch_op_category(name: str) -> str:
    """Category of a PyTorch op run directly by an attention or BRA block; ``"other"`` for an op not in the table."""
    return TORCH_OP_CATEGORIES.get(name, OTHER)


def onnx_op_category(op_type: str) -> str:
    """Category of an ONNX node of an attention or BRA block; ``"other"`` for an op type not in the table."""
    return ONNX_OP_CATEGORIES.get(op_type, OTHER)


# ---------------------------------------------------------------------------------------------------------------------
# Models, layers and module roles
# ---------------------------------------------------------------------------------------------------------------------


def stock_twin_config(config: str) -> str:
    """``yolo11n-biformer.yaml`` -> ``yolo11n.yaml``; ablations (``-backbone``, ``-neck``) map to the plain detector."""
    return config.replace("-biformer", "").replace("-backbone", "").replace("-neck", "")


def routing_layer_indices(model) -> list[int]:
    """Indices ``i`` of the top-level layers ``model.model[i]`` that hold one of the package's BRA modules."""
    from ultralytics_biformer.modules import BRA, C2PSA_BRA, BiLevelRoutingAttention, C3k2_BRA

    ours = (BRA, C2PSA_BRA, C3k2_BRA, BiLevelRoutingAttention)
    return [i for i, layer in enumerate(model.model) if any(isinstance(m, ours) for m in layer.modules())]


def twin_layer_indices(ours, stock, indices: list[int]) -> dict[int, int | None]:
    """Layer ``i`` -> ``i`` where the stock model's layer ``i`` is the class ours derives from, else None."""
    twins = {}
    for i in indices:
        stock_layer = stock.model[i] if i < len(stock.model) else None
        same_kind = stock_layer is not None and isinstance(ours.model[i], type(stock_layer))
        twins[i] = i if same_kind and type(stock_layer) is not type(ours.model[i]) else None
    return twins


def module_roles(model, indices: list[int]) -> dict[str, tuple[int, str]]:
    """Qualified module name -> (layer index, role) for the layers ``indices`` and their labelled submodules.

    Roles: :data:`LAYER` for the layer itself, :data:`OPS` for an attention (``Attention``, ours included) or ``BRA``
    block, whose own ops are categorised by op name, and a fixed category for their projection and conv submodules.
    """
    from ultralytics.nn.modules.block import Attention

    from ultralytics_biformer.modules import BRA

    roles = {}
    for i in indices:
        prefix = f"model.{i}"
        roles[prefix] = (i, LAYER)
        for name, module in model.model[i].named_modules(prefix=prefix):
            if isinstance(module, Attention):
                roles[name] = (i, OPS)
                roles.update(
                    {f"{name}.qkv": (i, ROLE_QKV), f"{name}.pe": (i, ROLE_LCE), f"{name}.proj": (i, ROLE_PROJ)}
                )
            elif isinstance(module, BRA):
                roles[name] = (i, OPS)
                roles.update({f"{name}.pos": (i, ROLE_POS), f"{name}.mlp": (i, ROLE_MLP)})
    return roles


def build(config: str):
    """A fused, eval-mode detection model of ``config`` with seeded random weights."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    import ultralytics_biformer  # noqa: F401  (registers the configs also where auto-activation is off)

    torch.manual_seed(0)
    return DetectionModel(config, verbose=False).fuse(verbose=False).eval()


# ---------------------------------------------------------------------------------------------------------------------
# Part 1: layer latency and FLOP shares
# ---------------------------------------------------------------------------------------------------------------------


def layer_flops(model, imgsz: int) -> tuple[int, dict[int, int]]:
    """Whole-model FLOPs and FLOPs per top-level layer, by ``torch.utils.flop_counter.FlopCounterMode``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, imgsz, imgsz))
    counts = counter.get_flop_counts()
    prefix = f"{type(model).__name__}.model."
    per_layer = {int(k[len(prefix) :]): sum(v.values()) for k, v in counts.items() if re.fullmatch(rf"{prefix}\d+", k)}
    return counter.get_total_flops(), per_layer


def layer_latency(models: dict, imgsz: int, warmup: int, iters: int) -> dict[str, tuple[float, dict[int, float]]]:
    """Per model: median whole-forward ms and median ms of each top-level layer, the models timed interleaved."""
    import torch

    times = {name: defaultdict(list) for name in models}
    handles = []
    for name, model in models.items():
        for i, layer in enumerate(model.model):
            started = {}
            handles.append(layer.register_forward_pre_hook(lambda m, a, s=started: s.update(t=time.perf_counter())))
            handles.append(
                layer.register_forward_hook(
                    lambda m, a, out, s=started, t=times[name][i]: t.append(time.perf_counter() - s["t"])
                )
            )
    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    try:
        with torch.inference_mode():
            for model in models.values():
                for _ in range(warmup):
                    model(x)
            for per_layer in times.values():
                for samples in per_layer.values():
                    samples.clear()  # warm-up calls out (the hooks hold these lists: clear them, not the dict)
            total = bench.median_ms({name: (lambda m=m: m(x)) for name, m in models.items()}, 0, iters)
    finally:
        for handle in handles:
            handle.remove()
    return {name: (total[name], {i: 1000 * median(t) for i, t in times[name].items()}) for name in models}


def median(values: list[float]) -> float:
    """The median as the shared timing reports it: for an even count the upper middle value (always one measured)."""
    return sorted(values)[len(values) // 2]


# ---------------------------------------------------------------------------------------------------------------------
# Part 2: inside the layers, PyTorch
# ---------------------------------------------------------------------------------------------------------------------


def label(layer: int, role: str) -> str:
    return f"{LABEL}{layer}|{role}"


def parse_label(name: str) -> tuple[int, str] | None:
    """``(layer, role)`` of one of this script's labels, None for any other event name."""
    if not name.startswith(LABEL):
        return None
    layer, role = name[len(LABEL) :].split("|", 1)
    return int(layer), role


def add_labels(model, roles: dict[str, tuple[int, str]]) -> list:
    """Forward hooks that open a ``record_function`` label for each module in ``roles``; returns the handles."""
    import torch

    handles = []
    for name, module in model.named_modules():
        if name in roles:
            stack = []
            text = label(*roles[name])

            def enter(m, args, stack=stack, text=text):
                stack.append(torch.autograd.profiler.record_function(text))
                stack[-1].__enter__()

            def leave(m, args, out, stack=stack):
                stack.pop().__exit__(None, None, None)

            handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    return handles


def attribute_events(events) -> dict[int, dict[str, float]]:
    """Microseconds per layer and category, per forward, from profiler events labelled by :func:`add_labels`.

    Args:
        events: Events with ``name``, ``cpu_time_total`` (µs, inclusive) and ``cpu_children``, as
            ``torch.profiler.profile().events()`` gives; only the top-level layer labels and what they contain count.

    Returns:
        (dict[int, dict[str, float]]): Layer -> category -> mean µs per forward; :data:`NO_OP` is the layer's time
        outside any op.
    """
    totals: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    forwards: dict[int, int] = defaultdict(int)

    def visit(event, layer: int, role: str) -> float:
        counted = 0.0
        for child in event.cpu_children:
            parsed = parse_label(child.name)
            if parsed is not None:
                counted += visit(child, *parsed)
            elif not child.name.startswith("profiler::"):  # our labels' own enter/exit calls
                category = torch_op_category(child.name) if role == OPS else role
                totals[layer][category] += child.cpu_time_total
                counted += child.cpu_time_total
        return counted

    for event in events:
        parsed = parse_label(event.name)
        if parsed is not None and parsed[1] == LAYER:
            layer = parsed[0]
            forwards[layer] += 1
            totals[layer][NO_OP] += max(0.0, event.cpu_time_total - visit(event, layer, LAYER))
    return {layer: {c: us / forwards[layer] for c, us in cats.items()} for layer, cats in totals.items()}


def torch_breakdown(model, roles, imgsz: int, warmup: int, iters: int) -> dict[int, dict[str, float]]:
    """:func:`attribute_events` of ``iters`` profiled whole-model forwards after ``warmup`` unprofiled ones."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    handles = add_labels(model, roles)
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(iters):
                    model(x)
    finally:
        for handle in handles:
            handle.remove()
    return attribute_events(prof.events())


# ---------------------------------------------------------------------------------------------------------------------
# Part 3: inside the layers, ONNX Runtime
# ---------------------------------------------------------------------------------------------------------------------


def node_module(node_name: str) -> str:
    """The PyTorch module name of an exported node: ``/model.10/m/m.0/attn/qkv/conv/Conv`` -> ``model.10.m.0.attn.qkv.conv``.

    The exporter's scopes name a container's child by its full name after the container's (``m/m.0``); the child's
    name alone is kept. The node's own name (the last part) is dropped.
    """
    parts: list[str] = []
    for scope in node_name.strip("/").split("/")[:-1]:
        if parts and scope.startswith(parts[-1] + "."):
            parts[-1] = scope
        else:
            parts.append(scope)
    return ".".join(parts)


def role_of_module(module: str, roles: dict[str, tuple[int, str]]) -> tuple[int, str] | None:
    """The ``(layer, role)`` of the innermost module in ``roles`` that contains ``module``; None outside them all."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        found = roles.get(".".join(parts[:n]))
        if found is not None:
            return found
    return None


def attribute_ort_profile(events: list[dict], roles: dict[str, tuple[int, str]], skip_runs: int):
    """Microseconds per layer and category per run, and per-layer totals, from an ONNX Runtime profile.

    Args:
        events (list[dict]): The profile JSON (``enable_profiling``): ``Node`` events named ``<node>_kernel_time``
            with ``args.op_name``, and one ``Session`` event ``model_run`` per run.
        roles (dict): :func:`module_roles` of the PyTorch model the graph was exported from.
        skip_runs (int): Leading runs (warm-up) left out.

    Returns:
        (tuple): ``(breakdown, layer_us, total_us)``: layer -> category -> µs per run; layer -> µs per run of all
        its nodes (:data:`UNATTRIBUTED` nodes of no labelled module are left out); µs per run of every node.
    """
    runs = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    start = runs[skip_runs] if len(runs) > skip_runs else float("inf")
    n_runs = max(len(runs) - skip_runs, 1)
    breakdown: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    layer_us: dict[int, float] = defaultdict(float)
    total = 0.0
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time") or e["ts"] < start:
            continue
        node = e["name"][: -len("_kernel_time")]
        total += e["dur"]
        found = role_of_module(node_module(node), roles)
        if found is None:
            layer = layer_of_node(node)
            if layer is not None and any(v[0] == layer for v in roles.values()):
                breakdown[layer][UNATTRIBUTED] += e["dur"]  # in a profiled layer, but by a name we cannot place
                layer_us[layer] += e["dur"]
            continue
        layer, role = found
        category = onnx_op_category(e.get("args", {}).get("op_name", "")) if role == OPS else role
        breakdown[layer][category] += e["dur"]
        layer_us[layer] += e["dur"]
    per_run = {layer: {c: us / n_runs for c, us in cats.items()} for layer, cats in breakdown.items()}
    return per_run, {layer: us / n_runs for layer, us in layer_us.items()}, total / n_runs


def layer_of_node(node_name: str) -> int | None:
    """The model layer an exported node belongs to (``/model.16/...`` -> 16), None for a node of no layer."""
    match = re.match(r"/?model\.(\d+)/", node_name)
    return int(match.group(1)) if match else None


def layer_node_counts(node_names: list[str]) -> dict[int | None, int]:
    """Nodes of an exported graph per model layer (:func:`layer_of_node`); None counts the nodes of no layer."""
    counts: dict[int | None, int] = defaultdict(int)
    for name in node_names:
        counts[layer_of_node(name)] += 1
    return dict(counts)


def ort_profile(config: str, roles, imgsz: int, threads: int, warmup: int, iters: int, folder: Path):
    """:func:`attribute_ort_profile` of a static ONNX export of ``config`` run ``warmup + iters`` times, and the
    export's :func:`layer_node_counts`."""
    import onnx

    path = bench.export(config, "onnx", imgsz, False, folder)
    nodes = layer_node_counts([node.name for node in onnx.load(str(path)).graph.node])
    session = bench.ort_session(path, threads, profile_prefix=str(folder / f"{path.stem}-{imgsz}"))
    name = session.get_inputs()[0].name
    x = bench.random_image(imgsz)
    for _ in range(warmup + iters):
        session.run(None, {name: x})
    events = json.loads(Path(session.end_profiling()).read_text())
    return (*attribute_ort_profile(events, roles, warmup), nodes)


# ---------------------------------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------------------------------


def pct(part: float | None, whole: float | None) -> str:
    return "-" if part is None or not whole else f"{100 * part / whole:.1f}%"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def layer_share_table(layers, twins, ours_kind, stock_kind, ours_time, stock_time, ours_flops, stock_flops) -> str:
    """Markdown: each BRA layer's ms, latency share and FLOP share next to its stock twin's, plus the whole models.

    ``*_time`` is ``(total_ms, {layer: ms})`` and ``*_flops`` ``(total, {layer: flops})``; ``*_kind`` maps a layer to
    its class name.
    """
    lines = [
        "| layer | ours | ms | % latency | % FLOPs | stock twin | ms | % latency | % FLOPs | extra ms |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for i in layers:
        j = twins.get(i)
        ours_ms, twin_ms = ours_time[1].get(i), (stock_time[1].get(j) if j is not None else None)
        extra = ours_ms - twin_ms if ours_ms is not None and twin_ms is not None else ours_ms
        lines.append(
            f"| {i} | {ours_kind[i]} | {ms(ours_ms)} | {pct(ours_ms, ours_time[0])} | "
            f"{pct(ours_flops[1].get(i), ours_flops[0])} | {stock_kind.get(j, 'none') if j is not None else 'none'} | "
            f"{ms(twin_ms)} | {pct(twin_ms, stock_time[0])} | "
            f"{pct(stock_flops[1].get(j), stock_flops[0]) if j is not None else '-'} | {ms(extra)} |"
        )
    extra_total = ours_time[0] - stock_time[0]
    lines.append(
        f"| all | whole model | {ms(ours_time[0])} | 100% | {ours_flops[0] / 1e9:.2f} GFLOPs | whole model | "
        f"{ms(stock_time[0])} | 100% | {stock_flops[0] / 1e9:.2f} GFLOPs | {ms(extra_total)} |"
    )
    return "\n".join(lines)


def breakdown_table(layers, twins, ours: dict[int, dict[str, float]], stock: dict[int, dict[str, float]]) -> str:
    """Markdown: a row per category, ms per forward for each BRA layer and its twin, totals, and ours' shares.

    ``ours`` and ``stock`` map layer -> category -> µs per forward.
    """
    seen = {c for i in layers for c in ours.get(i, {})}
    seen |= {c for j in twins.values() if j is not None for c in stock.get(j, {})}
    categories = [c for c in CATEGORY_ORDER if c in seen] + sorted(seen - set(CATEGORY_ORDER))
    head = (
        "| category | " + " | ".join(f"{i} ours | {i} stock" for i in layers) + " | all ours | all stock | share ours |"
    )
    lines = [head, "|---|" + "---:|" * (2 * len(layers) + 3)]
    grand = sum(sum(ours.get(i, {}).values()) for i in layers)
    for c in categories:
        row, all_ours, all_stock = [], 0.0, 0.0
        for i in layers:
            a = ours.get(i, {}).get(c, 0.0)
            b = stock.get(twins[i], {}).get(c, 0.0) if twins.get(i) is not None else None
            all_ours += a
            all_stock += b or 0.0
            row += [ms(a / 1000), ms(None if b is None else b / 1000)]
        lines.append(
            f"| {c} | " + " | ".join(row) + f" | {ms(all_ours / 1000)} | {ms(all_stock / 1000)} | "
            f"{pct(all_ours, grand)} |"
        )
    totals = [sum(ours.get(i, {}).values()) for i in layers]
    twin_totals = [sum(stock.get(twins[i], {}).values()) if twins.get(i) is not None else None for i in layers]
    row = [x for a, b in zip(totals, twin_totals) for x in (ms(a / 1000), ms(None if b is None else b / 1000))]
    lines.append(
        "| total | " + " | ".join(row) + f" | {ms(sum(totals) / 1000)} | "
        f"{ms(sum(b or 0 for b in twin_totals) / 1000)} | 100% |"
    )
    return "\n".join(lines)


def ort_layer_table(layers, twins, ours_layers, ours_total, stock_layers, stock_total, ours_nodes, stock_nodes) -> str:
    """Markdown: each BRA layer's kernel ms per run, share of the model's kernel time and graph nodes (after
    onnxslim, as exported), next to its twin's."""
    lines = [
        "| layer | ours ms | ours % kernel time | ours nodes | stock ms | stock % kernel time | stock nodes |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for i in layers:
        j = twins.get(i)
        a, b = ours_layers.get(i), stock_layers.get(j) if j is not None else None
        lines.append(
            f"| {i} | {ms(None if a is None else a / 1000)} | {pct(a, ours_total)} | {ours_nodes.get(i, '-')} | "
            f"{ms(None if b is None else b / 1000)} | {pct(b, stock_total)} | "
            f"{'-' if j is None else stock_nodes.get(j, '-')} |"
        )
    lines.append(
        f"| all nodes | {ms(ours_total / 1000)} | 100% | {sum(ours_nodes.values())} | {ms(stock_total / 1000)} | 100% "
        f"| {sum(stock_nodes.values())} |"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------------


def profile_size(args, ours, stock, layers, twins, imgsz: int, folder: Path) -> str:
    """Every table of one image size, as Markdown."""
    kind = {i: type(ours.model[i]).__name__ for i in layers}
    stock_kind = {j: type(stock.model[j]).__name__ for j in twins.values() if j is not None}
    ours_roles = module_roles(ours, layers)
    stock_roles = module_roles(stock, [j for j in twins.values() if j is not None])

    print(f"imgsz {imgsz}: layer latency and FLOPs", file=sys.stderr, flush=True)
    timed = layer_latency({"ours": ours, "stock": stock}, imgsz, args.warmup, args.iters)
    flops = layer_flops(ours, imgsz), layer_flops(stock, imgsz)
    sections = [
        f"## imgsz {imgsz}",
        "",
        f"### Layer shares, PyTorch ({args.model} against {args.stock})",
        "",
        layer_share_table(layers, twins, kind, stock_kind, timed["ours"], timed["stock"], *flops),
        "",
    ]
    print(f"imgsz {imgsz}: torch.profiler breakdown", file=sys.stderr, flush=True)
    ours_parts = torch_breakdown(ours, ours_roles, imgsz, args.warmup, args.iters)
    stock_parts = torch_breakdown(stock, stock_roles, imgsz, args.warmup, args.iters)
    sections += [
        "### Inside the BRA layers, PyTorch (torch.profiler, ms per forward)",
        "",
        breakdown_table(layers, twins, ours_parts, stock_parts),
        "",
    ]
    if not args.no_onnx:
        print(f"imgsz {imgsz}: ONNX Runtime profile", file=sys.stderr, flush=True)
        try:
            ours_ort = ort_profile(args.model, ours_roles, imgsz, args.threads, args.warmup, args.iters, folder)
            stock_ort = ort_profile(args.stock, stock_roles, imgsz, args.threads, args.warmup, args.iters, folder)
            sections += [
                "### Inside the BRA layers, ONNX Runtime (static export, node kernel times, ms per run)",
                "",
                ort_layer_table(
                    layers, twins, ours_ort[1], ours_ort[2], stock_ort[1], stock_ort[2], ours_ort[3], stock_ort[3]
                ),
                "",
                breakdown_table(layers, twins, ours_ort[0], stock_ort[0]),
                "",
            ]
        except Exception as e:  # noqa: BLE001 - the PyTorch tables stand without it
            sections += ["### ONNX Runtime", "", f"failed: {bench.one_line(e)}", ""]
    return "\n".join(sections)


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="yolo11n-biformer.yaml", help="biformer model YAML")
    parser.add_argument("--stock", default=None, help="stock twin YAML (default: the model's name without -biformer)")
    parser.add_argument("--imgsz", type=bench.int_list, default=[320, 640], help="comma-separated image sizes")
    parser.add_argument("--iters", type=int, default=50, help="timed or profiled forwards per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed forwards first")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch and ONNX Runtime intra-op threads")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime profile")
    parser.add_argument("--out", type=Path, default=Path("benchmarks"), help="folder for latency_profile.md")
    args = parser.parse_args(argv)
    try:
        bench.check_timing(args.warmup, args.iters)
    except ValueError as e:
        parser.error(str(e).replace("rounds", "iters"))
    if args.threads < 1:
        parser.error(f"--threads must be a positive integer, got {args.threads}")
    args.stock = args.stock or stock_twin_config(args.model)

    import torch

    torch.set_num_threads(args.threads)
    facts = bench.machine_facts()
    started = time.perf_counter()
    ours, stock = build(args.model), build(args.stock)
    layers = routing_layer_indices(ours)
    if not layers:
        parser.error(f"{args.model} has no layer holding a BRA module")
    twins = twin_layer_indices(ours, stock, layers)
    with tempfile.TemporaryDirectory(prefix="latency-profile-") as tmp:
        sections = [profile_size(args, ours, stock, layers, twins, s, Path(tmp)) for s in args.imgsz]
    facts["1-minute load average at end"] = bench.load_average()
    facts["settings"] = (
        f"batch 1, {args.threads} thread(s), {args.warmup} warm-up and {args.iters} timed/profiled forwards per "
        "measurement; FLOPs by torch.utils.flop_counter.FlopCounterMode on the fused model (multiply-add = 2)"
    )
    facts["BRA layers"] = ", ".join(
        f"{i} {type(ours.model[i]).__name__} (twin: {'none' if twins[i] is None else type(stock.model[twins[i]]).__name__})"
        for i in layers
    )
    facts["command"] = "`python scripts/profile_latency.py " + " ".join(sys.argv[1:] if argv is None else argv) + "`"
    facts["total run time"] = f"{time.perf_counter() - started:.0f} s"
    header = ["# Where the latency of BRA goes", ""] + [f"- {k}: {v}" for k, v in facts.items()] + [""]
    report = "\n".join(header + sections)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency_profile.md").write_text(report)
    print(report)
    print(f"wrote {args.out / 'latency_profile.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()

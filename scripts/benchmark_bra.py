"""Benchmark bi-level routing attention: our operator against the gather-based BiFormer formulation and dense attention.

Three implementations of one computation on ``(B, C, H, W)`` maps, q and k with ``heads*dk`` channels, v with
``heads*dv``:

- ``ours``: :func:`ultralytics_biformer.bilevel_routing_attention` with its default (automatic) path choice.
- ``gather``: bi-level routing attention the way published BiFormer code computes it, written here as the yardstick:
  region partition, region means, top-k routing, then ``torch.gather`` of the routed key and value regions with index
  tensors expanded to the full gathered shape (the official ``KVGather``), explicit matmul and softmax. Like the
  official code it needs ``H`` and ``W`` divisible by ``n_win``.
- ``dense``: global attention over all tokens with explicit matmul and softmax, as stock YOLO11 ``Attention`` does.

Head split as in the modules: ``heads = max(C // 64, 1)``, ``dv = C / heads``, ``dk = dv / 2``. The YOLO shapes run
with two routings: ``shipped``, the per-level ``n_win, topk`` of the model configs in ``ultralytics_biformer/cfg/`` (10x10-token regions at
imgsz 640), and ``uniform``, ``topk=4`` with the largest ``n_win <= 8`` that divides the map (8 at 80x80 and 40x40, 5
at 20x20), which is BiFormer's own convention of one ``n_win`` for all stages as far as the gather baseline allows.

Timing: the best (minimum) of interleaved repeats, each repeat running every implementation once; the median is in the
CSV too. Other processes can only add time to a run, so on a shared machine the minimum is the stable estimate, and
interleaving spreads load spikes over all implementations alike. An implementation whose runs have used up
``--budget`` seconds sits out the remaining rounds, and one whose warm-up alone did keeps the warm-up as its one
sample. Forward runs under ``torch.no_grad``;
forward+backward backpropagates a fixed random gradient into q, k and v.

Peak memory is taken on every timed run, beyond what exists before it (inputs, output gradient): on CUDA as
``torch.cuda.max_memory_allocated`` over the memory allocated before the run; on CPU as the resident-set high-water
mark ``VmHWM`` (reset through ``/proc/self/clear_refs`` before each run) over the resident size before the run, with
glibc's mmap threshold pinned at 64 KiB so that every freed tensor goes back to the OS at once and none is reused
unseen. It includes the output and, for forward+backward, the input gradients, which all implementations share.

Usage:
    python scripts/benchmark_bra.py                                # CPU float32 -> benchmarks/
    python scripts/benchmark_bra.py --threads 1 --out-dir benchmarks/threads-1   # a control on a shared machine
    python scripts/benchmark_bra.py --device cuda --dtype bfloat16 --out-dir benchmarks/cuda-bf16
    python scripts/benchmark_bra.py --profile                      # plus a torch.profiler table of ours
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from einops import rearrange

from ultralytics_biformer.functional import bilevel_routing_attention

MODES = ("fwd", "fwd+bwd")
MIB = 2**20


@dataclass(frozen=True)
class Case:
    """One benchmark shape: ``batch x channels x size x size`` maps, routed with ``n_win`` and ``topk``."""

    suite: str
    batch: int
    channels: int
    size: int
    n_win: int
    topk: int

    @property
    def heads(self) -> int:
        return max(self.channels // 64, 1)

    @property
    def dv(self) -> int:
        return self.channels // self.heads

    @property
    def dk(self) -> int:
        return self.dv // 2

    @property
    def tokens(self) -> int:
        return self.size * self.size

    @property
    def shape(self) -> str:
        return f"B{self.batch} {self.channels}ch {self.size}x{self.size}"

    def inputs(self, device: str, dtype: torch.dtype, requires_grad: bool = False, seed: int = 0):
        """Random ``q, k, v`` and an output gradient of the right shapes."""
        gen = torch.Generator().manual_seed(seed)
        shapes = [(self.batch, self.heads * d, self.size, self.size) for d in (self.dk, self.dk, self.dv, self.dv)]
        q, k, v, grad = (torch.randn(s, generator=gen).to(device, dtype) for s in shapes)
        return q.requires_grad_(requires_grad), k.requires_grad_(requires_grad), v.requires_grad_(requires_grad), grad


def ours(q, k, v, case: Case) -> torch.Tensor:
    """Our operator, with its default choice between the fused and the explicit attention path."""
    return bilevel_routing_attention(q, k, v, case.heads, case.n_win, case.topk)


def gather_baseline(q, k, v, case: Case) -> torch.Tensor:
    """Bi-level routing attention as the official BiFormer code computes it (``bra_legacy.py``), NCHW in and out.

    Region means route in the input dtype; ``KVGather`` selects routed regions with ``torch.gather`` over the key and
    value regions broadcast to every query region (a stride-0 view) and an index expanded to the full gathered shape;
    attention is an explicit matmul-softmax. Needs ``H`` and ``W`` divisible by ``n_win``.
    """
    n_win, heads, topk = case.n_win, case.heads, case.topk
    height, width = q.shape[-2:]
    if height % n_win or width % n_win:
        raise ValueError(f"the gather baseline needs H and W divisible by n_win={n_win}, got {height}x{width}")
    scale = (q.shape[1] // heads) ** -0.5
    q_pix, k_pix, v_pix = (rearrange(t, "n c (j h) (i w) -> n (j i) (h w) c", j=n_win, i=n_win) for t in (q, k, v))
    q_win, k_win = q_pix.mean(2).detach(), k_pix.mean(2).detach()  # (n, p2, c_qk): routing is not differentiated
    r_idx = ((q_win * scale) @ k_win.transpose(-2, -1)).topk(topk, dim=-1).indices  # (n, p2, topk)

    def kv_gather(kv):  # (n, p2, w2, c) -> (n, p2, topk, w2, c)
        n, p2, w2, c = kv.shape
        index = r_idx.view(n, p2, topk, 1, 1).expand(-1, -1, -1, w2, c)
        return torch.gather(kv.view(n, 1, p2, w2, c).expand(-1, p2, -1, -1, -1), dim=2, index=index)

    k_sel = rearrange(kv_gather(k_pix), "n p2 k w2 (m c) -> (n p2) m c (k w2)", m=heads)
    v_sel = rearrange(kv_gather(v_pix), "n p2 k w2 (m c) -> (n p2) m (k w2) c", m=heads)
    q_pix = rearrange(q_pix, "n p2 w2 (m c) -> (n p2) m w2 c", m=heads)
    out = ((q_pix * scale) @ k_sel).softmax(dim=-1) @ v_sel  # (n p2, m, w2, c_v)
    return rearrange(
        out, "(n j i) m (h w) c -> n (m c) (j h) (i w)", j=n_win, i=n_win, h=height // n_win, w=width // n_win
    )


def dense_attention(q, k, v, case: Case) -> torch.Tensor:
    """Global multi-head attention over all tokens, exactly as stock YOLO11 ``Attention`` computes it."""
    batch, _, height, width = q.shape
    q, k, v = (t.reshape(batch, case.heads, -1, height * width) for t in (q, k, v))
    attn = ((q * case.dk**-0.5).transpose(-2, -1) @ k).softmax(dim=-1)
    return (v @ attn.transpose(-2, -1)).reshape(batch, -1, height, width)


IMPLS = {"ours": ours, "gather": gather_baseline, "dense": dense_attention}


class PeakMemory:
    """Peak bytes a block of code allocates beyond what exists when it starts, on CPU or CUDA (see module docstring)."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        if not self.cuda:
            libc = ctypes.CDLL(None)
            if not hasattr(libc, "mallopt") or libc.mallopt(-3, 64 * 1024) != 1:  # -3: M_MMAP_THRESHOLD
                raise RuntimeError("CPU peak memory needs glibc's mallopt")
            with open("/proc/self/clear_refs", "w") as clear_refs:  # fails early where the reset is not allowed
                clear_refs.write("5")

    @staticmethod
    def _status_bytes(field: str) -> int:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) * 1024

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated()
        else:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # VmHWM := current resident size
            self.baseline = self._status_bytes("VmRSS")

    def stop(self) -> int:
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - self.baseline
        return self._status_bytes("VmHWM") - self.baseline


def run_once(impl, q, k, v, grad, case: Case, mode: str) -> None:
    """One forward (no autograd) or one forward+backward of ``impl``; the result is dropped, as in a real step."""
    if mode == "fwd":
        with torch.no_grad():
            impl(q, k, v, case)
    else:
        impl(q, k, v, case).backward(grad)


def measured_run(impl, q, k, v, grad, case: Case, mode: str, memory: PeakMemory) -> tuple[float, int]:
    """Seconds (device work included) and peak extra bytes of one :func:`run_once`."""
    for t in (q, k, v):
        t.grad = None  # before the baseline, so that freeing the last gradients does not hide new ones
    memory.start()
    start = time.perf_counter()
    run_once(impl, q, k, v, grad, case, mode)
    if memory.cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return seconds, memory.stop()


def measure_mode(case: Case, names: list[str], mode: str, tensors, args, memory: PeakMemory) -> dict[str, dict]:
    """Timed runs of every implementation in one mode: interleaved repeats after warm-ups, within the time budget."""
    samples, peaks, spent = {name: [] for name in names}, dict.fromkeys(names, 0), dict.fromkeys(names, 0.0)

    def run(name: str, warmup: bool) -> None:
        seconds, peak = measured_run(IMPLS[name], *tensors, case, mode, memory)
        spent[name] += seconds
        peaks[name] = max(peaks[name], peak)
        if not warmup or spent[name] >= args.budget:  # a warm-up that used up the budget is the one sample
            samples[name].append(seconds)

    for _ in range(args.warmup):
        for name in (n for n in names if spent[n] < args.budget):
            run(name, warmup=True)
    for _ in range(args.repeats):
        for name in (n for n in names if spent[n] < args.budget):
            run(name, warmup=False)
    return {
        name: {
            f"{mode}_ms": round(1e3 * min(samples[name]), 3),
            f"{mode}_median_ms": round(1e3 * statistics.median(samples[name]), 3),
            f"{mode}_runs": len(samples[name]),
            f"{mode}_peak_mib": round(peaks[name] / MIB, 1),
        }
        for name in names
    }


def measure_case(case: Case, names: list[str], args, memory: PeakMemory) -> list[dict]:
    """Best and median time and peak memory per implementation and mode (see :func:`measure_mode`)."""
    tensors = case.inputs(args.device, args.dtype, requires_grad=True)
    rows = {name: row_fields(case, name) for name in names}
    for mode in MODES:
        for name, fields in measure_mode(case, names, mode, tensors, args, memory).items():
            rows[name] |= fields
    return list(rows.values())


def row_fields(case: Case, name: str) -> dict:
    return asdict(case) | {"impl": name, "heads": case.heads, "dk": case.dk, "dv": case.dv, "tokens": case.tokens}


def verify(args) -> list[str]:
    """Check that the yardsticks compute what ours does, in float64: gather on a routed shape, dense with all regions."""
    lines = []
    for text, case, other in (
        ("gather baseline vs ours, topk=4 of 16 regions", Case("check", 2, 128, 32, 4, 4), "gather"),
        ("dense attention vs ours, topk = all 16 regions", Case("check", 2, 128, 32, 4, 16), "dense"),
    ):
        q, k, v, _ = case.inputs(args.device, torch.float64, seed=1)
        diff = (IMPLS[other](q, k, v, case) - ours(q, k, v, case)).abs().max().item()
        lines.append(
            f"- {text} ({case.shape}, heads={case.heads}, dk={case.dk}, dv={case.dv}): max abs diff {diff:.1e}"
        )
        if diff > 1e-9:
            raise SystemExit(f"yardstick mismatch: {lines[-1]}")
    return lines


def run_cases(cases: list[Case], args, memory: PeakMemory, dense: bool = True) -> list[dict]:
    """Measure every implementation on every case (dense only where asked and within ``--dense-max-tokens``)."""
    rows = []
    for case in cases:
        names = [n for n in IMPLS if n != "dense" or (dense and case.tokens <= args.dense_max_tokens)]
        for row in measure_case(case, names, args, memory):
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def yolo_cases(batch: int) -> dict[str, list[Case]]:
    """P3, P4 and P5 of a 640 input under the two routings described in the module docstring."""
    levels = ((64, 80, 8, 2), (128, 40, 4, 4), (256, 20, 2, 2))  # channels, size, and the shipped n_win, topk
    return {
        "shipped": [Case("shipped", batch, c, size, n_win, topk) for c, size, n_win, topk in levels],
        "uniform": [
            Case("uniform", batch, c, size, max(n for n in range(1, 9) if size % n == 0), 4) for c, size, _, _ in levels
        ],
    }


def sweep_cases(batch: int, sizes: list[int], topk: int) -> list[Case]:
    """64 channels at growing square sizes, regions of 10x10 tokens (so the gather baseline divides every size)."""
    return [Case("sweep", batch, 64, size, max(size // 10, 1), topk) for size in sizes]


def geomean(values) -> float:
    values = list(values)
    return math.exp(sum(math.log(x) for x in values) / len(values))


def _fmt(x, spec=".1f") -> str:
    return "-" if x is None else format(x, spec)


def _lookup(rows: list[dict], case_row: dict, impl: str) -> dict | None:
    """The row of ``impl`` on the shape of ``case_row``; dense rows are shared by routings (dense does not route)."""
    keys = ("batch", "channels", "size") if impl == "dense" else ("suite", "batch", "channels", "size")
    return next((r for r in rows if r["impl"] == impl and all(r[k] == case_row[k] for k in keys)), None)


# Targets of the geometric means per routing suite: forward speed from issue 19 (2x with uniform routing, 1.6x with the
# shipped one), forward+backward speed and peak memory from the operator's first brief.
TARGETS = {
    "uniform": {
        "gather fwd_ms": 2.0,
        "gather fwd+bwd_ms": 2.5,
        "memory fwd_peak_mib": 0.5,
        "memory fwd+bwd_peak_mib": 0.5,
    },
    "shipped": {
        "gather fwd_ms": 1.6,
        "gather fwd+bwd_ms": 2.5,
        "memory fwd_peak_mib": 0.5,
        "memory fwd+bwd_peak_mib": 0.5,
    },
}


def yolo_section(suite: str, rows: list[dict]) -> list[str]:
    """Table and geometric-mean summary, against the targets, for one routing of the YOLO shapes."""
    lines = [
        (
            "| shape | heads x dk/dv | n_win, topk | mode | ours ms | gather ms | dense ms | speedup vs gather "
            "| speedup vs dense | ours MiB | gather MiB | dense MiB | memory ours/gather |"
        ),
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = {}
    for o in (r for r in rows if r["suite"] == suite and r["impl"] == "ours"):
        g, d = _lookup(rows, o, "gather"), _lookup(rows, o, "dense")
        for mode in MODES:
            ms, mib = f"{mode}_ms", f"{mode}_peak_mib"
            vs_gather, mem = g[ms] / o[ms], o[mib] / g[mib]
            vs_dense = d[ms] / o[ms] if d else None
            for key, value in (("gather " + ms, vs_gather), ("dense " + ms, vs_dense), ("memory " + mib, mem)):
                ratios.setdefault(key, []).append(value)
            lines.append(
                f"| {o['batch']}x{o['channels']}x{o['size']}x{o['size']} | {o['heads']} x {o['dk']}/{o['dv']} "
                f"| {o['n_win']}, {o['topk']} | {mode} | {o[ms]:.1f} | {g[ms]:.1f} | {_fmt(d and d[ms])} "
                f"| {vs_gather:.2f}x | {_fmt(vs_dense, '.2f')}x | {o[mib]:.0f} | {g[mib]:.0f} "
                f"| {_fmt(d and d[mib], '.0f')} | {mem:.2f} |"
            )
    lines += ["", "Geometric means over the three shapes:", ""]
    for text, key, higher in (
        ("forward speedup vs gather", "gather fwd_ms", True),
        ("forward+backward speedup vs gather", "gather fwd+bwd_ms", True),
        ("forward peak memory, ours / gather", "memory fwd_peak_mib", False),
        ("forward+backward peak memory, ours / gather", "memory fwd+bwd_peak_mib", False),
        ("forward speedup vs dense", "dense fwd_ms", True),
        ("forward+backward speedup vs dense", "dense fwd+bwd_ms", True),
    ):
        if None in ratios.get(key, [None]):
            continue
        value = geomean(ratios[key])
        target = TARGETS.get(suite, {}).get(key)
        verdict = ""
        if target is not None:
            met = value >= target if higher else value <= target
            verdict = f" (target {'>=' if higher else '<='} {target}: {'met' if met else 'MISSED'})"
        lines.append(f"- {text}: **{value:.2f}{'x' if higher else ''}**{verdict}")
    return lines


def markdown_report(rows: list[dict], checks: list[str], args, elapsed: float, load: tuple[float, float]) -> str:
    """Environment, yardstick checks, the YOLO-shape tables with summaries, and the sweep table."""
    lines = [
        "# Bi-level routing attention benchmark",
        "",
        f"- command: `{' '.join(['python', 'scripts/benchmark_bra.py', *sys.argv[1:]])}`",
        (
            f"- torch {torch.__version__}, device `{args.device}` ({device_name(args.device)}), {args.dtype}, "
            f"{torch.get_num_threads()} intra-op threads, Python {platform.python_version()}"
        ),
        (
            f"- 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end on {os.cpu_count()} CPUs"
            + (" (above the CPU count: other processes competed for them)" if max(load) > os.cpu_count() else "")
        ),
        (
            f"- times: best of up to {args.repeats} interleaved runs (medians in the CSV) after {args.warmup} "
            f"warm-up run(s), at most {args.budget:g} s per implementation and mode; forward under `no_grad`, "
            "forward+backward into q, k and v"
        ),
        "- peak memory: "
        + (
            "`torch.cuda.max_memory_allocated` minus memory allocated before the run"
            if args.device.startswith("cuda")
            else "resident high-water mark (`VmHWM`, reset before each run) minus resident size before the run"
        )
        + "; includes the output and input gradients",
        (
            "- speedup = yardstick time / ours time (above 1: ours is faster); memory ratio = ours / gather "
            "(below 1: ours needs less)"
        ),
        f"- total run time {elapsed:.0f} s",
        "",
        "Yardstick checks (float64):",
        "",
        *checks,
        "",
        "## YOLO shapes, shipped routing (per-level `n_win, topk` of `ultralytics_biformer/cfg/`)",
        "",
        *yolo_section("shipped", rows),
        "",
        "## YOLO shapes, uniform routing (`topk=4`, largest `n_win <= 8` dividing the map)",
        "",
        *yolo_section("uniform", rows),
        "",
        "## Resolution sweep",
        "",
        "| tokens | shape | n_win, topk | mode | ours ms | gather ms | dense ms | ours MiB | gather MiB | dense MiB |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for o in (r for r in rows if r["suite"] == "sweep" and r["impl"] == "ours"):
        g, d = _lookup(rows, o, "gather"), _lookup(rows, o, "dense")
        for mode in MODES:
            ms, mib = f"{mode}_ms", f"{mode}_peak_mib"
            lines.append(
                f"| {o['tokens']} | {o['batch']}x{o['channels']}x{o['size']}x{o['size']} | {o['n_win']}, {o['topk']} "
                f"| {mode} | {o[ms]:.1f} | {g[ms]:.1f} | {_fmt(d and d[ms])} | {o[mib]:.0f} | {g[mib]:.0f} "
                f"| {_fmt(d and d[mib], '.0f')} |"
            )
    lines += [
        "",
        f"Dense attention is left out above {args.dense_max_tokens} tokens (its score matrix grows as tokens squared).",
        "",
        "![time vs tokens](bra_sweep.png)",
        "",
    ]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, args) -> None:
    """Log-log time against token count, one line per implementation, forward and forward+backward side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, mode in zip(axes, MODES):
        for name in IMPLS:
            points = sorted((r["tokens"], r[f"{mode}_ms"]) for r in rows if r["impl"] == name)
            if points:
                ax.plot(*zip(*points), marker="o", label=name)
        ax.set(xscale="log", yscale="log", xlabel="tokens (H*W)", title=mode)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("best time (ms)")
    axes[0].legend()
    fig.suptitle(
        f"Routing attention on {args.device}, {str(args.dtype).split('.')[-1]}: batch {rows[0]['batch']}, "
        f"{rows[0]['channels']} channels, 10x10-token regions, topk={rows[0]['topk']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def profile_ours(cases: list[Case], args) -> None:
    """Print where our operator spends its forward+backward time, per case."""
    from torch.profiler import ProfilerActivity, profile

    cuda = args.device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    for case in cases:
        q, k, v, grad = case.inputs(args.device, args.dtype, requires_grad=True)
        run_once(ours, q, k, v, grad, case, "fwd+bwd")
        with profile(activities=activities) as prof:
            for _ in range(args.repeats):
                run_once(ours, q, k, v, grad, case, "fwd+bwd")
            if cuda:
                torch.cuda.synchronize()
        print(f"\n### ours, forward+backward x{args.repeats}, {case.shape}, n_win={case.n_win}, topk={case.topk}")
        print(
            prof.key_averages().table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total", row_limit=15)
        )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--batch", type=int, default=8, help="batch of the YOLO shapes")
    parser.add_argument("--sweep-batch", type=int, default=1)
    parser.add_argument("--sweep-sizes", type=int, nargs="+", default=[20, 40, 60, 80, 120, 160])
    parser.add_argument("--sweep-topk", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--budget", type=float, default=10.0, help="seconds of runs per implementation and mode")
    parser.add_argument("--dense-max-tokens", type=int, default=None, help="default: 15000 on CPU, unlimited on CUDA")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parents[1] / "benchmarks")
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table of ours per YOLO shape")
    args = parser.parse_args(argv)
    args.dtype = getattr(torch, args.dtype)
    if args.dense_max_tokens is None:
        args.dense_max_tokens = 10**9 if args.device.startswith("cuda") else 15000
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    memory = PeakMemory(args.device)  # first: it pins the allocator's behaviour before anything large is allocated
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    checks = verify(args)
    print("\n".join(checks), flush=True)
    yolo = yolo_cases(args.batch)
    rows = run_cases(yolo["shipped"], args, memory)
    rows += run_cases(yolo["uniform"], args, memory, dense=False)  # dense does not route: its shipped rows serve
    sweep = run_cases(sweep_cases(args.sweep_batch, args.sweep_sizes, args.sweep_topk), args, memory)
    rows += sweep
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with open(args.out_dir / "bra_benchmark.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(sweep, args.out_dir / "bra_sweep.png", args)
    report = markdown_report(rows, checks, args, time.perf_counter() - start, (load_start, os.getloadavg()[0]))
    (args.out_dir / "bra_benchmark.md").write_text(report)
    print("\n" + report)
    if args.profile:
        profile_ours(yolo["shipped"] + yolo["uniform"], args)


if __name__ == "__main__":
    main()

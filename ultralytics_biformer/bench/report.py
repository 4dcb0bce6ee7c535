"""The outputs of ``compare``: a Markdown table, CSVs and a figure, built from the run and benchmark records.

The accuracy columns are the task's (:data:`.metrics.TASK_METRICS`); the cost columns are the same for every task.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .metrics import TaskMetrics
from .plan import Plan
from .records import BenchRecord, TrainRecord
from .stats import family_verdicts, paired_difference, usable

if TYPE_CHECKING:
    from .runner import Failure

__all__ = ["collect", "paired_markdown", "paired_rows", "write_report"]

# (record key, Markdown column, digits): the cost measured in every training run, aggregated over seeds
COST_METRICS = [("epoch_seconds", "train s/epoch", 1), ("peak_rss_mib", "peak RSS MiB", 0)]


def run_metrics(task: TaskMetrics) -> list[tuple[str, str, int]]:
    """(record key, Markdown column, digits) of everything measured once per training run: accuracy, then cost."""
    return [(m.key, m.title, m.digits) for m in task.accuracy] + COST_METRICS


def verdict_metrics(task: TaskMetrics) -> dict[str, str]:
    """The metrics each model gets a verdict on: the task's primary one and, where there are boxes, small objects."""
    verdicts = {task.primary: task.metric(task.primary).title}
    if task.area_buckets:
        verdicts["map_small"] = "small objects"
    return verdicts


def notes(task: TaskMetrics) -> str:
    """The Markdown notes on the columns of ``task``'s table."""
    titles = ", ".join(m.title for m in task.metrics)
    lines = [f"- {titles}: Ultralytics' final {task.task} validation of each run's best.pt on the val split."]
    if task.area_buckets:
        prefix = task.bucket_prefix
        lines.append(
            f"""\
- {prefix}mAP50-95 S / M / L: COCO area buckets (box area below 32x32, up to 96x96, above, in original-image
  pixels), computed by ultralytics-biformer inside the same validation pass (conf 0.001, IoU 0.7); a prediction counts
  in the bucket of the label the validator matched it to, or else of its own box's area. n/a: no label of that size
  in val."""
        )
    return "\n".join([*lines, _COST_NOTES])


_COST_NOTES = """\
- PyTorch / ONNX ms: median CPU latency per image at batch 1 and imgsz x imgsz, same thread count for both: the
  fused PyTorch model, and the ONNX export in ONNX Runtime (CPU provider); raw model outputs, before any NMS. The
  models benchmarked together are timed in interleaved rounds, so load on the machine slows them alike and their
  ratios stay fair; milliseconds measured on a busy machine are still high.
- train s/epoch: mean wall time of an epoch's training pass, validation excluded.
- peak RSS MiB: peak resident memory of the training process (ru_maxrss; includes the Python, PyTorch and
  Ultralytics runtime, excludes dataloader worker processes).
- With several seeds, cells show mean +- sample standard deviation over the seeds in the Seeds column; models with
  different seeds there do not compare by these means: the paired table below compares them seed by seed.
- Seeds: how many runs count in the means, and their seeds; a run whose main metric is missing or not finite (it
  diverged) is named as failed and counts in no mean or difference.
- Paired differences: for each seed, the model's value minus the baseline's (the first model) trained with the same
  seed, hence the same data order; mean and a two-sided 95% Student-t interval over seeds. Verdicts are given only
  on the metrics named for them (the main metric and, where there are boxes, small objects), decided together for
  all models with Holm's correction: better or worse where the Holm-adjusted p-value of the paired t-test is below
  0.05, which keeps the chance of any false verdict in the report at 5%. p is the raw p-value, Holm the adjusted
  one. Every other column is exploratory: an interval that excludes zero there is no finding. A pair containing a
  run that resumed after an interruption is flagged: its augmentation draws differ after the resume, so it is not
  an exact pair."""


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if usable(v)]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def diverged(run: TrainRecord, task: TaskMetrics) -> bool:
    """Whether a finished run has no usable value of the task's main metric (NaN, infinite or missing)."""
    return not usable(run.value(task.primary))


def _seeds_cell(runs: list[TrainRecord], task: TaskMetrics) -> str:
    """``"3: 0, 1, 2"``; failed runs named after the seeds that count: ``"2: 0, 2 (seed 1 failed)"``."""
    if not runs:
        return "-"
    counted = [r.seed for r in runs if not diverged(r, task)]
    failed = [r.seed for r in runs if diverged(r, task)]
    cell = f"{len(counted)}: {', '.join(map(str, counted))}" if counted else "0"
    if failed:
        cell += f" (seed{'s' * (len(failed) > 1)} {', '.join(map(str, failed))} failed)"
    return cell


def collect(plan: Plan) -> list[dict[str, Any]]:
    """One summary per model: its runs' records, each metric's mean and std over seeds, and its benchmark."""
    rows = []
    for model in plan.models:
        runs = [TrainRecord.load(path) for s in plan.seeds if (path := plan.train_record(model, s)).is_file()]
        bench = BenchRecord.load(plan.bench_record(model)) if plan.bench_record(model).is_file() else None
        row = {"model": model.spec, "label": model.label, "runs": runs, "bench": bench}
        counted = [r for r in runs if not diverged(r, plan.metrics)]  # a diverged run counts nowhere
        for key, _, _ in run_metrics(plan.metrics):
            row[f"{key}_mean"], row[f"{key}_std"] = _mean_std([r.value(key) for r in counted])
            row[f"{key}_by_seed"] = {r.seed: r.value(key) for r in counted}
        rows.append(row)
    return rows


def _cell(mean: float | None, std: float | None, digits: int, missing: str) -> str:
    if mean is None:
        return missing
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _number(value: float | None, digits: int, missing: str) -> str:
    return missing if value is None else f"{value:.{digits}f}"


def markdown_table(
    rows: list[dict[str, Any]], task: TaskMetrics, failures: Sequence[Failure] = ()
) -> tuple[str, list[str]]:
    """The results table and its footnotes (failed cells)."""
    accuracy = [(m.key, m.title, m.digits) for m in task.accuracy]
    header = [
        "Model",
        "Seeds",
        "Params (M)",
        "GFLOPs",
        *(title for _, title, _ in accuracy),
        "PyTorch ms",
        "ONNX ms",
        *(title for _, title, _ in COST_METRICS),
    ]
    pretrained = any(run.transferred is not None for row in rows for run in row["runs"])
    if pretrained:
        header.insert(2, "From checkpoint")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    notes = []
    failed = {failure.label for failure in failures}  # models with a failed run or benchmark
    for row in rows:
        bench, trained = row["bench"], bool(row["runs"])
        # n/a: not applicable to a finished run; failed: this invocation's step failed; -: not run (yet).
        absent = "failed" if row["label"] in failed else "-"
        missing = "n/a" if trained else absent
        metric = {
            key: _cell(row[f"{key}_mean"], row[f"{key}_std"], digits, missing)
            for key, _, digits in accuracy + COST_METRICS
        }
        onnx = _number(bench and bench.onnx_ms, 1, absent)
        if bench and bench.onnx_error:
            notes.append(f"ONNX for {row['model']} failed: {bench.onnx_error}")
            onnx = f"failed [{len(notes)}]"
        cells = [
            f"`{row['model']}`",
            # Means over different seed sets do not compare (the paired table pairs seeds); the column says which.
            _seeds_cell(row["runs"], task),
            _number(bench.params / 1e6 if bench else None, 2, absent),
            _number(bench and bench.gflops, 2, absent),
            *(metric[key] for key, _, _ in accuracy),
            _number(bench and bench.torch_ms, 1, absent),
            onnx,
            *(metric[key] for key, _, _ in COST_METRICS),
        ]
        if pretrained:
            cells.insert(2, _transferred(row["runs"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), notes


def _transferred(runs: list[TrainRecord]) -> str:
    """Tensors a model took from the shared checkpoint, of the checkpoint's tensors (the same for every seed)."""
    if not runs:
        return "-"  # not trained yet
    counts = {(r.transferred, r.checkpoint_tensors) for r in runs if r.transferred is not None}
    return ", ".join(f"{n}/{total}" for n, total in sorted(counts)) or "n/a"


def _resumed_seeds(*rows: dict[str, Any]) -> set[int]:
    return {r.seed for row in rows for r in row.get("runs", []) if r.resumed_from_epoch}


def paired_rows(rows: list[dict[str, Any]], task: TaskMetrics) -> list[dict[str, Any]]:
    """Each non-baseline model's paired difference from the baseline (the first row), for every accuracy metric.

    Each pair says whether its metric is a verdict metric, its verdict and Holm-adjusted p-value (decided over all
    models and verdict metrics together; None and "exploratory" for the other metrics), and which of its seeds pair a
    run that resumed after an interruption.
    """
    baseline, out = rows[0], []
    verdict_keys = verdict_metrics(task)
    for row in rows[1:]:
        for m in task.accuracy:
            diff = paired_difference(baseline[f"{m.key}_by_seed"], row[f"{m.key}_by_seed"])
            out.append(
                {
                    "model": row["model"],
                    "metric": m.key,
                    "title": m.title,
                    "digits": m.digits,
                    "diff": diff,
                    "verdict_metric": m.key in verdict_keys,
                    "verdict": "exploratory",
                    "p_holm": None,
                    "resumed_seeds": sorted(_resumed_seeds(baseline, row) & set(diff.seeds)),
                }
            )
    family = [p for p in out if p["verdict_metric"]]
    verdicts, adjusted = family_verdicts([p["diff"] for p in family])
    for pair, verdict, p_holm in zip(family, verdicts, adjusted):
        pair["verdict"], pair["p_holm"] = verdict, p_holm
    return out


def _signed(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def paired_markdown(rows: list[dict[str, Any]], pairs: list[dict[str, Any]], task: TaskMetrics) -> list[str]:
    """The paired-difference table and one verdict line per model, as Markdown lines."""
    if len(rows) < 2:
        return []
    titles = [m.title for m in task.accuracy]
    lines = [
        f"Paired differences against `{rows[0]['model']}` (same seed, same data order): mean [95% interval]",
        "",
        "| Model | seeds | " + " | ".join(titles) + " |",
        "|" + "|".join(["---"] * (len(titles) + 2)) + "|",
    ]
    verdicts = []
    for row in rows[1:]:
        mine = {p["metric"]: p for p in pairs if p["model"] == row["model"]}
        cells = []
        for m in task.accuracy:
            d, digits = mine[m.key]["diff"], m.digits
            interval = "" if d.ci_low is None else f" [{_signed(d.ci_low, digits)}, {_signed(d.ci_high, digits)}]"
            cells.append(_signed(d.mean, digits) + interval)
        seeds = mine[task.primary]["diff"].seeds
        lines.append(f"| `{row['model']}` | {len(seeds)}: {', '.join(map(str, seeds))} | " + " | ".join(cells) + " |")
        said = []
        for key, name in verdict_metrics(task).items():
            pair, d = mine[key], mine[key]["diff"]
            figures = [] if d.mean is None else [_signed(d.mean, 4)]
            if d.p_value is not None:
                figures += [f"p {d.p_value:.3f}", f"Holm {pair['p_holm']:.3f}"]
            said.append(f"{name}: **{pair['verdict']}**" + (f" ({', '.join(figures)})" if figures else ""))
        line = f"- `{row['model']}` vs `{rows[0]['model']}`: " + "; ".join(said)
        if resumed := mine[task.primary]["resumed_seeds"]:
            line += f"; not exact pairs: seed{'s' * (len(resumed) > 1)} {', '.join(map(str, resumed))} resumed"
        verdicts.append(line)
    family = sum(p["diff"].p_value is not None for p in pairs if p["verdict_metric"])
    note = (
        f"Verdicts: Holm's correction over {family} tested comparison{'s' * (family != 1)} (models x verdict "
        "metrics); the other columns are exploratory."
    )
    return [*lines, "", *verdicts, "", note]


def _write_csvs(
    rows: list[dict[str, Any]], pairs: list[dict[str, Any]], run_dir: Path, task: TaskMetrics
) -> tuple[Path, Path, Path]:
    summary, per_run = run_dir / "compare.csv", run_dir / "runs.csv"
    bench_keys = BenchRecord.csv_fields()
    metrics = run_metrics(task)
    columns = ["model", "label", "runs", *bench_keys, *(f"{k}_{s}" for k, _, _ in metrics for s in ("mean", "std"))]
    with open(summary, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            bench = {k: getattr(row["bench"], k) for k in bench_keys} if row["bench"] else {}
            writer.writerow({**row, "runs": len(row["runs"]), **bench})
    with open(per_run, "w", newline="") as f:
        columns = TrainRecord.csv_columns([m.key for m in task.accuracy])
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            for run in row["runs"]:
                # Where the run lies in its run folder, not on the machine that trained it.
                save_dir = f"runs/{row['label']}-seed{run.seed}"
                writer.writerow({**run.csv_row(), "model": row["model"], "save_dir": save_dir})
    paired = run_dir / "paired.csv"
    seeds = sorted({seed for p in pairs for seed in p["diff"].seeds})
    with open(paired, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["model", "baseline", "metric", "seeds", "mean", "std", "ci95_low", "ci95_high", "p_value", "p_holm"]
            + ["verdict", "resumed_seeds", *(f"diff_seed{seed}" for seed in seeds)]
        )
        for p in pairs:
            d, by_seed = p["diff"], dict(zip(p["diff"].seeds, p["diff"].differences))
            writer.writerow(
                [p["model"], rows[0]["model"], p["metric"], len(d.seeds), d.mean, d.std, d.ci_low, d.ci_high]
                + [d.p_value, p["p_holm"], p["verdict"], " ".join(map(str, p["resumed_seeds"]))]
                + [by_seed.get(seed) for seed in seeds]
            )
    return summary, per_run, paired


def _curve_band(runs: list[TrainRecord], key: str) -> tuple[list[float], list[float], list[float], list[float]]:
    """Epochs and the mean, min and max of a per-epoch curve over runs (runs may stop at different epochs)."""
    curves = [r.curves[key] for r in runs if r.curves.get(key)]
    epochs, mean, low, high = [], [], [], []
    for i in range(max((len(c) for c in curves), default=0)):
        values = [c[i] for c in curves if i < len(c)]
        epochs.append(i + 1)
        mean.append(statistics.fmean(values))
        low.append(min(values))
        high.append(max(values))
    return epochs, mean, low, high


def _loss_curves(runs: list[TrainRecord]) -> list[TrainRecord]:
    """Runs with ``train/total``, the sum of their training loss curves (box + cls + dfl for detect; each task has
    its own parts, and classification one loss), added."""
    out = []
    for run in runs:
        curves = dict(run.curves)
        parts = [values for key, values in curves.items() if key.startswith("train/") and values]
        if parts:
            curves["train/total"] = [sum(v) for v in zip(*parts)]
        out.append(dataclasses.replace(run, curves=curves))
    return out


def seeds_recorded(rows: list[dict[str, Any]], planned: int) -> str:
    """How many seeds the figure shows per model: ``"3 seeds per model"``, or while runs are missing (a report of an
    unfinished comparison) ``"1-3 of 3 seeds recorded per model"``."""
    counts = sorted({len(row["runs"]) for row in rows})
    if counts == [planned]:
        return f"{planned} seed{'s' * (planned != 1)} per model"
    recorded = "-".join(map(str, dict.fromkeys([counts[0], counts[-1]])))
    return f"{recorded} of {planned} seeds recorded per model"


def write_figure(rows: list[dict[str, Any]], path: Path, title: str, task: TaskMetrics) -> Path:
    """The task's primary metric against latency, and the training curves, one colour per model."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(16, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_lat, ax_map, ax_loss = fig.subplots(1, 3)
    primary = task.metric(task.primary)
    colours = [f"C{i % 10}" for i in range(len(rows))]
    for row, colour in zip(rows, colours):
        bench, y, yerr = row["bench"], row[f"{task.primary}_mean"], row[f"{task.primary}_std"]
        if y is not None:
            latencies = {"torch_ms": bench and bench.torch_ms, "onnx_ms": bench and bench.onnx_ms}
            for key, marker, face in (("torch_ms", "o", colour), ("onnx_ms", "s", "none")):
                if latencies[key] is not None:
                    ax_lat.errorbar(latencies[key], y, yerr=yerr, fmt=marker, color=colour, mfc=face, ms=9, capsize=3)
            xs = [ms for ms in latencies.values() if ms is not None]
            if len(xs) == 2:
                ax_lat.plot(xs, [y, y], ":", color=colour, lw=1)
            if xs:
                ax_lat.annotate(row["label"], (xs[0], y), textcoords="offset points", xytext=(6, 6), fontsize=8)
        for ax, key, runs in (
            (ax_map, primary.column, row["runs"]),
            (ax_loss, "train/total", _loss_curves(row["runs"])),
        ):
            epochs, mean, low, high = _curve_band(runs, key)
            if epochs:
                ax.plot(epochs, mean, "-o", ms=3, color=colour, label=row["label"])
                if len(runs) > 1:
                    ax.fill_between(epochs, low, high, color=colour, alpha=0.2)
    ax_lat.set(
        xlabel="CPU latency per image, ms (batch 1)", ylabel=f"{primary.title} (val)", title="Accuracy vs latency"
    )
    if not ax_lat.lines:
        ax_lat.set(xticks=[], yticks=[])
        ax_lat.text(0.5, 0.5, "no latency benchmark recorded yet", ha="center", va="center", transform=ax_lat.transAxes)
    markers = [
        Line2D([], [], marker="o", ls="", color="grey", label="PyTorch (fused)"),
        Line2D([], [], marker="s", ls="", color="grey", mfc="none", label="ONNX Runtime"),
    ]
    ax_lat.legend(handles=markers, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8, frameon=False)
    ax_map.set(xlabel="epoch", ylabel=f"{primary.title} (val)", title=f"Validation {primary.title} per epoch")
    ax_loss.set(xlabel="epoch", ylabel="sum of training losses", title="Training loss per epoch")
    ax_lat.margins(x=0.25, y=0.15)  # room for the labels
    for ax in (ax_lat, ax_map, ax_loss):
        ax.grid(alpha=0.3)
    for ax in (ax_map, ax_loss):
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    return path


def _shown(path: str) -> str:
    """``path`` as a reader on another machine can use it: relative to the working directory when it lies below it,
    a bundled dataset by its cache folder's name (``ultralytics-biformer dataset`` regenerates it anywhere); other
    paths as given."""
    from ..data.synthetic import cache_dir

    datasets = cache_dir() / "datasets"
    if Path(path).is_relative_to(datasets):
        return f"<bundled dataset cache>/{Path(path).relative_to(datasets)}"
    return os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else path


def _workers(plan: Plan) -> str:
    """The workers= the runs were given, and what Ultralytics made of it where that differs (0 on a CPU)."""
    asked, used = plan.train_args.get("workers", plan.settings["workers"]), plan.settings["workers"]
    if asked == used:
        return str(used)
    return f"{asked} ({used} in effect: Ultralytics loads data in the training process on a {plan.settings['device']})"


def _settings_lines(plan: Plan, rows: list[dict[str, Any]]) -> list[str]:
    threads = sorted({row["bench"].threads for row in rows if row["bench"]})
    loads = sorted(
        {row["bench"].load_average for row in rows if row["bench"] and row["bench"].load_average is not None}
    )
    s = plan.settings
    resumed = ", ".join(
        f"`{row['model']}` seed {run.seed} after epoch {run.resumed_from_epoch}"
        for row in rows
        for run in row.get("runs", [])
        if run.resumed_from_epoch
    )
    resumed_note = (
        "- resumed after an interruption (from there, augmentation draws differ from an uninterrupted run's): "
    )
    return [
        f"- task: {plan.task}; data: `{_shown(s['data'])}`",
        (
            f"- preset {s['preset']}: epochs={s['epochs']} imgsz={s['imgsz']} batch={s['batch']} "
            f"workers={_workers(plan)} optimizer={s['optimizer']} "
            + "".join(f"{k}={v} " for k, v in s["extra"].items())
            + f"device={s['device']}, "
            f"seeds {', '.join(map(str, s['seeds']))}"
        ),
        (
            f"- latency: CPU, {', '.join(map(str, threads))} thread(s), imgsz {s['imgsz']}, models timed interleaved"
            + (f"; 1-minute load average when timed: {', '.join(map(str, loads))}" if loads else "")
            if threads
            else "- latency: no benchmark recorded yet"
        ),
        "- initial weights: "
        + (f"every model from `{_shown(s['pretrained'])}`" if s.get("pretrained") else "none (from scratch)"),
        *([resumed_note + resumed] if resumed else []),
        *([f"- run folder: {s['run_folder_note']}"] if s.get("run_folder_note") else []),
    ]


def write_report(plan: Plan, failures: Sequence[Failure] = ()) -> tuple[list[Path], str]:
    """Write ``compare.md``, ``compare.csv``, ``runs.csv``, ``paired.csv`` and ``compare.png`` into the run folder.

    Args:
        plan (Plan): The comparison, whose records are read.
        failures (Sequence[Failure]): The steps of this invocation that failed, named in the table and the report.

    Returns:
        (list[Path]): The written files.
        (str): The Markdown results table.
    """
    task = plan.metrics
    rows = collect(plan)
    table, footnotes = markdown_table(rows, task, failures)
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    pairs = paired_rows(rows, task)
    summary_csv, runs_csv, paired_csv = _write_csvs(rows, pairs, plan.run_dir, task)
    paired = paired_markdown(rows, pairs, task)
    s = plan.settings
    data = Path(s["data"])
    dataset = data.name if data.is_dir() else data.parent.name  # classification data is a folder, not a YAML in one
    title = f"{dataset}: imgsz {s['imgsz']}, {s['epochs']} epochs, {seeds_recorded(rows, len(s['seeds']))}"
    figure = write_figure(rows, plan.run_dir / "compare.png", title, task)
    primary = task.metric(task.primary).title
    failed = [f"- {failure}" for failure in failures]
    failed += [
        f"- `{row['model']}` seed {run.seed}: finished without a usable {primary} ({run.value(task.primary)}); it "
        "diverged or its validation failed, and it counts in no mean or difference"
        for row in rows
        for run in row["runs"]
        if diverged(run, task)
    ]
    footnotes = [f"[{i}] {note}" for i, note in enumerate(footnotes, 1)]
    markdown = "\n".join(
        [
            "# ultralytics-biformer compare",
            "",
            *_settings_lines(plan, rows),
            "",
            table,
            "",
            *(footnotes + [""] if footnotes else []),
            *(paired + [""] if paired else []),
            *(["Failed steps:", *failed, ""] if failed else []),
            "Columns:",
            notes(task),
            "",
        ]
    )
    (plan.run_dir / "compare.md").write_text(markdown)
    printed = "\n".join([table, *footnotes, *([""] + paired if paired else [])])
    return [plan.run_dir / "compare.md", summary_csv, runs_csv, paired_csv, figure], printed

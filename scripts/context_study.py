"""Summarise the context-range study (docs/results/context.md) from the records ``compare`` committed.

Reads every ``<root>/context-d<distance>/records/*-seed*.json`` and writes, into ``<root>``:

- ``curve.csv``: per distance and model, the seeds, mean and std of mAP50-95, and the paired difference from stock
  (same seed) with its 95% interval, raw p-value, Holm-adjusted p-value and verdict. The verdict metric is mAP50-95,
  named before the runs. The study's family, which Holm corrects over, is the design's models (``STUDY_MODELS``)
  other than stock at every distance the records hold (2 models x 4 distances once each has a run); any other model
  the records hold is a variant of part 4 of the study, decided in a family of its own, the variants at every distance
  they were run. Comparisons without a p-value yet (one seed) count as p = 1, so that an early look is not corrected
  over fewer comparisons than have runs. A verdict from fewer runs than the design's seeds is marked interim.
  Verdicts use the design's seeds only; where a model has runs of later seeds, a further row (family ``beyond the
  design``) gives its paired difference over every seed, exploratory: no Holm correction, no verdict word.
- ``runs.csv``: every run's final mAP50-95 and mAP50, the epoch at which it learned the class (see
  :func:`learned_epoch`), or none, and how much its validation mAP50-95 still rose over the last epochs (see
  :func:`late_gain`).
- ``curve.png``: mAP50-95 against distance per model (mean over seeds, 95% interval bars), and the paired difference
  from stock against distance.

It prints the Markdown tables that context.md quotes. Usage::

    python scripts/context_study.py [--root docs/results/context]
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
from pathlib import Path

from ultralytics_biformer.bench.records import TrainRecord
from ultralytics_biformer.bench.stats import family_verdicts, paired_difference, usable

BASELINE = "yolo11n.yaml"
DEFAULT = "yolo11n-biformer.yaml"
STUDY_MODELS = (BASELINE, DEFAULT, "yolo12n.yaml")  # the design's; any other model is a part 4 variant
PLANNED_SEEDS = 3  # the design's seeds 0, 1 and 2 (context.md, "Design, fixed before the runs")
BEYOND = "beyond the design"  # the family of rows over every seed, where later seeds were added: exploratory
# Every object of the benchmark is a token of one of two classes whose box is easy to find, so a detector that finds
# every token but guesses its class scores about 0.5 mAP50 (half its detections of each class are the other class's,
# at the same confidence) and one that knows the class about 1.0. Halfway between the two counts as learned.
LEARNED_MAP50 = 0.75
LATE_EPOCHS = 5  # whether a run's validation curve has flattened: what it still gained over its last epochs


def late_gain(curve: list[float], epochs: int = LATE_EPOCHS) -> float | None:
    """How much the validation metric rose over the run's last ``epochs`` epochs; None for a shorter curve.

    Examples:
        >>> round(late_gain([0.1, 0.5, 0.6, 0.62, 0.63, 0.64, 0.66]), 4)
        0.16
    """
    return curve[-1] - curve[-1 - epochs] if len(curve) > epochs else None


def learned_epoch(map50: list[float], threshold: float = LEARNED_MAP50) -> int | None:
    """The first epoch (1-based) from which validation mAP50 stays at or above ``threshold`` to the last epoch.

    None when the last epoch is below it: the class was not (or not stably) learned.

    Examples:
        >>> learned_epoch([0.5, 0.52, 0.8, 0.7, 0.8, 0.9])
        5
        >>> learned_epoch([0.5, 0.9, 0.6]) is None
        True
    """
    epoch = None
    for i, value in enumerate(map50, 1):
        if value >= threshold:
            epoch = epoch or i
        else:
            epoch = None
    return epoch


def load(root: Path) -> dict[int, dict[str, dict[int, TrainRecord]]]:
    """``{distance: {model: {seed: record}}}`` for every training record below ``root``."""
    study: dict[int, dict[str, dict[int, TrainRecord]]] = {}
    for folder in sorted(root.glob("context-d*")):
        match = re.fullmatch(r"context-d(\d+)", folder.name)
        if not match:
            continue
        for path in sorted((folder / "records").glob("*-seed*.json")):
            if path.name.endswith(".job.json"):
                continue
            record = TrainRecord.load(path)
            model = Path(record.model).name
            study.setdefault(int(match[1]), {}).setdefault(model, {})[record.seed] = record
    return study


def _interval(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and the half width of its 95% t-interval (None below two values)."""
    from scipy.stats import t

    if not values:
        return None, None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    return mean, float(t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / len(values) ** 0.5


def summarise(study: dict) -> tuple[list[dict], list[dict]]:
    """The rows of curve.csv and runs.csv."""
    curve, runs, beyond = [], [], []
    for distance, models in sorted(study.items()):
        baseline_all = _final_maps(models.get(BASELINE, {}))
        baseline = _design_seeds(baseline_all)
        for model, records in sorted(models.items(), key=lambda item: (item[0] != BASELINE, item[0])):
            maps_all = _final_maps(records)
            maps = _design_seeds(maps_all)
            if maps:
                row = _map_row(distance, model, maps)
                if model != BASELINE:
                    row["diff"] = paired_difference(baseline, maps)
                    row["family"] = "study" if model in STUDY_MODELS else "part 4"
                if model not in STUDY_MODELS:
                    default = _design_seeds(_final_maps(models.get(DEFAULT, {})))
                    row["diff_default"] = paired_difference(default, maps)
                curve.append(row)
            if model != BASELINE and maps_all.keys() - maps.keys():
                row = _map_row(distance, model, maps_all)
                diff = paired_difference(baseline_all, maps_all)
                beyond.append(row | {"diff": diff, "family": BEYOND, "verdict": "exploratory", "p_holm": None})
            for seed, record in sorted(records.items()):
                map50 = record.curves.get("metrics/mAP50(B)", [])
                runs.append(
                    {
                        "distance": distance,
                        "model": model,
                        "seed": seed,
                        "map": record.value("map"),
                        "map50": record.value("map50"),
                        "epochs": len(map50),
                        "learned_epoch": learned_epoch(map50),
                        "resumed_from_epoch": record.resumed_from_epoch,
                        "gain_last_epochs": late_gain(record.curves.get("metrics/mAP50-95(B)", [])),
                    }
                )
    for name in ("study", "part 4"):
        family = [row for row in curve if row.get("family") == name]
        verdicts, adjusted = family_verdicts([row["diff"] for row in family], untested_p=1.0)
        for row, verdict, p_holm in zip(family, verdicts, adjusted):
            seeds = len(row["diff"].run_seeds)
            if p_holm is not None and seeds < PLANNED_SEEDS:
                verdict = f"interim, {seeds} of {PLANNED_SEEDS} seeds: {verdict}"
            row["verdict"], row["p_holm"] = verdict if name == "study" else f"{name}: {verdict}", p_holm
    return curve + beyond, runs


def _final_maps(records: dict[int, TrainRecord]) -> dict[int, float | None]:
    """Each seed's final validation mAP50-95, the verdict metric."""
    return {s: r.value("map") for s, r in records.items()}


def _design_seeds(values: dict[int, float | None]) -> dict[int, float | None]:
    """The values of the design's seeds only, those its verdicts were fixed for."""
    return {s: v for s, v in values.items() if s < PLANNED_SEEDS}


def _map_row(distance: int, model: str, maps: dict[int, float | None]) -> dict:
    """A curve row's first columns: the seeds, and the mean mAP50-95 with its 95% half-width."""
    mean, half = _interval([v for v in maps.values() if usable(v)])
    return {
        "distance": distance,
        "model": model,
        "seeds": " ".join(map(str, sorted(maps))),
        "map": mean,
        "map_ci95": half,
    }


def _f(value, digits: int = 4, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def write(curve: list[dict], runs: list[dict], root: Path) -> list[str]:
    """Write curve.csv, runs.csv and curve.png into ``root``; return the Markdown lines to print."""
    with open(root / "curve.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "distance",
                "model",
                "seeds",
                "map_mean",
                "map_ci95_half",
                "diff_mean",
                "diff_ci95_low",
                "diff_ci95_high",
                "p_value",
                "p_holm",
                "verdict",
                "family",
                "minus_default_mean",
                "minus_default_ci95_low",
                "minus_default_ci95_high",
            ]
        )
        for row in curve:
            d, dd = row.get("diff"), row.get("diff_default")
            writer.writerow(
                [row["distance"], row["model"], row["seeds"], row["map"], row["map_ci95"]]
                + (
                    [d.mean, d.ci_low, d.ci_high, d.p_value, row["p_holm"], row["verdict"], row["family"]]
                    if d
                    else [""] * 7
                )
                + ([dd.mean, dd.ci_low, dd.ci_high] if dd else [""] * 3)
            )
    with open(root / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(runs[0]) if runs else ["distance"])
        writer.writeheader()
        writer.writerows(runs)
    design = [row for row in curve if row.get("family") != BEYOND]  # the figure and the verdict table
    _figure(design, root / "curve.png")
    lines = [
        "| distance | model | seeds | mAP50-95 | minus stock [95% interval] | p | Holm | verdict |",
        "|---:|---|---|---:|---|---:|---:|---|",
    ]
    for row in design:
        d = row.get("diff")
        paired = _paired(d)
        lines.append(
            f"| {row['distance']} | `{row['model']}` | {row['seeds']} | {_f(row['map'])} | {paired} | "
            f"{_f(d.p_value, 3) if d else ''} | {_f(row.get('p_holm'), 3) if d else ''} | {row.get('verdict', '')} |"
        )
    beyond = [row for row in curve if row.get("family") == BEYOND]
    if beyond:
        lines += [
            "",
            "| distance | model | seeds, beyond the design | minus stock [95% interval] | p |",
            "|---:|---|---|---|---:|",
        ]
        for row in beyond:
            d = row["diff"]
            lines.append(
                f"| {row['distance']} | `{row['model']}` | {row['seeds']} | {_paired(d)} | {_f(d.p_value, 3)} |"
            )
    variants = [row for row in design if "diff_default" in row]
    if variants:
        lines += [
            "",
            f"| distance | part 4 variant | seeds | minus `{DEFAULT}` [95% interval] | p |",
            "|---:|---|---|---|---:|",
        ]
        for row in variants:
            dd = row["diff_default"]
            lines.append(
                f"| {row['distance']} | `{row['model']}` | {row['seeds']} | {_paired(dd)} | {_f(dd.p_value, 3)} |"
            )
    lines += [
        "",
        (
            "| distance | model | seed | mAP50-95 | mAP50 | epochs | learned at epoch | resumed after | "
            f"gain in the last {LATE_EPOCHS} epochs |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run['distance']} | `{run['model']}` | {run['seed']} | {_f(run['map'])} | {_f(run['map50'])} | "
            f"{run['epochs']} | {run['learned_epoch'] or 'never'} | {run['resumed_from_epoch'] or ''} | "
            f"{_f(run['gain_last_epochs'], signed=True)} |"
        )
    return lines


def _paired(d) -> str:
    """A paired difference as ``+mean [low, high]``, without the interval below two seeds; empty for None."""
    if d is None:
        return ""
    if d.ci_low is None:
        return _f(d.mean, signed=True)
    return f"{_f(d.mean, signed=True)} [{_f(d.ci_low, signed=True)}, {_f(d.ci_high, signed=True)}]"


def _figure(curve: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_map, ax_diff = fig.subplots(1, 2)
    models = list(dict.fromkeys(row["model"] for row in curve))
    for i, model in enumerate(models):
        rows = [r for r in curve if r["model"] == model and r["map"] is not None]
        shift = (i - (len(models) - 1) / 2) * 1.2  # side by side at each distance
        xs = [r["distance"] + shift for r in rows]
        ax_map.errorbar(
            xs,
            [r["map"] for r in rows],
            yerr=[r["map_ci95"] or 0 for r in rows],
            fmt="o:",
            capsize=3,
            color=f"C{i}",
            label=model,
        )
        paired = [r for r in rows if r.get("diff") is not None and r["diff"].mean is not None]
        if paired:
            ax_diff.errorbar(
                [r["distance"] + shift for r in paired],
                [r["diff"].mean for r in paired],
                yerr=[
                    [r["diff"].mean - r["diff"].ci_low if r["diff"].ci_low is not None else 0 for r in paired],
                    [r["diff"].ci_high - r["diff"].mean if r["diff"].ci_high is not None else 0 for r in paired],
                ],
                fmt="o:",
                capsize=3,
                color=f"C{i}",
                label=f"{model} - {BASELINE}",
            )
    ax_diff.axhline(0, color="0.5", lw=1)
    ax_map.set(
        xlabel="distance from token centre to the nearest evidence (px at 256)",
        ylabel="val mAP50-95",
        title="mAP50-95 (mean over seeds, 95% interval)",
    )
    ax_diff.set(xlabel="distance (px at 256)", ylabel="paired difference", title="Minus stock yolo11n, same seed")
    for ax in (ax_map, ax_diff):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("docs/results/context"))
    args = parser.parse_args()
    curve, runs = summarise(load(args.root))
    print("\n".join(write(curve, runs, args.root)))


if __name__ == "__main__":
    main()

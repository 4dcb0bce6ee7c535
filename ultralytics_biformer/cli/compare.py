"""``ultralytics-biformer compare``: train and benchmark YOLO models side by side under identical settings.

Five Ultralytics tasks work: detect, segment, pose, obb and classify. The task is the models' own (all must share
one); ``task=`` picks it, with its default models, when no models are given. Each task trains with its stock
Ultralytics trainer and reports its own metrics (see :data:`ultralytics_biformer.bench.metrics.TASK_METRICS`).

Every model is trained with the same data, seed(s), epochs, imgsz, batch, optimizer and Ultralytics' default
augmentation, deterministically where Ultralytics allows. This module holds the command's keys and help; the work is
:mod:`ultralytics_biformer.bench`'s: arguments are checked and planned (:mod:`~ultralytics_biformer.bench.plan`)
before anything trains, each training run and each benchmark runs in its own worker process
(:mod:`~ultralytics_biformer.bench.runner`) and leaves a JSON record under ``<project>/<name>/records``, a re-run
of the same command skips every recorded run and resumes an interrupted one from its ``last.pt``
(:mod:`~ultralytics_biformer.bench.resume`), and the results are written as ``compare.md``, ``compare.csv``,
``runs.csv``, ``paired.csv`` and ``compare.png`` (:mod:`~ultralytics_biformer.bench.report`).
"""

from __future__ import annotations

from ..bench.metrics import TASK_METRICS
from ..bench.plan import PRESETS, make_plan
from ..data.presets import PRESET_SPECS as DATASETS
from .args import (
    ArgumentError,
    ExitCode,
    Option,
    boolean,
    choice,
    comma_list,
    image_size,
    non_negative_int,
    parse_options,
    positive_int,
    text,
    usage_text,
)

__all__ = ["OPTIONS", "run", "usage"]


def optimizer_name(raw: str) -> str:
    """An ``optimizer=`` the installed Ultralytics trainer accepts (any case, as it does); raises ValueError.

    Its list lives inside ``BaseTrainer.build_optimizer``, which only rejects a bad name once every worker has built
    its model, so compare checks up front against the same list.
    """
    accepted = ["auto", "SGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSprop"]
    try:
        from ultralytics.optim import MuSGD  # noqa: F401 - absent from older Ultralytics releases
    except ImportError:
        pass
    else:
        accepted.append("MuSGD")
    if raw.lower() not in {name.lower() for name in accepted}:
        raise ValueError(f"expected one of {', '.join(accepted)} (any case)")
    return raw


OPTIONS = [
    Option(
        "models",
        comma_list,
        None,
        "comma-separated model YAMLs or local .pt checkpoints, all of one task (default: the task's yolo11n and "
        "yolo11n-biformer)",
    ),
    Option(
        "data",
        text,
        None,
        "the task's Ultralytics data YAML, or for classify an ImageFolder folder (default: the bundled benchmark)",
    ),
    Option(
        "preset",
        choice(*PRESETS),
        None,
        f"one of {', '.join(PRESETS)}: epochs, imgsz, dataset size ... (default quick, the dataset command's "
        "default, on the bundled data; ultralytics, Ultralytics' own training defaults, with data=)",
    ),
    Option(
        "task",
        choice(*TASK_METRICS),
        None,
        f"one of {', '.join(TASK_METRICS)}: picks the default models and data (default: the models' task, else detect)",
    ),
    Option(
        "distance",
        non_negative_int,
        None,
        f"preset=context: pixels from each token to the nearest evidence of its class (default "
        f"{DATASETS['context'].distance})",
    ),
    Option(
        "seeds",
        positive_int,
        None,
        "training runs per model, seeds seed, seed+1, ... (default by preset: quick 1, the others 3)",
    ),
    Option("seed", non_negative_int, 0, "first training seed"),
    Option(
        "jobs", positive_int, 1, "training runs at once, each in its own process (CPU: each gets cores/jobs threads)"
    ),
    Option("epochs", positive_int, None, "training epochs (preset)"),
    Option("imgsz", image_size, None, "train, validation and latency image size, a multiple of 32 (preset)"),
    Option("batch", positive_int, None, "training batch size (preset)"),
    Option("workers", non_negative_int, None, "dataloader workers (preset)"),
    Option("optimizer", optimizer_name, "auto", "Ultralytics optimizer, the same for every model"),
    Option(
        "pretrained",
        text,
        None,
        "local checkpoint of the same task (e.g. a stock yolo11n.pt) that initialises every model; never downloaded "
        "(default: scratch)",
    ),
    Option(
        "device",
        text,
        None,
        "training device, as Ultralytics' device= (default: Ultralytics' choice; latency is always on CPU)",
    ),
    Option("threads", positive_int, 1, "CPU threads for both PyTorch and ONNX Runtime latency"),
    Option("project", text, "runs/compare", "parent folder of the run folder"),
    Option(
        "train",
        boolean,
        True,
        "False: train and benchmark nothing, write the report from the records already in the run folder",
    ),
    Option(
        "name",
        text,
        None,
        "run folder name; re-running resumes (default: the preset, -<task> but for detect, -d<distance> for "
        "preset=context, numbered -2, -3, ... where that folder holds runs with other settings)",
    ),
]


def usage() -> str:
    """The help text of ``compare``."""
    presets = [
        (
            name,
            f"epochs={p.epochs} imgsz={p.imgsz} batch={p.batch} seeds={p.seeds} "
            + "".join(f"{k}={v} " for k, v in p.extra.items())
            + (
                f"dataset={p.dataset.train} train + {p.dataset.val} val images"
                if name != "ultralytics"
                else "your data="
            ),
        )
        for name, p in PRESETS.items()
    ]
    return usage_text(
        "compare",
        "[key=value ...]",
        "Train each model under identical settings, then report accuracy (the task's own metrics, and by object size\n"
        "where there are boxes), size, CPU latency (PyTorch and ONNX Runtime), training time and peak memory as\n"
        "compare.md, compare.csv and compare.png in <project>/<name>. Re-running the same command resumes: finished\n"
        "runs are not redone. Every task works: detect, segment, pose, obb, classify (all models must share one).",
        OPTIONS,
        [
            "ultralytics-biformer compare models=yolo11n.yaml,yolo11n-biformer.yaml,yolo11n-biformer-backbone.yaml "
            "epochs=3",
            "ultralytics-biformer compare task=segment preset=quick",
        ],
        {"presets": presets},
    )


def run(tokens: list[str]) -> int:
    """Run ``compare`` with its ``key=value`` arguments; return the exit code."""
    from ..bench.report import write_report
    from ..bench.runner import Outcome, run_plan, say

    values = parse_options(tokens, OPTIONS, "compare")
    plan = make_plan(values)
    done = sum(plan.train_record(m, s).is_file() for m, s in plan.runs)
    if not values["train"] and not done:
        raise ArgumentError(
            f"train=False: {plan.run_dir} holds no finished run of these models and seeds, so there is nothing to "
            "report. Check project= and name=, or leave train=False out to train"
        )
    say(
        f"{len(plan.models)} models x {len(plan.seeds)} seeds = {len(plan.runs)} runs ({done} finished earlier) "
        f"in {plan.run_dir}\n"
        + (f"  {plan.settings['run_folder_note']}\n" if "run_folder_note" in plan.settings else "")
        + f"  models: {', '.join(m.spec for m in plan.models)}\n  data: {plan.train_args['data']}\n  "
        + " ".join(
            f"{k}={plan.settings[k]}"
            for k in ("task", "preset", "epochs", "imgsz", "batch", "workers", "optimizer", "device", "seeds", "jobs")
        )
        + "".join(f" {k}={v}" for k, v in plan.settings["extra"].items())
    )
    try:
        if values["train"]:
            outcome = run_plan(plan)
        else:
            outcome = Outcome()
            say(f"train=False: reporting the {done} finished runs and the benchmarks recorded so far")
    except KeyboardInterrupt:
        say(f"interrupted. Finished runs are kept in {plan.run_dir}; run the same command again to resume.")
        return ExitCode.INTERRUPTED
    outputs, table = write_report(plan, outcome.failures)
    print(f"\n{table}\n", flush=True)
    say("results:\n" + "\n".join(f"  {path}" for path in outputs))
    if outcome.failures:
        say("some steps failed:\n" + "\n".join(f"  {failure}" for failure in outcome.failures))
        return ExitCode.FAILED
    return ExitCode.OK

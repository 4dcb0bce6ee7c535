"""``ultralytics-biformer compare``: train and benchmark YOLO models side by side under identical settings.

Five Ultralytics tasks work: detect, segment, pose, obb and classify. The task is the models' own (all must share
one); ``task=`` picks it, with its default models, when no models are given. Each task trains with its stock
Ultralytics trainer and reports its own metrics (see :data:`ultralytics_biformer.evaluation.TASK_METRICS`).

Every model is trained with the same data, seed(s), epochs, imgsz, batch, optimizer and Ultralytics' default
augmentation, deterministically where Ultralytics allows. Each training run and each benchmark runs in its own worker
process (see :mod:`.worker`) and leaves a JSON record under ``<project>/<name>/records``; a re-run of the same command
skips every run that has a record, and a run interrupted part-way through the same job resumes from its ``last.pt``
through Ultralytics' resume (its record says after which epoch), so an interrupted comparison loses at most an epoch.
A resumed run's augmentation draws restart with its seed, so it matches an uninterrupted run only up to the epoch it
resumed after. All arguments are checked
before anything trains. The results are written as ``compare.md``, ``compare.csv``, ``runs.csv`` and ``compare.png``
(see :mod:`.report`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..data.presets import PRESET_SPECS as DATASETS
from ..data.synthetic import DatasetSpec
from ..evaluation import TASK_METRICS
from .args import (
    ArgumentError,
    Option,
    boolean,
    choice,
    comma_list,
    image_size,
    keys_help,
    non_negative_int,
    parse_options,
    positive_int,
    text,
)
from .models import checkpoint_problem, suggestion
from .plan import ModelEntry, Plan

__all__ = ["DEFAULT_MODELS", "OPTIONS", "PRESETS", "Preset", "make_plan", "run"]


@dataclass(frozen=True)
class Preset:
    """Defaults for everything a preset decides; explicit arguments override them."""

    epochs: int
    imgsz: int
    batch: int
    workers: int
    seeds: int
    dataset: DatasetSpec  # the detection dataset; other tasks get the same spec with their own labels
    warmup: int  # untimed inference calls before latency timing
    iters: int  # timed inference calls; the median is reported
    extra: dict = field(default_factory=dict)  # further Ultralytics training arguments, the same for every model


PRESETS = {
    # About ten minutes for the two default models on a 2-core CPU, with accuracy far from converged. nbs=16 (the
    # batch size) makes every batch an optimizer step instead of every fourth: 15 short epochs then learn something.
    "quick": Preset(
        epochs=15,
        imgsz=256,
        batch=16,
        workers=2,
        seeds=1,
        dataset=DATASETS["quick"],
        warmup=5,
        iters=30,
        extra={"nbs": 16},
    ),
    # The accuracy study of docs/results/ablation.md: 1800 optimizer steps per run, 120 val images, about 35 minutes a
    # run with two at a time on a 2-core CPU. 30 epochs left the validation mAP far from converged (0.55 where 60 epochs
    # reach 0.85, same seed). Each run's records land as it finishes, so the study can span several sessions.
    "study": Preset(
        epochs=60,
        imgsz=256,
        batch=8,
        workers=2,
        seeds=3,
        dataset=DATASETS["study"],
        warmup=5,
        iters=30,
        extra={"nbs": 8},
    ),
    # The context-range study of docs/results/context.md: one comparison per distance= (each its own run folder), 1600
    # optimizer steps per run, about 20 minutes a run with two at a time on a 2-core CPU.
    "context": Preset(
        epochs=40,
        imgsz=256,
        batch=8,
        workers=2,
        seeds=3,
        dataset=DATASETS["context"],
        warmup=5,
        iters=30,
        extra={"nbs": 8},
    ),
    # Your own data: Ultralytics' own training defaults (100 epochs, imgsz 640, batch 16, its nbs), three seeds for
    # the paired statistics. What compare uses whenever data= is given without preset=; the dataset field is unused.
    "ultralytics": Preset(
        epochs=100, imgsz=640, batch=16, workers=8, seeds=3, dataset=DATASETS["full"], warmup=20, iters=200
    ),
    # Long enough for the accuracy differences to mean something (a GPU is advisable).
    "full": Preset(epochs=100, imgsz=320, batch=16, workers=8, seeds=3, dataset=DATASETS["full"], warmup=20, iters=200),
}

# Per task: the stock yolo11n twin, then ours. The first model is the baseline of the paired statistics.
DEFAULT_MODELS = {
    "detect": ["yolo11n.yaml", "yolo11n-biformer.yaml"],
    "segment": ["yolo11n-seg.yaml", "yolo11n-biformer-seg.yaml"],
    "pose": ["yolo11n-pose.yaml", "yolo11n-biformer-pose.yaml"],
    "obb": ["yolo11n-obb.yaml", "yolo11n-biformer-obb.yaml"],
    "classify": ["yolo11n-cls.yaml", "yolo11n-biformer-cls.yaml"],
}
assert set(DEFAULT_MODELS) == set(TASK_METRICS)

# What data= must be for each task's models; quoted in errors.
DATA_NEEDS = {
    "detect": "a data YAML with box (or polygon) labels and no kpt_shape",
    "segment": "a data YAML with polygon labels (class x1 y1 x2 y2 ...) and no kpt_shape",
    "pose": "a data YAML with kpt_shape whose labels are class, box and keypoints",
    "obb": "a data YAML with oriented-box labels (class x1 y1 ... x4 y4) and no kpt_shape",
    "classify": "an ImageFolder dataset folder: train/<class>/<images> and val/<class>/<images>",
}


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
    width = max(len(o.key) for o in OPTIONS)
    lines = keys_help(OPTIONS).splitlines()
    presets = "\n".join(
        f"  {name:<{width}}  epochs={p.epochs} imgsz={p.imgsz} batch={p.batch} seeds={p.seeds} "
        + "".join(f"{k}={v} " for k, v in p.extra.items())
        + (f"dataset={p.dataset.train} train + {p.dataset.val} val images" if name != "ultralytics" else "your data=")
        for name, p in PRESETS.items()
    )
    return (
        "usage: ultralytics-biformer compare [key=value ...]\n\n"
        "Train each model under identical settings, then report accuracy (the task's own metrics, and by object size\n"
        "where there are boxes), size, CPU latency (PyTorch and ONNX Runtime), training time and peak memory as\n"
        "compare.md, compare.csv and compare.png in <project>/<name>. Re-running the same command resumes: finished\n"
        "runs are not redone. Every task works: detect, segment, pose, obb, classify (all models must share one).\n\n"
        "keys:\n" + "\n".join(lines) + f"\n\npresets:\n{presets}\n\n"
        "examples:\n"
        "  ultralytics-biformer compare models=yolo11n.yaml,yolo11n-biformer.yaml,yolo11n-biformer-backbone.yaml "
        "epochs=3\n"
        "  ultralytics-biformer compare task=segment preset=quick\n"
    )


def _bundled_yamls() -> list[str]:
    """Our model YAMLs, as scale-n names (``yolo11n-biformer.yaml``, ``yolo11n-biformer-seg.yaml``)."""
    from ..integration import config_dir

    return [re.sub(r"^(yolo\d+)-", r"\1n-", path.name) for path in sorted(config_dir().glob("*.yaml"))]


def _accepted_models() -> str:
    return (
        f"accepted: a model YAML of one of the tasks {', '.join(TASK_METRICS)}, stock (e.g. yolo11n.yaml, "
        f"yolo11n-seg.yaml) or bundled with ultralytics-biformer ({', '.join(_bundled_yamls())}; any scale n/s/m/l/x), "
        "a path to a model YAML (e.g. ultralytics_biformer/cfg/yolo11-biformer-neck.yaml), or a local .pt checkpoint"
    )


def _a(task: str | None) -> str:
    """``task`` with its indefinite article: "a detect", "an obb"."""
    return f"{'an' if str(task)[:1] in 'aeiou' else 'a'} {task}"


def _check_task(spec: str, task: str | None) -> str:
    """``task`` if compare supports it; raises ArgumentError naming the model otherwise."""
    if task not in TASK_METRICS:
        raise ArgumentError(
            f"model '{spec}' is {_a(task)} model, but compare supports {', '.join(TASK_METRICS)} models; "
            f"{_accepted_models()}"
        )
    return task


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _check_yaml_model(spec: str) -> tuple[str, str, str]:
    """Resolve and build a model YAML; return what the worker should load, its task and the digest of its parsed
    contents (comments and layout do not count). Raises ArgumentError."""
    from ultralytics.nn import tasks

    try:
        cfg = tasks.yaml_model_load(spec)
    except FileNotFoundError as e:
        if hint := suggestion(e):
            raise ArgumentError(f"unknown model '{spec}': no such file; {hint}") from None
        raise ArgumentError(
            f"unknown model '{spec}': no such file, and no stock or bundled YAML has that name; {_accepted_models()}"
        ) from None
    task = _check_task(spec, tasks.guess_model_task(cfg))
    model_class = {
        "detect": tasks.DetectionModel,
        "segment": tasks.SegmentationModel,
        "pose": tasks.PoseModel,
        "obb": tasks.OBBModel,
        "classify": tasks.ClassificationModel,
    }[task]
    logger = logging.getLogger("ultralytics")
    level = logger.level
    logger.setLevel(logging.WARNING)  # the classification model prints its summary even with verbose=False
    try:
        model_class(cfg, verbose=False)
    except Exception as e:  # noqa: BLE001 - any build error is the YAML's fault; say so before training
        raise ArgumentError(f"model '{spec}' does not build: {type(e).__name__}: {e}") from None
    finally:
        logger.setLevel(level)
    built = json.dumps({k: v for k, v in cfg.items() if k != "yaml_file"}, sort_keys=True, default=str)
    return (str(Path(spec).resolve()) if Path(spec).is_file() else spec), task, _digest(built.encode())


def _check_checkpoint(spec: str) -> tuple[str, str, str]:
    """Check a local .pt checkpoint loads; return its absolute path, its task and its digest. Raises ArgumentError."""
    path = Path(spec)
    if not path.is_file():
        raise ArgumentError(
            f"model '{spec}': no such file. compare never downloads weights: give the path of a local "
            f"checkpoint, or a model YAML to train from scratch; {_accepted_models()}"
        )
    from ultralytics import YOLO

    try:
        task = YOLO(str(path)).task
    except Exception as e:  # noqa: BLE001 - reported as a bad argument
        raise ArgumentError(f"model '{spec}' could not be loaded: {checkpoint_problem(e)}") from None
    return str(path.resolve()), _check_task(spec, task), _digest(path.read_bytes())


def resolve_models(specs: list[str] | None, task: str | None = None) -> tuple[list[ModelEntry], str]:
    """Validate the models, all of one task, and give each a unique, file-safe label. Raises ArgumentError.

    Args:
        specs (list[str] | None): The models as given; None for the default models of ``task``.
        task (str | None): The task asked for with ``task=``; None to take the models' own.

    Returns:
        (list[ModelEntry]): The models, in the order given.
        (str): Their task.
    """
    if specs is None:
        specs = DEFAULT_MODELS[task or "detect"]
    if len(set(specs)) != len(specs):
        raise ArgumentError(f"models lists a model more than once: {','.join(specs)}")
    entries, labels, tasks = [], set(), []
    for spec in specs:
        suffix = Path(spec).suffix.lower()
        if suffix in {".yaml", ".yml"}:
            source, model_task, digest = _check_yaml_model(spec)
        elif suffix in {".pt", ".pth"}:
            source, model_task, digest = _check_checkpoint(spec)
        else:
            raise ArgumentError(f"unknown model '{spec}'; {_accepted_models()}")
        label = base = re.sub(r"[^\w.-]+", "_", Path(spec).stem)
        n = 1
        while label in labels:
            n += 1
            label = f"{base}-{n}"
        labels.add(label)
        entries.append(ModelEntry(spec, source, label, digest))
        tasks.append(model_task)
    wanted = task or tasks[0]
    for spec, model_task in zip(specs, tasks):
        if model_task != wanted:
            given = f"task={task}" if task else f"the first model, {specs[0]}, is {_a(wanted)} model"
            raise ArgumentError(
                f"model '{spec}' is {_a(model_task)} model, but {given}: compare trains models of one task side by "
                f"side, e.g. models={','.join(DEFAULT_MODELS[wanted])}"
            )
    return entries, wanted


def resolve_data(data: str | None, preset: Preset, task: str = "detect", train: bool = True) -> str:
    """The absolute ``data=`` path to train on; generates the bundled dataset if needed. Raises ArgumentError.

    Args:
        data (str | None): As given; None for the bundled dataset of the preset, with ``task``'s labels.
        preset (Preset): The preset, whose dataset size the bundled dataset has.
        task (str): The models' task, which the data must be for.
        train (bool): False when only reporting: the bundled dataset is named, not generated.
    """
    if data is None:
        from ..data.synthetic import dataset_path, ensure_dataset

        spec = replace(preset.dataset, task=task)
        if not train:
            return str(dataset_path(spec))
        return str(ensure_dataset(spec, log=lambda m: print(m, flush=True)))
    accepted = (
        f"Accepted for {task} models: {DATA_NEEDS[task]}, on disk (compare never downloads datasets), or no data= "
        "for the bundled benchmark"
    )
    if task == "classify":
        return _check_image_folder(data, accepted)
    if Path(data).is_dir():
        raise ArgumentError(f"data={data} is a folder (as classification datasets are), not a data YAML. {accepted}")
    from ultralytics.data.utils import check_det_dataset

    try:
        info = check_det_dataset(data, autodownload=False)
    except Exception as e:  # noqa: BLE001 - Ultralytics raises several types; all mean a bad data=
        message = " ".join(str(e).split())
        raise ArgumentError(f"data={data}: {message}. {accepted}") from None
    if problem := _wrong_task(info, task):
        raise ArgumentError(f"data={data} {problem}. {accepted}")
    if train and not _val_images(info, 1):  # Ultralytics would find out in every worker, after training
        raise ArgumentError(f"data={data}: its val split {info.get('val')} holds no images. {accepted}")
    return str(Path(info["yaml_file"]).resolve())


def _check_image_folder(data: str, accepted: str) -> str:
    """The absolute path of an ImageFolder classification dataset. Raises ArgumentError.

    Checked here rather than by Ultralytics' ``check_cls_dataset``, which downloads a missing dataset and splits a
    folder without ``train/`` in place.
    """
    from ultralytics.data.utils import IMG_FORMATS

    path = Path(data)
    if not path.is_dir():
        what = " is a file, not a dataset folder" if path.exists() else ": no such folder"
        raise ArgumentError(f"data={data}{what}. {accepted}")
    val = next((path / name for name in ("val", "validation", "valid") if (path / name).is_dir()), None)
    if not (path / "train").is_dir() or val is None:
        raise ArgumentError(f"data={data}: no train/ and val/ folders. {accepted}")
    for split in (path / "train", val):
        if not any(f.suffix[1:].lower() in IMG_FORMATS for f in split.glob("*/*")):
            raise ArgumentError(f"data={data}: {split.name}/ holds no class folders with images. {accepted}")
    return str(path.resolve())


def _wrong_task(info: dict, task: str) -> str | None:
    """What shows a detection-style dataset is not for ``task``, or None. Judged by ``kpt_shape`` and by the number
    of values on the val split's label lines; a dataset without labels is left for Ultralytics to judge."""
    kpt_shape = info.get("kpt_shape")
    if (task == "pose") != bool(kpt_shape):
        return f"has kpt_shape {kpt_shape}: a pose dataset" if kpt_shape else "has no kpt_shape: not a pose dataset"
    columns = _label_columns(info)
    if not columns:
        return None
    found = "/".join(map(str, sorted(columns)))
    if task == "pose" and columns != {5 + math.prod(kpt_shape)}:
        return f"has labels of {found} values per line, but kpt_shape {kpt_shape} needs {5 + math.prod(kpt_shape)}"
    if task == "segment" and max(columns) <= 5:
        return "has box labels only (5 values per line), no polygons"
    if task == "obb" and columns != {9}:
        return f"has labels of {found} values per line, not oriented boxes (9: class and 4 corners)"
    return None


def _val_images(info: dict, limit: int) -> list[Path]:
    """Up to ``limit`` images of the val split: its folders' images, or the lines of its list files."""
    import itertools

    from ultralytics.data.utils import IMG_FORMATS

    images = []
    for split in info["val"] if isinstance(info.get("val"), list) else [info.get("val")]:
        split = Path(split or "")
        if split.is_dir():
            images += itertools.islice((f for f in split.rglob("*.*") if f.suffix[1:].lower() in IMG_FORMATS), limit)
        elif split.is_file():  # one image path per line (paths may hold spaces), "./x" relative to the list's folder
            lines = [line.strip() for line in split.read_text().splitlines() if line.strip()][:limit]
            images += [split.parent / line[2:] if line.startswith("./") else Path(line) for line in lines]
    return images[:limit]


def _label_columns(info: dict, limit: int = 50) -> set[int]:
    """The numbers of values per label line over the first ``limit`` val images' label files."""
    from ultralytics.data.utils import img2label_paths

    images = _val_images(info, limit)
    columns = set()
    for label in map(Path, img2label_paths([str(f) for f in images])):
        if label.is_file():
            columns.update(len(line.split()) for line in label.read_text().splitlines() if line.strip())
    return columns


def _device_type(device: str | None) -> str:
    """The kind of device Ultralytics will train on (``cpu``, ``cuda``, ``mps``). Raises ArgumentError."""
    from ultralytics.utils.torch_utils import select_device

    try:
        return select_device("" if device is None else device, verbose=False).type
    except Exception as e:  # noqa: BLE001 - reported as a bad argument
        raise ArgumentError(f"device={device}: {' '.join(str(e).split())}") from None


def _differences(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new))
    return ", ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in keys if old.get(k) != new.get(k))


def _same_file(old: Any, new: Any) -> bool:
    """Whether a recorded path names the file a planned one does. A record made in another checkout, or with another
    dataset cache, names it by another absolute path: the old path then ends with the new one's path below the
    working directory, below the bundled dataset cache, or below the bundled model YAMLs (a record made before they
    moved from the repository's ``cfg/`` into the package names ``.../cfg/ablation/x.yaml``)."""
    from ..data.synthetic import cache_dir
    from ..integration import config_dir

    if old == new:
        return True
    if not (isinstance(old, str) and isinstance(new, str) and Path(new).is_absolute()):
        return False
    for root in (Path.cwd(), cache_dir(), config_dir()):
        if Path(new).is_relative_to(root):
            tail = Path(new).relative_to(root).parts
            # A bare file name (data.yaml, best.pt) ends too many paths to identify one file.
            if len(tail) > 1 and Path(old).parts[-len(tail) :] == tail:
                return True
    return False


def _model_change(record: dict, model: ModelEntry) -> str | None:
    """How a record's model differs from ``model``, or None. Records that predate digests match by path alone."""
    if not _same_file(record.get("model"), model.source):
        return f"{record.get('model')} then, {model.source} now"
    if record.get("model_digest") not in (None, model.digest):
        return f"{model.spec} has changed since"
    return None


def _check_records(plan: Plan) -> None:
    """Refuse to resume from records of another model or made with other settings. Raises ArgumentError."""
    planned = [
        (plan.train_record(m, s), m, "train_args", plan.train_job(m, s)["train_args"], f"run of {m.spec} (seed {s})")
        for m, s in plan.runs
    ]
    planned += [(plan.bench_record(m), m, "bench_args", plan.bench_args, f"benchmark of {m.spec}") for m in plan.models]
    for path, model, key, args, what in planned:
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        if change := _model_change(record, model):
            raise ArgumentError(
                f"{plan.run_dir} holds a finished {what} of another model ({change}). Use another name= or delete "
                f"{plan.run_dir} to start over."
            )
        old, new = record.get(key, {}), json.loads(json.dumps(args))
        # Where the run folder lives is no setting: records committed from one checkout resume in another.
        old.pop("project", None), new.pop("project", None)
        for setting in ("data", "pretrained"):
            if setting in new and _same_file(old.get(setting), new[setting]):
                old[setting] = new[setting]
        if old.get("device") != new.get("device") and _device_type(old.get("device")) == "cpu" == _device_type(
            new.get("device")
        ):  # device=cpu named now, or left to default then, on a machine where the default is the CPU
            old.pop("device", None), new.pop("device", None)
        if old != new:
            raise ArgumentError(
                f"{plan.run_dir} holds a finished {what} made with other settings "
                f"({_differences(old, new)}). Use another name= or delete {plan.run_dir} to start over."
            )


def resolve_pretrained(path: str | None, task: str = "detect", train: bool = True) -> str | None:
    """The absolute path of a local checkpoint of ``task`` to start every model from. Raises ArgumentError.

    With ``train=False`` the path only names what the records were trained from: weights are not committed with
    records, so a report must render where the checkpoint is absent.
    """
    if path is None:
        return None
    if not train:
        return str(Path(path).resolve())
    if not Path(path).is_file():
        raise ArgumentError(
            f"pretrained={path}: no such file. compare never downloads weights: give the path of a local checkpoint "
            "(e.g. a yolo11n.pt you downloaded or trained), or leave pretrained= out to train from scratch"
        )
    from ultralytics.nn.tasks import load_checkpoint

    try:
        model, _ = load_checkpoint(path)
    except Exception as e:  # noqa: BLE001 - reported as a bad argument
        raise ArgumentError(f"pretrained={path} could not be loaded: {checkpoint_problem(e)}") from None
    found = getattr(model, "task", None)
    if found != task:
        raise ArgumentError(f"pretrained={path} holds {_a(found)} model, but the models to compare are {task} models")
    return str(Path(path).resolve())


def _train_args(values: dict[str, Any], preset: Preset, data: str) -> dict[str, Any]:
    """The Ultralytics training arguments every model's run shares (each run adds its seed, project and name)."""
    args = {
        "data": data,
        **{key: getattr(preset, key) if values[key] is None else values[key] for key in ("epochs", "imgsz", "batch")},
        "workers": preset.workers if values["workers"] is None else values["workers"],
        "optimizer": values["optimizer"],
        **preset.extra,
        "deterministic": True,
        "plots": False,  # Ultralytics' plots want the Arial font, which it would download
        "exist_ok": True,  # a run interrupted half-way restarts in its own folder
        "verbose": True,
    }
    if values["device"] is not None:
        args["device"] = values["device"]
    if values["pretrained"] is not None:
        args["pretrained"] = values["pretrained"]
    return args


def make_plan(values: dict[str, Any]) -> Plan:
    """Validate parsed ``compare`` arguments and plan the comparison; nothing is trained. Raises ArgumentError."""
    from .offline import offline_ultralytics

    offline_ultralytics()
    # Settings made for a small generated benchmark would silently shortchange a user's own dataset.
    implied = values["preset"] is None
    values = {**values, "preset": values["preset"] or ("quick" if values["data"] is None else "ultralytics")}
    preset = PRESETS[values["preset"]]
    if values["distance"] is not None:
        if preset.dataset.style != "context" or values["data"] is not None:
            raise ArgumentError(
                f"distance={values['distance']} applies to the bundled context-range benchmark only: use it with "
                "preset=context and no data="
            )
        try:
            preset = replace(preset, dataset=replace(preset.dataset, distance=values["distance"]))
        except ValueError as e:
            raise ArgumentError(str(e)) from None
    models, task = resolve_models(values["models"], values["task"])
    on_context_benchmark = preset.dataset.style == "context" and values["data"] is None
    if on_context_benchmark and task != "detect":
        raise ArgumentError(f"preset={values['preset']} is a detection benchmark, but the models are {task} models")
    device = _device_type(values["device"])
    n_seeds = preset.seeds if values["seeds"] is None else values["seeds"]
    seeds = list(range(values["seed"], values["seed"] + n_seeds))
    if seeds[-1] >= 2**32:
        raise ArgumentError(f"seed={values['seed']} with seeds={n_seeds}: seeds must stay below 2**32 (numpy's limit)")
    # Other tasks get their own default folder, so that a detect comparison of the same preset is not overwritten.
    default_name = values["preset"] if task == "detect" else f"{values['preset']}-{task}"
    if on_context_benchmark:  # one folder per distance
        default_name += f"-d{preset.dataset.distance}"
    run_dir = (Path(values["project"]) / (values["name"] or default_name)).resolve()
    if blocker := next((p for p in [run_dir, *run_dir.parents] if p.exists() and not p.is_dir()), None):
        raise ArgumentError(f"project={values['project']}: {blocker} is a file, so {run_dir} cannot be a run folder")
    values = {**values, "pretrained": resolve_pretrained(values["pretrained"], task, values["train"])}
    train_args = _train_args(values, preset, resolve_data(values["data"], preset, task, values["train"]))
    bench_args = {
        "imgsz": train_args["imgsz"],
        "threads": values["threads"],
        "warmup": preset.warmup,
        "iters": preset.iters,
    }
    settings = {
        "task": task,
        "preset": values["preset"] + (" (the default with data=)" if implied and values["data"] else ""),
        **{k: train_args[k] for k in ("data", "epochs", "imgsz", "batch", "optimizer")},
        # Ultralytics' trainer loads data in the main process when it trains on the CPU, whatever workers= says.
        "workers": 0 if device in {"cpu", "mps"} else train_args["workers"],
        "device": device,
        "seeds": seeds,
        "jobs": values["jobs"],
        "pretrained": values["pretrained"],
        "extra": preset.extra,
    }
    plan = Plan(run_dir, models, seeds, train_args, bench_args, settings, jobs=values["jobs"], task=task)
    if values["name"] is not None:  # the folder asked for, or an error saying why not
        _check_records(plan)
        return plan
    return _free_run_folder(plan)


def _free_run_folder(plan: Plan) -> Plan:
    """``plan`` in its default run folder, or, where that folder holds runs of other models or settings (finished, or
    interrupted with a checkpoint to resume from), in the first of ``<name>-2``, ``<name>-3``, ... that holds none:
    the same command always finds its own folder again, and a command with other settings never lands in it. The
    header says which folder was taken and why."""
    base = plan.run_dir
    for n in itertools.count(2):
        if _is_ours(plan):
            return plan
        plan = replace(plan, run_dir=base.with_name(f"{base.name}-{n}"))
        plan.settings = {
            **plan.settings,
            "run_folder_note": f"{base.name} holds runs of other models or settings, so this comparison uses "
            f"{plan.run_dir.name}",
        }
    raise AssertionError("unreachable")


def _is_ours(plan: Plan) -> bool:
    """Whether ``plan``'s run folder holds no finished or resumable run of another model or other settings, and no
    run, finished or started, of a model outside the plan (whose comparison's report this plan would overwrite). A
    plan may add models or seeds to a folder's comparison."""
    try:
        _check_records(plan)
    except ArgumentError:
        return False
    for record in (plan.run_dir / "records").glob("*.json"):  # records, and job files of runs started there
        try:
            model = json.loads(record.read_text()).get("model")
        except (OSError, ValueError):
            return False  # a record this plan cannot read is not this plan's
        if not any(_same_file(model, planned.source) for planned in plan.models):
            return False
    return not _holds_other_unfinished_runs(plan)


def _holds_other_unfinished_runs(plan: Plan) -> bool:
    """Whether a planned run, not finished yet, was started with another model or other settings and left a
    checkpoint to resume from: reusing its folder would overwrite that run."""

    for model, seed in plan.runs:
        job = plan.train_job(model, seed)
        if (
            plan.train_record(model, seed).is_file()
            or not (plan.run_folder(model, seed) / "weights" / "last.pt").is_file()
        ):
            continue
        try:
            before = json.loads(_job_file(job).read_text())
        except (OSError, ValueError):
            continue
        if not _same_job(before, job):
            return True
    return False


def _same_job(before: dict, job: dict) -> bool:
    """Whether a run's job file, written when it started, names the same model and training arguments as ``job``."""
    return all(before.get(key) == job[key] for key in ("model_digest", "train_args"))


def _say(message: str) -> None:
    print(f"[ultralytics-biformer compare] {message}", flush=True)


def _job_file(job: dict) -> Path:
    return Path(job["record"]).with_suffix(".job.json")


def _start(kind: str, job: dict, log: Path) -> subprocess.Popen:
    """Start one worker job in a fresh process whose output goes to ``log`` (appended to, for a resumed run)."""
    from .offline import OFFLINE_ENV

    job_file = _job_file(job)
    job_file.parent.mkdir(parents=True, exist_ok=True)
    job_file.write_text(json.dumps(job, indent=2))
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "ultralytics_biformer.cli.worker", kind, str(job_file)]
    with open(log, "a" if job.get("resume") else "w") as out:  # the child keeps its own handle
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **OFFLINE_ENV})


def _train_job(plan: Plan, model: ModelEntry, seed: int) -> tuple[dict, int | None]:
    """A run's training job, and the epochs it resumes after: an interrupted attempt at the same job (its job file
    names the same model digest and training arguments) left a ``last.pt`` that Ultralytics can resume."""
    from .worker import resumable_epochs

    job = plan.train_job(model, seed)
    last = plan.run_folder(model, seed) / "weights" / "last.pt"
    try:
        before = json.loads(_job_file(job).read_text())
    except (OSError, ValueError):
        return job, None
    done = resumable_epochs(last, job["train_args"]["epochs"]) if _same_job(before, job) and last.is_file() else None
    if done:
        job["resume"] = str(last)
    return job, done


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _epochs_done(results_csv: Path) -> int:
    """Epochs Ultralytics has logged to a run's ``results.csv`` so far."""
    try:
        return max(len(results_csv.read_text().splitlines()) - 1, 0)
    except OSError:
        return 0


class _Progress:
    """The console of a comparison: one line as each run starts, one as it ends, and, on a terminal, a status line
    (epoch and ETA of the runs in progress) rewritten in place. Full Ultralytics output goes to each run's log file."""

    def __init__(self, plan: Plan):
        self.plan, self.total = plan, len(plan.runs)
        self.live = sys.stdout.isatty()
        self.started: dict[tuple[str, int], float] = {}

    def _clear(self) -> None:
        if self.live:
            print("\r\033[K", end="", flush=True)

    def say(self, message: str) -> None:
        self._clear()
        _say(message)

    def start(self, i: int, model: ModelEntry, seed: int, resumed_from: int | None = None) -> None:
        self.started[(model.label, seed)] = (time.monotonic(), resumed_from or 0)
        log = self.plan.log_file(model, seed).relative_to(self.plan.run_dir)
        what = (
            f"resuming after epoch {resumed_from} of {self.plan.train_args['epochs']}" if resumed_from else "training"
        )
        self.say(f"run {i}/{self.total} {model.spec} seed {seed}: {what} (log: {log})")

    def end(self, i: int, model: ModelEntry, seed: int, code: int) -> None:
        took = _minutes(time.monotonic() - self.started.pop((model.label, seed))[0])
        what = f"run {i}/{self.total} {model.spec} seed {seed}"
        record = self.plan.train_record(model, seed)
        if code == 0 and record.is_file():
            r, metrics = json.loads(record.read_text()), self.plan.metrics
            metric = f"{metrics.metric(metrics.primary).title} {r[metrics.primary]:.4f}"
            metric += f", small {r['map_small']:.4f}" if r.get("map_small") is not None else ""
            self.say(f"{what}: done in {took}, {r['epochs_run']} epochs, {metric}")
        else:
            log = self.plan.log_file(model, seed)
            self.say(f"{what}: FAILED (exit code {code}) after {took}; see {log}")

    def status(self, running: list[tuple[ModelEntry, int]]) -> None:
        if not self.live or not running:
            return
        parts = []
        for model, seed in running:
            done, total = _epochs_done(self.plan.results_csv(model, seed)), self.plan.train_args["epochs"]
            started, done_before = self.started[(model.label, seed)]
            elapsed, done_now = time.monotonic() - started, done - done_before
            eta = f", ETA {_minutes(elapsed / done_now * (total - done))}" if done_now > 0 else ""
            parts.append(f"{model.label} s{seed} epoch {done}/{total}{eta}")
        print("\r\033[K" + " | ".join(parts), end="", flush=True)


def _train_all(plan: Plan) -> None:
    """Train every run that has no record yet, ``plan.jobs`` at a time."""
    progress = _Progress(plan)
    pending = []
    for i, (model, seed) in enumerate(plan.runs, 1):
        if plan.train_record(model, seed).is_file():
            progress.say(f"run {i}/{progress.total} {model.spec} seed {seed}: finished earlier, skipping")
        else:
            pending.append((i, model, seed))
    running: dict[subprocess.Popen, tuple[int, ModelEntry, int]] = {}
    try:
        while pending or running:
            while pending and len(running) < plan.jobs:
                i, model, seed = pending.pop(0)
                job, resumed_from = _train_job(plan, model, seed)
                progress.start(i, model, seed, resumed_from)
                running[_start("train", job, plan.log_file(model, seed))] = (i, model, seed)
            time.sleep(1.0)
            for proc in [p for p in running if p.poll() is not None]:
                i, model, seed = running.pop(proc)
                progress.end(i, model, seed, proc.returncode)
                if proc.returncode != 0 or not plan.train_record(model, seed).is_file():
                    plan.failures[f"{model.label}-seed{seed}"] = (
                        f"training failed (worker exit code {proc.returncode}); see {plan.log_file(model, seed)}"
                    )
            progress.status([(m, s) for _, m, s in running.values()])
    finally:
        for proc in running:  # interrupted: no half-trained worker outlives us
            proc.terminate()
        for proc in running:
            proc.wait()


def _local_weights(plan: Plan, model: ModelEntry, seeds: list[int]) -> str | None:
    """Weights of a recorded run of ``model`` that exist on this machine: where its record says, or, for records
    committed from another checkout, in this plan's folder of that run. Any seed does: cost does not depend on them."""
    for seed in seeds:
        recorded = Path(json.loads(plan.train_record(model, seed).read_text())["weights"])
        for path in (recorded, plan.run_folder(model, seed) / "weights" / recorded.name):
            if path.is_file():
                return str(path)
    return None


def _bench_all(plan: Plan) -> None:
    for j, model in enumerate(plan.models, 1):
        what = f"benchmark {j}/{len(plan.models)} {model.spec}"
        if plan.bench_record(model).is_file():
            _say(f"{what}: finished earlier, skipping")
            continue
        trained = [s for s in plan.seeds if plan.train_record(model, s).is_file()]
        if not trained:
            plan.failures[f"{model.label}-bench"] = "not benchmarked: no training run finished"
            _say(f"{what}: skipped, no training run of it finished")
            continue
        weights = _local_weights(plan, model, trained)
        if weights is None:
            plan.failures[f"{model.label}-bench"] = (
                "not benchmarked: its records were made in another checkout, and weights are never committed with them"
            )
            _say(
                f"{what}: skipped, no weights of its recorded runs are here (records made elsewhere); copy a run's "
                f"runs/<model>-seed<N>/ folder into {plan.run_dir}, or delete one record to retrain that run"
            )
            continue
        log = plan.run_dir / "logs" / f"{model.label}-bench.log"
        _say(f"{what}: parameters, GFLOPs, PyTorch and ONNX Runtime latency (log: {log.relative_to(plan.run_dir)})")
        code = _start("bench", plan.bench_job(model, weights), log).wait()
        if code != 0 or not plan.bench_record(model).is_file():
            plan.failures[f"{model.label}-bench"] = f"benchmark failed (worker exit code {code}); see {log}"
            _say(f"{what}: FAILED with exit code {code}; see {log}")


def run(tokens: list[str]) -> int:
    """Run ``compare`` with its ``key=value`` arguments; return the exit code."""
    values = parse_options(tokens, OPTIONS, "compare")
    plan = make_plan(values)
    done = sum(plan.train_record(m, s).is_file() for m, s in plan.runs)
    if not values["train"] and not done:
        raise ArgumentError(
            f"train=False: {plan.run_dir} holds no finished run of these models and seeds, so there is nothing to "
            "report. Check project= and name=, or leave train=False out to train"
        )
    _say(
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
            _train_all(plan)
            _bench_all(plan)
        else:
            _say(f"train=False: reporting the {done} finished runs and the benchmarks recorded so far")
    except KeyboardInterrupt:
        _say(f"interrupted. Finished runs are kept in {plan.run_dir}; run the same command again to resume.")
        return 130
    from .report import write_report

    outputs, table = write_report(plan)
    print(f"\n{table}\n", flush=True)
    _say("results:\n" + "\n".join(f"  {path}" for path in outputs))
    if plan.failures:
        _say("some steps failed:\n" + "\n".join(f"  {k}: {v}" for k, v in plan.failures.items()))
        return 1
    return 0

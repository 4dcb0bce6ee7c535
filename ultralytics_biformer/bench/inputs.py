"""What a comparison compares, checked before anything trains: its models, its data and its starting weights.

Every check raises :class:`~ultralytics_biformer.cli.args.ArgumentError` with a message that names the bad value and
what is accepted, so that a comparison never fails in its workers for a reason visible up front.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..cli.args import ArgumentError
from ..cli.models import CHECKPOINT, checkpoint_problem, load_yolo
from .metrics import TASK_METRICS

if TYPE_CHECKING:
    from .plan import Preset

__all__ = [
    "DATA_NEEDS",
    "DEFAULT_MODELS",
    "ModelEntry",
    "device_type",
    "resolve_data",
    "resolve_models",
    "resolve_pretrained",
]


@dataclass(frozen=True)
class ModelEntry:
    """A model to compare: as the user wrote it, what the worker loads, a file-safe label, and a digest of what it
    builds (the parsed YAML, or the checkpoint's bytes) that tells a resumed comparison whether the model changed."""

    spec: str
    source: str
    label: str
    digest: str | None = None


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


def _bundled_yamls() -> list[str]:
    """Our model YAMLs, as scale-n names (``yolo11n-biformer.yaml``, ``yolo11n-biformer-seg.yaml``)."""
    from ..integration import config_dir

    return [re.sub(r"^(yolo\d+)-", r"\1n-", path.name) for path in sorted(config_dir().glob("*.yaml"))]


def _accepted_models() -> str:
    return (
        f"accepted: a model YAML of one of the tasks {', '.join(TASK_METRICS)}, stock (e.g. yolo11n.yaml, "
        f"yolo11n-seg.yaml) or bundled with ultralytics-biformer ({', '.join(_bundled_yamls())}; any scale n/s/m/l/x), "
        "a path to a model YAML (e.g. ultralytics_biformer/cfg/yolo11-biformer-neck.yaml), or a local .pt "
        "checkpoint"
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


def _check_model(spec: str) -> tuple[str, str, str]:
    """Build a model YAML or load a local checkpoint; return what the worker should load, its task and its digest:
    of the parsed YAML (comments and layout do not count), or of the checkpoint's bytes. Raises ArgumentError."""
    yolo = load_yolo(spec, "compare", subject=f"model '{spec}'", accepted=_accepted_models())
    task = _check_task(spec, yolo.task)
    if Path(spec).suffix.lower() in CHECKPOINT:
        return str(Path(spec).resolve()), task, _digest(Path(spec).read_bytes())
    # The parsed YAML as the built model keeps it (with the keys building adds): what digests have always covered,
    # so that committed comparisons still resume.
    built = json.dumps({k: v for k, v in yolo.model.yaml.items() if k != "yaml_file"}, sort_keys=True, default=str)
    return (str(Path(spec).resolve()) if Path(spec).is_file() else spec), task, _digest(built.encode())


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
        source, model_task, digest = _check_model(spec)
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


def device_type(device: str | None) -> str:
    """The kind of device Ultralytics will train on (``cpu``, ``cuda``, ``mps``). Raises ArgumentError."""
    from ultralytics.utils.torch_utils import select_device

    try:
        return select_device("" if device is None else device, verbose=False).type
    except Exception as e:  # noqa: BLE001 - reported as a bad argument
        raise ArgumentError(f"device={device}: {' '.join(str(e).split())}") from None


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

"""COCO-style small / medium / large mAP50-95, computed inside Ultralytics' own validation pass.

Ultralytics reports one mAP for all object sizes. :func:`with_area_buckets` extends a task's validator class so that
the same pass also scores each COCO area bucket: the same predictions (same letterbox, batching, NMS and thresholds),
the same IoU function, and the validator's own ``match_predictions``. With every object in one bucket, that bucket's
mAP50-95 is the overall one, exactly (a test checks it).

Buckets by box area in original-image pixels, with COCO's limits: small below 32x32, medium up to 96x96, large above.
Every label belongs to the bucket of its area. The validator matches each image once, over all its labels; every
prediction then belongs to exactly one bucket: that of the label it matched (at the loosest IoU threshold it matched
at), or, if it matched none, that of its own area, and it is a true positive there at the thresholds where its match
lies in that bucket. So the buckets split the validator's own verdicts, and count every prediction once. This differs
from pycocotools in one respect: COCO ignores, rather than counts as false positives, unmatched predictions outside
the bucket's size range; here each such prediction counts in the bucket of its own area.

``match_predictions`` returns verdicts, not which label each prediction matched, so that label comes from the same
rule replayed (:data:`MATCH_RULES`: by confidence in recent Ultralytics 8.4 releases, by IoU in earlier ones such as
8.4.0); on every image, the replay must give the validator's verdicts exactly, or validation stops with an error.

The buckets apply to every task with boxes: detect, obb (rotated boxes and rotated IoU), and the box metrics of
segment and pose (their validators match boxes first, then masks or keypoints; the buckets score the boxes).

:data:`TASK_METRICS` is the one table of what each task reports: which of its validator's metrics a comparison
records, under which names, which one decides the verdicts, and whether area buckets apply.

Depends on Ultralytics' validator internals (``_process_batch(preds, batch)`` with the ``bboxes``/``cls``/``conf``
keys and ``ratio_pad``, ``match_predictions``, ``get_stats``) and on its metric names (``metrics/mAP50-95(B)``, ...);
checked for ultralytics 8.4.x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["AREA_BUCKETS", "TASK_METRICS", "AreaBuckets", "Metric", "TaskMetrics", "area_bucket", "with_area_buckets"]

AREA_BUCKETS = {"small": 32**2, "medium": 96**2, "large": float("inf")}  # bucket -> exclusive upper area limit


def area_bucket(boxes: np.ndarray) -> np.ndarray:
    """Bucket index (0 small, 1 medium, 2 large) of each ``(N, 4)`` xyxy box by its area."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    return _bucket_of_area((boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0))


def _bucket_of_area(area: np.ndarray) -> np.ndarray:
    return np.searchsorted(list(AREA_BUCKETS.values()), area, side="right")


def _box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas of ``(N, 4)`` xyxy boxes, or of ``(N, 5)`` rotated ``xywhr`` boxes (OBB)."""
    if boxes.shape[-1] == 5:
        return boxes[:, 2] * boxes[:, 3]
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def _matched_by_confidence(iou: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Predictions in descending confidence each take the unclaimed label they overlap most, if at least the
    threshold; returns the label index each prediction took per threshold, -1 for none."""
    taken = np.full((iou.shape[1], len(thresholds)), -1)
    claimed = np.zeros((iou.shape[0], len(thresholds)), dtype=bool)
    columns = np.arange(len(thresholds))
    for j in range(iou.shape[1]):
        available = np.where(claimed, 0, iou[:, j, None])
        best = available.argmax(0)
        hit = available[best, columns] >= thresholds
        taken[j] = np.where(hit, best, -1)
        claimed[best[hit], columns[hit]] = True
    return taken


def _matched_by_iou(iou: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Label-prediction pairs in descending IoU; each prediction keeps its best pair, then each label its first
    remaining one (by prediction index); returns the label index per prediction and threshold, -1 for none."""
    taken = np.full((iou.shape[1], len(thresholds)), -1)
    for i, threshold in enumerate(thresholds):
        pairs = np.array(np.nonzero(iou >= threshold)).T  # (label, prediction)
        if len(pairs) > 1:
            pairs = pairs[iou[pairs[:, 0], pairs[:, 1]].argsort()[::-1]]
            pairs = pairs[np.unique(pairs[:, 1], return_index=True)[1]]
            pairs = pairs[np.unique(pairs[:, 0], return_index=True)[1]]
        taken[pairs[:, 1], i] = pairs[:, 0]
    return taken


# The rules Ultralytics' ``match_predictions`` (without scipy) has followed, newest first.
MATCH_RULES = (_matched_by_confidence, _matched_by_iou)


class AreaBuckets:
    """Per-bucket TP matrices, confidences and classes, accumulated image by image, then scored.

    Args:
        match (callable): ``match(pred_cls, true_cls, iou) -> (n_pred, n_thresholds)`` booleans, the validator's own
            ``match_predictions``.
        iou (callable): ``iou(true_boxes, pred_boxes) -> (n_true, n_pred)``, the IoU the validator matches with.
        thresholds (torch.Tensor, optional): The validator's IoU thresholds, its ``iouv``; by default Ultralytics'
            0.50, 0.55, ..., 0.95.
    """

    def __init__(self, match, iou, thresholds: torch.Tensor | None = None):
        self.match, self.iou = match, iou
        self.thresholds = (torch.linspace(0.5, 0.95, 10) if thresholds is None else thresholds).cpu().numpy()
        self.stats = {name: {"tp": [], "conf": [], "pred_cls": [], "target_cls": []} for name in AREA_BUCKETS}

    def _matched_labels(self, pred_cls: torch.Tensor, true_cls: torch.Tensor, iou: torch.Tensor) -> np.ndarray:
        """The label each prediction matched per threshold (-1: none), as the validator matched them."""
        verdicts = self.match(pred_cls, true_cls, iou).cpu().numpy()
        same_class = (iou * (true_cls[:, None] == pred_cls[None, :])).cpu().numpy()
        for rule in MATCH_RULES:
            taken = rule(same_class, self.thresholds)
            if np.array_equal(taken >= 0, verdicts):
                return taken
        raise RuntimeError(
            "area buckets: Ultralytics' match_predictions follows a matching rule that "
            "ultralytics_biformer.bench.metrics does not know (its MATCH_RULES), so the buckets cannot split its "
            "verdicts. Validate without area buckets, or use an Ultralytics version this release was tested with "
            "(8.4.x)"
        )

    def add(self, preds: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], area_gain: float = 1.0) -> None:
        """Add one image.

        Args:
            preds (dict): ``bboxes``, ``conf`` and ``cls`` of its predictions, in the validator's coordinates.
            labels (dict): ``bboxes`` and ``cls`` of its labels, in the same coordinates.
            area_gain (float): Original-image pixels per squared validator pixel (1 / letterbox ratio squared).
        """
        pred_cls, true_cls = preds["cls"], labels["cls"]
        true_bucket = _bucket_of_area(_box_area(labels["bboxes"]).cpu().numpy() * area_gain)
        pred_bucket = _bucket_of_area(_box_area(preds["bboxes"]).cpu().numpy() * area_gain)
        # The bucket of the label each prediction matched, per threshold; -1 where it matched none.
        match_bucket = np.full((len(pred_cls), len(self.thresholds)), -1)
        if len(pred_cls) and len(true_cls):
            taken = self._matched_labels(pred_cls, true_cls, self.iou(labels["bboxes"], preds["bboxes"]))
            match_bucket = np.where(taken >= 0, true_bucket[taken], -1)
            loosest = match_bucket[np.arange(len(taken)), (taken >= 0).argmax(1)]  # -1 if it never matched
            pred_bucket = np.where(loosest >= 0, loosest, pred_bucket)
        for b, stats in enumerate(self.stats.values()):
            p, t = torch.from_numpy(pred_bucket == b), torch.from_numpy(true_bucket == b)
            stats["tp"].append(match_bucket[p.numpy()] == b)
            stats["conf"].append(preds["conf"][p].cpu().numpy())
            stats["pred_cls"].append(pred_cls[p].cpu().numpy())
            stats["target_cls"].append(true_cls[t].cpu().numpy())

    def compute(self) -> dict[str, float | None]:
        """mAP50-95 per bucket, with Ultralytics' ``ap_per_class``; None for a bucket without labels."""
        from ultralytics.utils.metrics import ap_per_class

        result = {}
        for name, stats in self.stats.items():
            tp, conf, pred_cls, target_cls = (
                np.concatenate(stats[k]) if stats[k] else np.zeros(0) for k in ("tp", "conf", "pred_cls", "target_cls")
            )
            if not len(target_cls):
                result[name] = None
            elif not len(tp):
                result[name] = 0.0
            else:
                ap = ap_per_class(tp, conf, pred_cls, target_cls)[5]  # (classes with labels or predictions, 10)
                result[name] = round(float(ap.mean()), 6)
        return result


def _area_gain(labels: dict) -> float:
    ratio_pad = labels.get("ratio_pad")
    if ratio_pad is None:
        return 1.0
    gain_h, gain_w = (float(g) for g in ratio_pad[0])
    return 1.0 / (gain_h * gain_w)


def with_area_buckets(validator_cls: type) -> type:
    """A subclass of an Ultralytics box validator class whose metrics also carry ``area_map``: mAP50-95 per bucket.

    Examples:
        >>> from ultralytics.models.yolo.detect import DetectionValidator
        >>> Validator = with_area_buckets(DetectionValidator)  # then: YOLO("best.pt").val(validator=Validator, ...)
        >>> Validator.__name__
        'AreaBucketDetectionValidator'
    """

    def init_metrics(self, model) -> None:
        validator_cls.init_metrics(self, model)
        iou = _iou_of(self)
        self.area_buckets = AreaBuckets(self.match_predictions, iou, self.iouv)

    def _process_batch(self, preds, batch):
        result = validator_cls._process_batch(self, preds, batch)
        self.area_buckets.add(preds, batch, _area_gain(batch))
        return result

    def get_stats(self):
        stats = validator_cls.get_stats(self)
        self.metrics.area_map = self.area_buckets.compute()
        return stats

    return type(
        f"AreaBucket{validator_cls.__name__}",
        (validator_cls,),
        {"init_metrics": init_metrics, "_process_batch": _process_batch, "get_stats": get_stats},
    )


def _iou_of(validator) -> callable:
    """The IoU function the validator matches boxes with: rotated for OBB, axis-aligned otherwise."""
    from ultralytics.utils.metrics import batch_probiou, box_iou

    return batch_probiou if getattr(validator.args, "task", "detect") == "obb" else box_iou


@dataclass(frozen=True)
class Metric:
    """One accuracy metric as a comparison records and reports it.

    Attributes:
        key (str): The record key (JSON record, CSV column stem), e.g. ``map``.
        column (str | None): Its name in Ultralytics: the validator's ``results_dict`` key, which is also the
            ``results.csv`` column; None for the area buckets, which Ultralytics does not compute.
        title (str): The Markdown column title.
        digits (int): Decimals shown.
        per_epoch (bool): Whether the record keeps its ``results.csv`` column as a per-epoch curve.
    """

    key: str
    column: str | None
    title: str
    digits: int = 4
    per_epoch: bool = True


@dataclass(frozen=True)
class TaskMetrics:
    """What a comparison reports for one task.

    Attributes:
        task (str): The Ultralytics task.
        metrics (tuple[Metric, ...]): The metrics read from the final validation's ``results_dict``.
        primary (str): The key of the metric that verdicts, progress lines and the figure use.
        area_buckets (bool): Whether the task has boxes, hence small / medium / large mAP50-95.
        bucket_prefix (str): Prefix of the bucket titles, naming the boxes where the task has other kinds of mAP.
    """

    task: str
    metrics: tuple[Metric, ...]
    primary: str
    area_buckets: bool
    bucket_prefix: str = ""

    @property
    def accuracy(self) -> tuple[Metric, ...]:
        """Every accuracy metric of a run: the validator's, then the area buckets where the task has boxes."""
        if not self.area_buckets:
            return self.metrics
        letters = {"small": "S", "medium": "M", "large": "L"}
        titles = {name: f"{self.bucket_prefix}mAP50-95 {letters[name]}" for name in AREA_BUCKETS}
        return (*self.metrics, *(Metric(f"map_{name}", None, title) for name, title in titles.items()))

    def metric(self, key: str) -> Metric:
        """The accuracy metric recorded under ``key``."""
        return next(m for m in self.accuracy if m.key == key)

    @property
    def curve_columns(self) -> tuple[str, ...]:
        """The ``results.csv`` metric columns a record keeps per epoch (losses are kept for every task)."""
        return tuple(m.column for m in self.metrics if m.per_epoch)

    def record(self, results: dict[str, float], area_map: dict[str, float | None] | None = None) -> dict:
        """A run's accuracy record from its validator's ``results_dict`` and, where the task has boxes, ``area_map``."""
        record = {m.key: round(float(results[m.column]), 6) for m in self.metrics}
        if self.area_buckets:
            record.update({f"map_{name}": value for name, value in (area_map or {}).items()})
        return record


def _box_metrics(prefix: str = "") -> tuple[Metric, ...]:
    """Ultralytics' box metrics; ``prefix`` names them where a task has other kinds too."""
    return (
        Metric("map", "metrics/mAP50-95(B)", f"{prefix}mAP50-95"),
        Metric("map50", "metrics/mAP50(B)", f"{prefix}mAP50"),
        Metric("precision", "metrics/precision(B)", f"{prefix}P", 3, per_epoch=False),
        Metric("recall", "metrics/recall(B)", f"{prefix}R", 3, per_epoch=False),
    )


# The record keys of detect (map, map50, precision, recall, map_small, ...) are those of every earlier comparison:
# runs recorded before this table existed resume and report unchanged.
TASK_METRICS = {
    "detect": TaskMetrics("detect", _box_metrics(), primary="map", area_buckets=True),
    "segment": TaskMetrics(
        "segment",
        (
            *_box_metrics("box "),
            Metric("mask_map", "metrics/mAP50-95(M)", "mask mAP50-95"),
            Metric("mask_map50", "metrics/mAP50(M)", "mask mAP50"),
        ),
        primary="mask_map",
        area_buckets=True,
        bucket_prefix="box ",
    ),
    "pose": TaskMetrics(
        "pose",
        (
            *_box_metrics("box "),
            Metric("pose_map", "metrics/mAP50-95(P)", "pose mAP50-95"),
            Metric("pose_map50", "metrics/mAP50(P)", "pose mAP50"),
        ),
        primary="pose_map",
        area_buckets=True,
        bucket_prefix="box ",
    ),
    "obb": TaskMetrics("obb", _box_metrics(), primary="map", area_buckets=True),
    "classify": TaskMetrics(
        "classify",
        (Metric("top1", "metrics/accuracy_top1", "top-1"), Metric("top5", "metrics/accuracy_top5", "top-5")),
        primary="top1",
        area_buckets=False,
    ),
}

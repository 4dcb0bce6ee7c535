"""COCO-style small / medium / large mAP50-95 for a trained detector, which Ultralytics does not report.

Areas are box areas in pixels of the original image, with COCO's limits: small below 32x32, medium up to 96x96,
large above. Every ground-truth box belongs to the bucket of its area. Every prediction belongs to exactly one bucket:
that of the same-class ground truth it overlaps most if that overlap is at least IoU 0.5, otherwise that of its own
area. Each bucket is then scored on its own like a whole dataset, with Ultralytics' matching and
``ap_per_class``. This differs from pycocotools in one respect: COCO ignores, rather than counts as false positives,
unmatched predictions that fall outside the bucket by size; here each such prediction is counted in the bucket of its
own area, so every false positive is counted exactly once across the buckets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["AREA_BUCKETS", "AreaMAP", "area_bucket", "list_images", "match_predictions", "read_yolo_boxes"]

AREA_BUCKETS = {"small": 32**2, "medium": 96**2, "large": float("inf")}  # bucket -> exclusive upper area limit
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
IMAGE_SUFFIXES = {".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic"}


def area_bucket(boxes: np.ndarray) -> np.ndarray:
    """Bucket index (0 small, 1 medium, 2 large) of each ``(N, 4)`` xyxy box by its area."""
    area = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    return np.searchsorted(list(AREA_BUCKETS.values()), area, side="right")


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every xyxy box in ``a`` (N, 4) with every box in ``b`` (M, 4): (N, M)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clip(0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def match_predictions(iou: np.ndarray, gt_cls: np.ndarray, pred_cls: np.ndarray) -> np.ndarray:
    """Ultralytics' greedy matching: ``(n_pred, 10)`` booleans, True where a prediction is a TP at that IoU threshold.

    Args:
        iou (np.ndarray): ``(n_gt, n_pred)`` IoU matrix.
        gt_cls (np.ndarray): ``(n_gt,)`` ground-truth classes.
        pred_cls (np.ndarray): ``(n_pred,)`` predicted classes.
    """
    correct = np.zeros((len(pred_cls), len(IOU_THRESHOLDS)), dtype=bool)
    iou = iou * (gt_cls[:, None] == pred_cls[None, :])
    for i, threshold in enumerate(IOU_THRESHOLDS):
        matches = np.argwhere(iou >= threshold)  # (gt, pred) pairs
        if len(matches) > 1:
            matches = matches[iou[matches[:, 0], matches[:, 1]].argsort()[::-1]]  # best overlap first
            matches = matches[np.unique(matches[:, 1], return_index=True)[1]]  # one gt per prediction
            matches = matches[np.unique(matches[:, 0], return_index=True)[1]]  # one prediction per gt
        correct[matches[:, 1], i] = True
    return correct


@dataclass
class AreaMAP:
    """Accumulates per-image predictions and ground truth, then scores each area bucket.

    Examples:
        >>> acc = AreaMAP()
        >>> gt = np.array([[0, 0, 10, 10.0]])
        >>> acc.add(gt, np.array([0.9]), np.array([0]), gt, np.array([0]))
        >>> acc.compute()["small"]
        0.995
    """

    _stats: dict = field(default_factory=lambda: {name: ([], [], [], []) for name in AREA_BUCKETS})

    def add(self, pred_boxes, pred_conf, pred_cls, gt_boxes, gt_cls) -> None:
        """Add one image: xyxy boxes in original-image pixels, confidences and classes of predictions and labels."""
        pred_boxes, gt_boxes = np.asarray(pred_boxes, float).reshape(-1, 4), np.asarray(gt_boxes, float).reshape(-1, 4)
        pred_conf, pred_cls, gt_cls = (np.asarray(x, float).reshape(-1) for x in (pred_conf, pred_cls, gt_cls))
        iou = box_iou(gt_boxes, pred_boxes)
        gt_bucket, pred_bucket = area_bucket(gt_boxes), area_bucket(pred_boxes)
        if len(gt_boxes) and len(pred_boxes):  # predictions matching a label at IoU 0.5 join the label's bucket
            same_class_iou = iou * (gt_cls[:, None] == pred_cls[None, :])
            best = same_class_iou.argmax(0)
            matched = same_class_iou[best, np.arange(len(pred_boxes))] >= IOU_THRESHOLDS[0]
            pred_bucket = np.where(matched, gt_bucket[best], pred_bucket)
        for b, (tp, conf, cls, target) in enumerate(self._stats.values()):
            p, g = pred_bucket == b, gt_bucket == b
            tp.append(match_predictions(iou[np.ix_(g, p)], gt_cls[g], pred_cls[p]))
            conf.append(pred_conf[p])
            cls.append(pred_cls[p])
            target.append(gt_cls[g])

    def compute(self) -> dict[str, float | None]:
        """mAP50-95 per bucket; None for a bucket without ground truth."""
        from ultralytics.utils.metrics import ap_per_class

        result = {}
        for name, (tp, conf, cls, target) in self._stats.items():
            target = np.concatenate(target) if target else np.zeros(0)
            if not len(target):
                result[name] = None
                continue
            tp, conf, cls = np.concatenate(tp), np.concatenate(conf), np.concatenate(cls)
            ap = ap_per_class(tp, conf, cls, target)[5]  # (classes with labels, 10)
            result[name] = round(float(ap.mean()), 6) if len(tp) else 0.0
        return result


def list_images(source: str | Path | list) -> list[Path]:
    """The image files of an Ultralytics split entry: folders (searched recursively), ``.txt`` lists, or files."""
    files = []
    for entry in source if isinstance(source, (list, tuple)) else [source]:
        path = Path(entry)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.suffix == ".txt":
            parent = str(path.parent) + os.sep
            lines = [x.strip() for x in path.read_text().splitlines() if x.strip()]
            files += [Path(x.replace("./", parent, 1) if x.startswith("./") else x) for x in lines]
        else:
            files.append(path)
    return files


def read_yolo_boxes(image: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """An image's YOLO labels as pixel xyxy boxes and classes; polygons (segment labels) become their bounding box."""
    from ultralytics.data.utils import img2label_paths

    label = Path(img2label_paths([str(image)])[0])
    rows = [line.split() for line in label.read_text().splitlines() if line.strip()] if label.is_file() else []
    boxes, classes = [], []
    for row in rows:
        values = np.array(row[1:], dtype=float)
        if len(values) == 4:
            xc, yc, w, h = values
            box = [xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2]
        else:
            xy = values[: len(values) // 2 * 2].reshape(-1, 2)
            box = [*xy.min(0), *xy.max(0)]
        boxes.append(np.array(box) * [width, height, width, height])
        classes.append(int(float(row[0])))
    return np.array(boxes, dtype=float).reshape(-1, 4), np.array(classes, dtype=float)

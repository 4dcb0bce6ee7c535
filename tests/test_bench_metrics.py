"""Tests of ``ultralytics_biformer.bench.metrics``: each task's metric keys, and area-bucket mAP, matched exactly as
Ultralytics' validator matches and scored per object size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.utils.metrics import ap_per_class, box_iou

from ultralytics_biformer.bench.metrics import AreaBuckets, area_bucket, with_area_buckets


@pytest.fixture(scope="module")
def validator():
    return DetectionValidator(args={"task": "detect"})


def random_image(rng: np.random.Generator, max_side: float, n_true: int, n_pred: int, n_cls: int = 3):
    """Labels in overlapping clusters, and predictions jittered off them (some off class, some strays), sorted by
    confidence as after NMS. Overlapping labels make predictions compete, where matching rules differ."""
    centres = rng.uniform(0, 200, (int(rng.integers(1, 3)), 2))
    xy = centres[rng.integers(0, len(centres), n_true)] + rng.normal(0, 2, (n_true, 2))
    true = np.concatenate([xy, xy + rng.uniform(max_side / 2, max_side, (n_true, 2))], 1)
    true_cls = rng.integers(0, n_cls, n_true)
    source = rng.integers(0, n_true, n_pred)
    pred = true[source] + rng.normal(0, 1.5, (n_pred, 4))
    stray = rng.random(n_pred) < 0.2
    pred[stray] = np.concatenate([xy := rng.uniform(0, 200, (stray.sum(), 2)), xy + 8], 1)
    pred[:, 2:] = np.clip(pred[:, 2:], pred[:, :2] + 1, pred[:, :2] + max_side)
    pred_cls = np.where(rng.random(n_pred) < 0.8, true_cls[source], rng.integers(0, n_cls, n_pred))
    labels = {"bboxes": torch.tensor(true), "cls": torch.tensor(true_cls, dtype=torch.float64)}
    preds = {
        "bboxes": torch.tensor(pred),
        "conf": torch.tensor(np.sort(rng.random(n_pred))[::-1].copy()),
        "cls": torch.tensor(pred_cls, dtype=torch.float64),
    }
    return preds, labels


def test_one_bucket_reproduces_the_validators_matching_and_map_exactly(validator):
    """With every box small, the small bucket is the whole dataset: same TP matrix, same mAP50-95."""
    rng = np.random.default_rng(0)
    buckets = AreaBuckets(validator.match_predictions, box_iou)
    overall = {"tp": [], "conf": [], "pred_cls": [], "target_cls": []}
    for _ in range(200):
        preds, labels = random_image(rng, max_side=30, n_true=int(rng.integers(1, 8)), n_pred=int(rng.integers(1, 12)))
        expected = validator._process_batch(preds, labels)["tp"]
        buckets.add(preds, labels)
        assert np.array_equal(buckets.stats["small"]["tp"][-1], expected)
        overall["tp"].append(expected)
        overall["conf"].append(preds["conf"].numpy())
        overall["pred_cls"].append(preds["cls"].numpy())
        overall["target_cls"].append(labels["cls"].numpy())
    stats = {k: np.concatenate(v) for k, v in overall.items()}
    expected_map = ap_per_class(stats["tp"], stats["conf"], stats["pred_cls"], stats["target_cls"])[5].mean()
    scores = buckets.compute()
    assert 0.05 < expected_map < 0.95  # a case where matching decides the score
    assert scores["small"] == round(float(expected_map), 6)
    assert scores["medium"] is None and scores["large"] is None


def boxes(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_each_object_size_is_scored_on_its_own(validator):
    small, medium, large = [0, 0, 10, 10.0], [20, 20, 70, 70.0], [0, 100, 150, 250.0]
    labels = {"bboxes": boxes(small, medium, large), "cls": boxes(0, 1, 1)}

    perfect = AreaBuckets(validator.match_predictions, box_iou)
    for _ in range(3):
        perfect.add({"bboxes": boxes(small, medium, large), "conf": boxes(0.9, 0.8, 0.7), "cls": boxes(0, 1, 1)}, labels)
    assert all(score > 0.99 for score in perfect.compute().values())

    missed_large = AreaBuckets(validator.match_predictions, box_iou)
    missed_large.add({"bboxes": boxes(small, medium), "conf": boxes(0.9, 0.8), "cls": boxes(0, 1)}, labels)
    scores = missed_large.compute()
    assert scores["small"] > 0.99 and scores["medium"] > 0.99 and scores["large"] == 0

    stray_large = AreaBuckets(validator.match_predictions, box_iou)  # a confident large false positive...
    preds = {"bboxes": boxes([0, 0, 100, 100.0], small), "conf": boxes(0.95, 0.9), "cls": boxes(0, 0)}
    stray_large.add(preds, {"bboxes": boxes(small), "cls": boxes(0)})
    scores = stray_large.compute()
    assert scores["small"] > 0.99  # ...does not lower small-object AP
    assert scores["medium"] is None and scores["large"] is None  # no labels of those sizes


def test_a_prediction_counts_in_the_bucket_of_the_label_the_validator_matched_it_to(validator):
    """The confident prediction takes the small label, so the validator matches the second one to the medium label it
    overlaps less: that true positive belongs to the medium bucket, not to the small label it overlaps most."""
    labels = {"bboxes": boxes([0, 0, 30, 30], [0, 0, 40, 40]), "cls": boxes(0, 0)}  # 900 px small, 1600 px medium
    preds = {"bboxes": boxes([0, 0, 30, 30], [0, 0, 34, 34]), "conf": boxes(0.9, 0.8), "cls": boxes(0, 0)}
    expected = validator._process_batch(preds, labels)["tp"]
    assert expected[1].any()  # the validator counts the second prediction, on the medium label
    buckets = AreaBuckets(validator.match_predictions, box_iou, validator.iouv)
    buckets.add(preds, labels)
    assert np.array_equal(buckets.stats["small"]["tp"][-1], expected[:1])
    assert np.array_equal(buckets.stats["medium"]["tp"][-1], expected[1:])
    assert buckets.compute()["medium"] > 0


def test_buckets_split_the_validators_verdicts_where_predictions_compete_across_sizes(validator):
    """Labels of all sizes piled up: per threshold, the buckets' true positives add up to the validator's, except
    where a prediction's matches at different thresholds lie in different buckets (then it is counted in one)."""
    rng, compared = np.random.default_rng(1), 0
    for _ in range(200):
        preds, labels = random_image(rng, max_side=150, n_true=int(rng.integers(1, 8)), n_pred=int(rng.integers(1, 12)))
        expected = validator._process_batch(preds, labels)["tp"]
        buckets = AreaBuckets(validator.match_predictions, box_iou, validator.iouv)
        buckets.add(preds, labels)
        found = sum(stats["tp"][-1].sum(0) for stats in buckets.stats.values())
        assert sum(len(stats["tp"][-1]) for stats in buckets.stats.values()) == len(expected)  # each counted once
        assert (found <= expected.sum(0)).all()
        taken = buckets._matched_labels(preds["cls"], labels["cls"], box_iou(labels["bboxes"], preds["bboxes"]))
        true_bucket = area_bucket(labels["bboxes"].numpy())
        if all(len(set(true_bucket[row[row >= 0]])) <= 1 for row in taken):
            assert np.array_equal(found, expected.sum(0))
            compared += 1
    assert compared > 150


def test_a_matching_rule_it_cannot_replay_stops_validation(validator):
    def everything_matches(pred_cls, true_cls, iou):
        return torch.ones(len(pred_cls), 10, dtype=torch.bool)

    buckets = AreaBuckets(everything_matches, box_iou)
    preds = {"bboxes": boxes([0, 0, 10, 10.0], [50, 50, 60, 60.0]), "conf": boxes(0.9, 0.8), "cls": boxes(0, 0)}
    with pytest.raises(RuntimeError, match="matching rule that ultralytics_biformer.bench.metrics does not know"):
        buckets.add(preds, {"bboxes": boxes([0, 0, 10, 10.0]), "cls": boxes(0)})


def test_areas_are_counted_in_original_image_pixels(validator):
    """A 20x20 box in a letterboxed image shrunk by half is 40x40 in the original: medium, not small."""
    box = [0, 0, 20, 20.0]
    buckets = AreaBuckets(validator.match_predictions, box_iou)
    buckets.add({"bboxes": boxes(box), "conf": boxes(0.9), "cls": boxes(0)}, {"bboxes": boxes(box), "cls": boxes(0)}, 4.0)
    scores = buckets.compute()
    assert scores["small"] is None and scores["medium"] > 0.99


def test_area_bucket_limits_are_cocos():
    assert area_bucket(np.array([[0, 0, 31, 31], [0, 0, 32, 32], [0, 0, 96, 96], [0, 0, 97, 97.0]])).tolist() == [
        0,
        1,
        2,
        2,
    ]


def test_validator_subclass_keeps_the_task_validator_and_adds_area_map():
    from ultralytics.models.yolo.segment import SegmentationValidator

    cls = with_area_buckets(SegmentationValidator)
    assert issubclass(cls, SegmentationValidator) and cls.__name__ == "AreaBucketSegmentationValidator"


def _masks(boxes_xyxy: torch.Tensor, size: int = 256) -> torch.Tensor:
    """Filled-box masks, one per box, on a ``size`` x ``size`` canvas."""
    masks = torch.zeros(len(boxes_xyxy), size, size)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes_xyxy.round().int().tolist()):
        mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = 1
    return masks


def _corners(boxes_xyxy: torch.Tensor, visibility: float) -> torch.Tensor:
    """Four keypoints per box (its corners) with a visibility or confidence."""
    x0, y0, x1, y1 = boxes_xyxy.float().unbind(1)
    points = torch.stack([torch.stack(p, 1) for p in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))], 1)
    return torch.cat([points, torch.full((*points.shape[:2], 1), visibility)], 2)


@pytest.mark.parametrize("task", ["segment", "pose"])
def test_segment_and_pose_validators_keep_their_results_and_bucket_their_boxes(task):
    """The area-bucket subclass of a segment or pose validator returns exactly the stock validator's matches (boxes and
    masks or keypoints), and buckets the same box matches."""
    from ultralytics.models.yolo.pose import PoseValidator
    from ultralytics.models.yolo.segment import SegmentationValidator

    from ultralytics_biformer.bench.metrics import _iou_of

    stock_cls = {"segment": SegmentationValidator, "pose": PoseValidator}[task]
    stock, ours = stock_cls(args={"task": task}), with_area_buckets(stock_cls)(args={"task": task})
    ours.area_buckets = AreaBuckets(ours.match_predictions, _iou_of(ours))  # as init_metrics does, without a model
    assert _iou_of(ours) is box_iou
    if task == "pose":
        stock.sigma = ours.sigma = np.ones(4) / 4  # init_metrics' choice for a non-COCO kpt_shape
    rng = np.random.default_rng(1)
    second = {"segment": "tp_m", "pose": "tp_p"}[task]
    for _ in range(30):
        preds, labels = random_image(rng, max_side=30, n_true=int(rng.integers(1, 6)), n_pred=int(rng.integers(1, 8)))
        if task == "segment":
            preds["masks"], labels["masks"] = _masks(preds["bboxes"]), _masks(labels["bboxes"])
        else:
            preds["keypoints"], labels["keypoints"] = _corners(preds["bboxes"], 0.9), _corners(labels["bboxes"], 2.0)
        expected, result = stock._process_batch(preds, labels), ours._process_batch(preds, labels)
        assert set(result) == {"tp", second}
        assert np.array_equal(result["tp"], expected["tp"]) and np.array_equal(result[second], expected[second])
        assert np.array_equal(ours.area_buckets.stats["small"]["tp"][-1], expected["tp"])
    assert ours.area_buckets.compute()["small"] is not None


def test_detect_records_keep_their_metric_keys():
    from ultralytics_biformer.bench.metrics import TASK_METRICS

    detect = TASK_METRICS["detect"]
    assert [m.key for m in detect.accuracy] == [
        "map",
        "map50",
        "precision",
        "recall",
        "map_small",
        "map_medium",
        "map_large",
    ]
    assert set(detect.curve_columns) == {"metrics/mAP50(B)", "metrics/mAP50-95(B)"}

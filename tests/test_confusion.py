"""The multi-class confusion matrix against hand-computed values."""
import json

import numpy as np
import pytest

from roadseg.evaluation.metrics import ConfusionMatrix, RoadEvaluator, confusion

I = 255  # ignore
LABEL = np.array([[0, 0, 0, 1, 1, 2, 2, 2, I, I]], np.uint8)
PRED = np.array([[0, 0, 1, 1, 2, 2, 2, 0, 1, 2]], np.uint8)
# rows = label, columns = prediction (the two ignore pixels are left out):
#   label 0 -> predicted 0, 0, 1   label 1 -> 1, 2   label 2 -> 2, 2, 0
COUNTS = [[2, 1, 0],
          [0, 1, 1],
          [1, 0, 2]]
# TP (2, 1, 2), labelled (3, 2, 3), predicted (3, 2, 3)
IOU = [2 / (3 + 3 - 2), 1 / (2 + 2 - 1), 2 / (3 + 3 - 2)]   # 0.5, 1/3, 0.5
ACCURACY = [2 / 3, 1 / 2, 2 / 3]


def test_hand_computed():
    cm = ConfusionMatrix(3)
    assert cm.add(PRED, LABEL) == pytest.approx(4 / 9)
    r = cm.results(['a', 'b', 'c'])
    assert r['counts'] == COUNTS
    assert r['class_iou'] == pytest.approx(IOU)
    assert r['mean_iou'] == pytest.approx(4 / 9)
    assert r['pixel_accuracy'] == pytest.approx(5 / 8)
    assert r['class_accuracy'] == pytest.approx(ACCURACY)
    assert r['mean_class_accuracy'] == pytest.approx(11 / 18)
    assert r['classes'] == ['a', 'b', 'c'] and r['class_pixels'] == [3, 2, 3] and r['pixels'] == 8
    assert json.loads(json.dumps(r)) == r  # plain Python types only


def test_absent_classes_are_left_out_of_the_means():
    cm = ConfusionMatrix(5)  # class 3 in neither labels nor predictions; class 4 only predicted
    label = np.concatenate([LABEL, [[0]]], axis=1).astype(np.uint8)
    pred = np.concatenate([PRED, [[4]]], axis=1).astype(np.uint8)
    cm.add(pred, label)
    r = cm.results()
    # label 0 is now predicted 0, 0, 1, 4: IoU 0 = 2 / (4 + 3 - 2), accuracy 0 = 2 / 4; class 4: IoU 0
    iou = [2 / 5, 1 / 3, 1 / 2, None, 0.0]
    assert r['class_iou'][3] is None and r['class_iou'][4] == 0.0
    assert r['class_iou'][:3] == pytest.approx(iou[:3])
    assert r['mean_iou'] == pytest.approx((2 / 5 + 1 / 3 + 1 / 2 + 0.0) / 4)
    assert r['class_accuracy'][3] is None and r['class_accuracy'][4] is None
    assert r['mean_class_accuracy'] == pytest.approx((2 / 4 + 1 / 2 + 2 / 3) / 3)
    assert r['pixel_accuracy'] == pytest.approx(5 / 9)
    assert r['classes'] == ['0', '1', '2', '3', '4']


def test_accumulates_over_images():
    cm = ConfusionMatrix(3)
    cm.add(PRED[:, :5], LABEL[:, :5])
    cm.add(PRED[:, 5:], LABEL[:, 5:])
    assert cm.results()['counts'] == COUNTS
    assert np.array_equal(confusion(PRED, LABEL, 3), np.array(COUNTS))


def test_nothing_labelled():
    cm = ConfusionMatrix(2)
    assert cm.add(np.zeros((2, 2), np.uint8), np.full((2, 2), I, np.uint8)) is None
    r = cm.results()
    assert r['mean_iou'] is None and r['pixel_accuracy'] is None and r['mean_class_accuracy'] is None
    assert r['pixels'] == 0 and r['class_iou'] == [None, None]


def test_two_classes_agree_with_the_road_evaluator():
    rng = np.random.RandomState(0)
    label = rng.randint(0, 2, (20, 30)).astype(np.uint8)
    label[:3] = I
    prob = np.clip(label * 0.6 + rng.uniform(0, 0.5, label.shape), 0, 1).astype(np.float32)
    road = RoadEvaluator()
    road.add(prob, label)
    cm = ConfusionMatrix(2)
    cm.add((prob > 0.5).astype(np.uint8), label)
    assert cm.results()['class_iou'][1] == pytest.approx(road.results()['overall']['iou'])


@pytest.mark.parametrize('pred, label, message', [
    (np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), 'differ in shape'),
    (np.zeros((1, 2), np.uint8), np.array([[0, 3]], np.uint8), 'label value 3'),
    (np.array([[0, 7]], np.uint8), np.zeros((1, 2), np.uint8), 'prediction value 7'),
    (np.array([[0, -1]], np.int32), np.zeros((1, 2), np.uint8), 'prediction value -1'),
])
def test_bad_maps(pred, label, message):
    with pytest.raises(ValueError, match=message):
        ConfusionMatrix(3).add(pred, label)


def test_bad_construction():
    with pytest.raises(ValueError):
        ConfusionMatrix(0)
    with pytest.raises(ValueError):
        ConfusionMatrix(3, ignore_index=2)
    with pytest.raises(ValueError, match='2 class names'):
        ConfusionMatrix(3).results(['a', 'b'])

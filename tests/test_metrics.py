"""Metrics against hand-computed values on synthetic predictions."""
import json
import os

import numpy as np
import pytest

from conftest import SAMPLE, kept_entry, run_cli
from roadseg.data.datasets import IGNORE
from roadseg.evaluation.metrics import RoadEvaluator, summarize


def test_known_prediction():
    # 10 pixels: 4 road, 5 background, 1 don't care (ignored even though its prob is 1)
    classes = np.array([[1, 1, 1, 1, 0, 0, 0, 0, 0, IGNORE]], np.uint8)
    prob = np.array([[0.9, 0.8, 0.6, 0.2, 0.7, 0.1, 0.1, 0.0, 0.0, 1.0]], np.float32)
    ev = RoadEvaluator()
    f1_half = ev.add(prob, classes, 'um')
    r = ev.results()['overall']
    # at 0.5: TP 3 (0.9, 0.8, 0.6), FP 1 (0.7), FN 1 (0.2), TN 4
    assert f1_half == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert r['iou'] == pytest.approx(3 / 5)
    assert r['road_labeled_road'] == pytest.approx(0.75) and r['nonroad_labeled_road'] == pytest.approx(0.2)
    assert r['rubric_passed'] is False  # 0.75 < 0.8
    # sweep: at t in (0.2, 0.6], TP 3 FP 1 -> F1 0.75; at t in (0.7, 0.8]: TP 2 FP 0 FN 2 -> 0.667;
    # at t <= 0.2 (but > 0.1): TP 4 FP 1 -> P 0.8 R 1 -> F1 8/9 = 0.889, the maximum
    assert r['max_f1'] == pytest.approx(8 / 9)
    assert 0.1 < r['max_f1_threshold'] <= 0.2
    assert r['precision'] == pytest.approx(0.8) and r['recall'] == pytest.approx(1.0)
    # 11-point AP: best precision is 1 for recall levels 0..0.5 (t in (0.7, 0.8]) and 0.8 for 0.6..1
    assert r['average_precision'] == pytest.approx((6 * 1.0 + 5 * 0.8) / 11)
    assert r['road_pixels'] == 4 and r['nonroad_pixels'] == 5


def test_perfect_and_categories():
    ev = RoadEvaluator()
    classes = np.zeros((4, 4), np.uint8)
    classes[2:] = 1
    ev.add(classes.astype(np.float32), classes, 'um')
    ev.add(1.0 - classes.astype(np.float32), classes, 'uu')  # everything wrong
    res = ev.results()
    assert res['um']['max_f1'] == 1.0 and res['um']['iou'] == 1.0 and res['um']['rubric_passed']
    assert res['uu']['iou'] == 0.0 and not res['uu']['rubric_passed']
    assert res['overall']['iou'] == pytest.approx(8 / (8 + 8 + 8))  # TP 8 (um), FP 8 and FN 8 (uu)


def test_summarize_empty_is_defined():
    r = summarize(np.zeros(256, np.int64), np.zeros(256, np.int64), np.zeros(4, np.int64))
    assert r['max_f1'] == 0.0 and r['iou'] == 0.0


def test_evaluate_command_on_tiny_run(tiny_run, capsys):
    """The --evaluate path end to end on a checkpoint trained here (tiny model, one epoch)."""
    assert run_cli('--evaluate', tiny_run, '--data-dir', SAMPLE) == 0
    out = os.path.join(tiny_run, 'evaluation_best')
    results = json.load(open(os.path.join(out, 'metrics.json')))
    assert set(results) >= {'overall', 'um', 'umm', 'uu', 'checkpoint', 'images'}
    assert results['images'] == 3
    kept = kept_entry(tiny_run)
    assert results['overall']['iou'] == pytest.approx(kept['val_iou'], abs=1e-3)  # as training validated it
    assert results['overall']['max_f1'] == pytest.approx(kept['val_max_f1'], abs=1e-3)
    assert os.path.getsize(os.path.join(out, 'pr_curve.png')) > 1000
    assert len([f for f in os.listdir(out) if f.startswith('worst_')]) == 3
    assert 'overall' in capsys.readouterr().out
    open(os.path.join(out, 'worst_1_old.png'), 'wb').close()  # a report from an earlier evaluation
    assert run_cli('--evaluate', tiny_run, '--data-dir', SAMPLE) == 0
    assert len([f for f in os.listdir(out) if f.startswith('worst_')]) == 3, 'stale overlays removed'



def test_evaluate_bf16(tiny_run, capsys):
    """--bf16 evaluates with oneDNN bfloat16 auto mixed precision on TF 2.x; TF 1.15 says it cannot."""
    from roadseg.system.tfcompat import tf
    code = run_cli('--evaluate', tiny_run, '--data-dir', SAMPLE, '--bf16')
    if tf.__version__.startswith('1.'):
        assert code == 2 and '--bf16: bf16 mixed precision needs TensorFlow 2.9' in capsys.readouterr().err
        return
    assert code == 0
    results = json.load(open(os.path.join(tiny_run, 'evaluation_best_bf16', 'metrics.json')))
    assert results['bf16'] is True and results['precision'] == 'bf16'
    assert run_cli('--evaluate', tiny_run, '--data-dir', SAMPLE, '--precision', 'fp32') == 0
    fp32 = json.load(open(os.path.join(tiny_run, 'evaluation_best_fp32', 'metrics.json')))
    for key in ('max_f1', 'average_precision'):  # bf16 rounds the probabilities; these sweep every threshold
        assert abs(results['overall'][key] - fp32['overall'][key]) < 0.02, key


def test_init_from_a_run_starts_from_its_weights(tiny_run, tiny_vgg_dir, tmp_path, capsys):
    """--init-from: a new run (another image shape) starts from the best weights of an earlier one."""
    from roadseg.runs import find_checkpoint
    from roadseg.system.tfcompat import tf
    runs = tmp_path / 'runs'
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--runs-dir', runs, '--epochs', 1,
                   '--batch-size', 3, '--image-shape', 96, 288, '--init-from', tiny_run, '--learning-rate', 1e-12) == 0
    assert 'Weights initialised from' in capsys.readouterr().out
    (run,) = os.listdir(runs)
    before = dict(tf.train.list_variables(find_checkpoint(tiny_run)))
    reader_a = tf.train.load_checkpoint(find_checkpoint(tiny_run))
    reader_b = tf.train.load_checkpoint(find_checkpoint(str(runs / run)))
    name = 'decoder/score7/kernel'
    assert name in before
    assert np.allclose(reader_a.get_tensor(name), reader_b.get_tensor(name), atol=1e-6)
    assert np.abs(reader_a.get_tensor(name)).max() > 0, 'trained (non-zero) weights were carried over'

"""The int8 export (--format onnx-int8, roadseg/serving/quantize.py; its accuracy: roadseg/evaluation/int8.py) and running it (--precision int8 on onnxruntime),
on the tiny model, on both stacks where ONNX Runtime installs."""
import json
import os
import re
import shutil
import sys

import numpy as np
import pytest

from conftest import SAMPLE, error_line, iou, kitti_tree, road_test_images, run_cli
from roadseg.data.images import read_image
from roadseg.evaluation import int8 as int8_accuracy
from roadseg.evaluation.evaluate import evaluate_run
from roadseg.runs import TrainedRun
from roadseg.serving.export import export_run
from roadseg.serving.inference import Segmenter
from roadseg.serving.quantize import float_nodes
from roadseg.system.files import InputError

pytest.importorskip('onnxruntime')  # tests/allowed_skips.txt allows this skip on no stack
# int8 against fp32 on the learned model's 6 testing scenes: the probabilities move by MEAN_TOLERANCE at most on
# average, and the classes agree on more than AGREEMENT of the pixels fp32 decides by more than MARGIN.
MEAN_TOLERANCE = 0.03
MARGIN = 0.1  # |p(road) - p(background)|
AGREEMENT = 0.99


@pytest.fixture(scope='module')
def int8_run(learned_run, tmp_path_factory):
    """A copy of the learned run and its int8 export, made with 3 calibration images (model.onnx written first)."""
    run = str(tmp_path_factory.mktemp('int8') / 'run')
    shutil.copytree(learned_run, run, ignore=shutil.ignore_patterns('test_images', 'logs', 'export*', 'evaluation*'))
    written = export_run(run, ('onnx-int8',), calibration_images=3)
    assert sorted(written) == ['onnx', 'onnx-int8']
    int8_accuracy.record_accuracy(TrainedRun(run))
    return run


def test_int8_close_to_fp32(int8_run, road_data):
    """The int8 model is quantized (QDQ), its probabilities within MEAN_TOLERANCE of fp32's on average, its
    classes fp32's on more than AGREEMENT of the pixels fp32 decides by more than MARGIN, and they find the road.
    Measured: 0.001 and 99.9% on both stacks; on ONNX Runtime 1.10 without quantize.float_nodes' kept ReLU
    0.10 and 90% (validation IoU 93.9 -> 72.0)."""
    import onnx
    ops = {n.op_type for n in onnx.load(os.path.join(int8_run, 'export', 'model-int8.onnx')).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops
    scenes = road_test_images(road_data)
    images = [image for _, image, _ in scenes]
    with Segmenter(int8_run, backend='onnxruntime', precision='fp32') as fp32:
        want, want_classes = fp32.predict(images)
    with Segmenter(int8_run, backend='onnxruntime', precision='int8', threads=1) as int8:
        assert (int8.backend, int8.precision, int8.model.path) == (
            'onnxruntime', 'int8', os.path.join(int8_run, 'export', 'model-int8.onnx'))
        got, got_classes = int8.predict(images)
    diff = np.concatenate([np.abs(g - w).ravel() for g, w in zip(got, want)])
    decided = np.concatenate([(np.abs(w[..., 1] - w[..., 0]) > MARGIN).ravel() for w in want])
    same = np.concatenate([(g == w).ravel() for g, w in zip(got_classes, want_classes)])
    print('int8 vs fp32: mean abs difference {:.4f} (max {:.4f}); classes agree on {:.2%} of all pixels, {:.2%} of '
          'the {:.0%} decided by more than {}'.format(diff.mean(), diff.max(), same.mean(), same[decided].mean(),
                                                      decided.mean(), MARGIN))
    assert 0 < diff.mean() < MEAN_TOLERANCE
    assert decided.mean() > 0.5 and same[decided].mean() > AGREEMENT
    for (name, _, truth), classes in zip(scenes, got_classes):
        assert 0.05 < np.mean(classes == 1) < 0.95 and iou(classes == 1, truth) > 0.7, name


def test_float_nodes_keep_relus_only_float_nodes_read_on_onnxruntime_110():
    """With ONNX Runtime 1.10 (whose quantizer would drop them), the ReLUs no quantized node reads stay float:
    fc7's, read by the decoder alone; conv1's, read by an int8 pool, is quantized. 1.11+: the decoder alone."""
    from onnx import helper
    nodes = [helper.make_node(op, inputs, [output], name) for op, inputs, output, name in (
        ('Conv', ['x', 'w1'], 'c1', 'conv1/BiasAdd'), ('Relu', ['c1'], 'r1', 'conv1/Relu'),
        ('MaxPool', ['r1'], 'p1', 'pool1'), ('Conv', ['p1', 'w7'], 'c7', 'fc7/BiasAdd'),
        ('Relu', ['c7'], 'r7', 'fc7/Relu'), ('Conv', ['r7', 'ws'], 's7', 'decoder/score7/BiasAdd'))]
    assert float_nodes(nodes, (1, 10)) == ['decoder/score7/BiasAdd', 'fc7/Relu']
    assert float_nodes(nodes, (1, 11)) == float_nodes(nodes, (1, 32)) == ['decoder/score7/BiasAdd']


def validation_iou(run, data, precision):
    """Road IoU at p(road) > 0.5 over the road_tree's 3 validation pairs, counted here from the masks' colours."""
    names = ['{}_000004.png'.format(c) for c in ('um', 'umm', 'uu')]
    images = [read_image(os.path.join(data, 'training', 'image_2', n)) for n in names]
    truths = [np.all(read_image(os.path.join(data, 'training', 'gt_image_2', n.replace('_', '_road_'))) ==
                     (255, 0, 255), axis=-1) for n in names]
    with Segmenter(run, backend='onnxruntime', precision=precision) as model:
        probs, _ = model.predict(images)
    return iou([p[..., 1] > 0.5 for p in probs], truths)


def test_summary_matches_evaluate(int8_run, road_data):
    """model-int8.json records the settings, the calibration images and fp32/int8 metrics that --evaluate
    reproduces on the same validation images, and IoUs counted here from the masks."""
    with open(os.path.join(int8_run, 'export', 'model-int8.json')) as f:
        summary = json.load(f)
    for precision in ('fp32', 'int8'):
        by_hand = validation_iou(int8_run, road_data, precision)
        print('{}: IoU {:.4f} counted by hand, {:.4f} in model-int8.json'.format(
            precision, by_hand, summary['accuracy'][precision]['iou'] / 100))
        assert summary['accuracy'][precision]['iou'] == pytest.approx(100 * by_hand, abs=0.01)
        assert by_hand > 0.85, 'the learned model finds the road'
    assert summary['calibration']['images'] == len(summary['calibration']['files']) == 3
    assert summary['quantization']['format'] == 'QDQ' and 'decoder/up3/conv2d_transpose' in \
        summary['quantization']['float32_convolutions']
    accuracy = summary['accuracy']
    for precision in ('fp32', 'int8'):
        results = evaluate_run(int8_run, backend='onnxruntime', precision=precision)
        assert results['precision'] == precision and results['images'] == accuracy['images']
        assert accuracy[precision]['max_f1'] == pytest.approx(100 * results['overall']['max_f1'], abs=1e-9)
        assert accuracy[precision]['iou'] == pytest.approx(100 * results['overall']['iou'], abs=1e-9)
    assert os.path.isdir(os.path.join(int8_run, 'evaluation_best_int8'))
    assert accuracy['change']['max_f1'] == pytest.approx(accuracy['int8']['max_f1'] - accuracy['fp32']['max_f1'])
    assert accuracy['within_limits'] == (not summary['warnings']) == (-accuracy['change']['max_f1'] <= 0.5)


def test_accuracy_limits():
    """Losses beyond 0.5 MaxF1 or 1.0 mean IoU points are named; smaller ones and gains are not."""
    change, warnings = int8_accuracy.accuracy_change({'max_f1': 92.0, 'iou': 85.0}, {'max_f1': 91.4, 'iou': 80.0})
    assert change['max_f1'] == pytest.approx(-0.6) and warnings == ['int8 costs 0.60 max f1 points (more than 0.5)']
    assert int8_accuracy.accuracy_change({'max_f1': 92.0, 'iou': 85.0}, {'max_f1': 91.6, 'iou': 80.0})[1] == []
    assert int8_accuracy.accuracy_change({'mean_iou': 60.0}, {'mean_iou': 58.9})[1] == [
        'int8 costs 1.10 mean iou points (more than 1)']
    assert int8_accuracy.accuracy_change({'mean_iou': None}, {'mean_iou': 58.9})[1] == []


def test_command_prints_the_calibration_count(int8_run, capsys):
    assert run_cli('--export', int8_run, '--format', 'onnx-int8', '--calibration-images', 2) == 0
    out = capsys.readouterr().out
    assert 'Calibrating int8 on 2 training images of {}'.format(json.load(open(
        os.path.join(int8_run, 'config.json')))['data_dir']) in out
    assert re.search(r'int8 vs fp32 on \d+ validation images: max f1 [\d.]+ -> [\d.]+ \([+-][\d.]+\)', out)
    assert 'Wrote {}'.format(os.path.join(int8_run, 'export', 'model-int8.onnx')) in out
    assert 'Wrote {}'.format(os.path.join(int8_run, 'export', 'model.onnx')) not in out  # current: kept


def test_a_loss_beyond_the_limit_is_said(int8_run, capsys, monkeypatch):
    """With a limit the measured change exceeds (a gain of 1000 points demanded), the export says so on a
    warning line and in the summary."""
    monkeypatch.setitem(int8_accuracy.LIMITS, 'max_f1', -1000.0)
    assert run_cli('--export', int8_run, '--format', 'onnx-int8', '--calibration-images', 2) == 0
    assert re.search(r'^warning: int8 costs -?[\d.]+ max f1 points \(more than -1000\); the fp32 model.onnx keeps '
                     r'the accuracy$', capsys.readouterr().out, re.M)
    with open(os.path.join(int8_run, 'export', 'model-int8.json')) as f:
        summary = json.load(f)
    assert summary['accuracy']['within_limits'] is False and len(summary['warnings']) == 1


def test_bad_calibration_data_is_one_error(int8_run, tmp_path, capsys):
    """A missing folder, or one whose training image is broken: one error line naming it; nothing replaced."""
    model = os.path.join(int8_run, 'export', 'model-int8.onnx')
    before = os.path.getmtime(model)
    missing = str(tmp_path / 'missing')
    assert run_cli('--export', int8_run, '--format', 'onnx-int8', '--data-dir', missing) == 2
    assert error_line(capsys) == 'error: calibration data not found: {} (pass the folder of the run\'s ' \
                                 'dataset)'.format(missing)
    data = kitti_tree(tmp_path / 'data')
    broken = os.path.join(data, 'training', 'image_2', 'um_000000.png')
    with open(broken, 'wb') as f:
        f.write(b'not a png')
    assert run_cli('--export', int8_run, '--format', 'onnx-int8', '--data-dir', data) == 2
    assert error_line(capsys).startswith('error: {}: not a readable image'.format(broken))
    assert os.path.getmtime(model) == before


def test_flag_errors(int8_run, capsys):
    cases = [
        (('--export', int8_run, '--data-dir', SAMPLE), '--data-dir applies to --export with --format onnx-int8'),
        (('--export', int8_run, '--format', 'onnx', '--calibration-images', 4),
         '--calibration-images applies to --export with --format onnx-int8'),
        (('--epochs', 1, '--precision', 'int8'), '--precision int8 is for --evaluate, --video and --predict with '
                                                 '--backend onnxruntime; training runs in fp32 or bf16'),
        (('--evaluate', int8_run, '--precision', 'int8'),
         '--precision int8 runs the run\'s int8 ONNX export (model-int8.onnx) in ONNX Runtime: add --backend onnxruntime'),
        (('--export', int8_run, '--format', 'onnx-int8', '--calibration-images', 0),
         '--calibration-images must be at least 1, got 0'),
    ]
    for argv, message in cases:
        assert run_cli(*argv) == 2, argv
        assert error_line(capsys) == 'error: ' + message


def test_missing_or_stale_int8_export(int8_run, tmp_path):
    run = str(tmp_path / 'run')
    shutil.copytree(int8_run, run, ignore=shutil.ignore_patterns('model-int8.*'))
    with pytest.raises(InputError, match=re.escape('model-int8.onnx not found: the onnxruntime backend runs the '
                                                   'run\'s int8 ONNX export; write it with python main.py --export '
                                                   '{} --format onnx-int8'.format(run))):
        Segmenter(run, backend='onnxruntime', precision='int8')
    shutil.copy(os.path.join(int8_run, 'export', 'model-int8.onnx'), os.path.join(run, 'export'))
    os.utime(os.path.join(run, 'export', 'model-int8.onnx'), (0, 0))
    with pytest.raises(InputError, match='model-int8.onnx is older than the checkpoint .* --format onnx-int8'):
        Segmenter(run, backend='onnxruntime', precision='int8')


def test_named_file(int8_run, tmp_path):
    """Naming model-int8.onnx (or model.onnx) runs that model on onnxruntime; --evaluate writes its folder."""
    path = os.path.join(int8_run, 'export', 'model-int8.onnx')
    with Segmenter(path) as model:
        assert (model.backend, model.precision, model.prefix) == (
            'onnxruntime', 'int8', Segmenter(int8_run, backend='tensorflow').prefix)
    with Segmenter(os.path.join(int8_run, 'export', 'model.onnx'), precision='auto') as model:
        assert (model.backend, model.precision) == ('onnxruntime', 'fp32')
    results = evaluate_run(path, out_dir=str(tmp_path / 'eval'))
    assert results['precision'] == 'int8' and results['backend'] == 'onnxruntime'
    with pytest.raises(InputError, match='model-int8.onnx is the int8 model for ONNX Runtime: --backend tensorflow'):
        Segmenter(path, backend='tensorflow')
    with pytest.raises(InputError, match='model-int8.onnx is the int8 model for ONNX Runtime: --precision bf16'):
        Segmenter(path, bf16=True)
    other = str(tmp_path / 'other.onnx')
    with pytest.raises(InputError, match='other.onnx: not an export of a run'):
        Segmenter(other)


def test_without_onnxruntime(int8_run, monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # as if not installed
    with pytest.raises(InputError, match='the int8 export needs onnxruntime .*pip install onnxruntime'):
        export_run(int8_run, ('onnx-int8',))

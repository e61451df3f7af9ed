"""The ONNX Runtime inference backend against TensorFlow: Segmenter, --predict, evaluate_run, the errors."""
import os
import re
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE, TINY_SHAPE, error_line, iou, road_test_images, run_cli
from roadseg.data.datasets import kitti_road as kitti
from roadseg.data.images import read_image
from roadseg.evaluation.evaluate import evaluate_run
from roadseg.runs import TrainedRun
from roadseg.serving import onnx_backend
from roadseg.serving.export import export_run
from roadseg.serving.inference import Segmenter
from roadseg.system import cpu
from roadseg.system.files import InputError

TRAINING_SIZE = tuple(int(v) for v in TINY_SHAPE[1:])
TEST_IMAGES = os.path.join(SAMPLE, 'testing', 'image_2')
AVX2 = dict(cpu.cpu_info(), flags={name: name in ('avx2', 'fma') for name in cpu.FEATURES})  # cpu_class 'avx2'


AGREEMENT = 0.999  # of the pixels, where TensorFlow and ONNX Runtime give the same class


def images(road_data):
    """Road scenes with their true road: two at the training size, one enlarged to 150x500, one 51x77 crop."""
    scenes = road_test_images(road_data)
    (_, a, road_a), (_, b, road_b) = scenes[0], scenes[3]
    big = np.asarray(Image.fromarray(b).resize((500, 150), Image.BILINEAR))
    big_road = np.asarray(Image.fromarray(road_b.astype(np.uint8)).resize((500, 150), Image.NEAREST), bool)
    return [a, b, big, a[10:61, 60:137]], [road_a, road_b, big_road, road_a[10:61, 60:137]]


def test_onnxruntime_matches_tensorflow(learned_onnx_run, road_data):
    """Segmenter.predict: probabilities within 1e-4 at the training size and at other sizes, classes that find the
    road and agree on AGREEMENT of the pixels."""
    ims, truths = images(road_data)
    with Segmenter(learned_onnx_run, backend='tensorflow') as tf_model:
        want, want_classes = tf_model.predict(ims, batch_size=2)
        assert tf_model.backend == 'tensorflow' and tf_model.graph is not None
    with Segmenter(learned_onnx_run, backend='onnxruntime', threads=1) as ort_model:
        assert ort_model.backend == 'onnxruntime' and ort_model.graph is None and not ort_model.frozen
        assert ort_model.num_classes == 2 and ort_model.image_shape == TRAINING_SIZE
        assert ort_model.model.session.get_session_options().intra_op_num_threads == 1
        got, got_classes = ort_model.predict(ims, batch_size=2)
    assert got[0].shape[:2] == TRAINING_SIZE and got[2].shape[:2] == (150, 500) and got[3].shape[:2] == (51, 77)
    for g, w, gc, wc, image, truth in zip(got, want, got_classes, want_classes, ims, truths):
        assert g.shape == image.shape[:2] + (2,) and g.dtype == np.float32
        diff = np.abs(g - w).max()
        print('ONNX Runtime vs TensorFlow at {}: max abs difference {:.1e}, classes agree on {:.3%}, road {:.1%}, '
              'IoU {:.3f}'.format(image.shape[:2], diff, np.mean(gc == wc), np.mean(wc == 1), iou(wc == 1, truth)))
        assert diff < 1e-4
        assert np.mean(gc == wc) >= AGREEMENT
        assert 0.05 < np.mean(wc == 1) < 0.95 and iou(wc == 1, truth) > 0.7


def test_predict_command_with_both_backends(learned_onnx_run, road_data, tmp_path):
    """--predict --backend onnxruntime writes the class maps and KITTI files --backend tensorflow writes."""
    folder = str(tmp_path / 'in')
    os.makedirs(folder)
    for name in ('um_000000.png', 'uu_000001.png'):
        shutil.copy(os.path.join(road_data, 'testing', 'image_2', name), folder)
    outs = {}
    for backend in ('tensorflow', 'onnxruntime'):
        outs[backend] = str(tmp_path / backend)
        assert run_cli('--predict', folder, '--output', outs[backend], '--checkpoint', learned_onnx_run,
                       '--backend', backend) == 0
    with Segmenter(learned_onnx_run, backend='tensorflow') as model:
        probs, _ = model.predict([read_image(os.path.join(folder, n)) for n in sorted(os.listdir(folder))])
    assert sorted(os.listdir(outs['tensorflow'])) == sorted(os.listdir(outs['onnxruntime']))
    for name, p in zip(sorted(os.listdir(folder)), probs):
        maps = [np.asarray(Image.open(os.path.join(outs[b], name))) for b in ('tensorflow', 'onnxruntime')]
        assert 0.05 < np.mean(maps[0] == 1) < 0.95 and np.mean(maps[0] == maps[1]) >= AGREEMENT
        assert np.array_equal(maps[0], (p[..., 1] > 0.5).astype(np.uint8))
        submission = kitti.mask_name(os.path.splitext(name)[0]) + '.png'  # round(255 p(road))
        road = [np.asarray(Image.open(os.path.join(outs[b], submission)), np.int16) for b in outs]
        assert np.abs(road[0] - road[1]).max() <= 1 and np.mean(road[0] == road[1]) > 0.99


def test_evaluate_with_both_backends(learned_onnx_run, tmp_path):
    """evaluate_run gives the same metrics with either backend and records which one ran."""
    results = {b: evaluate_run(learned_onnx_run, out_dir=str(tmp_path / b), backend=b) for b in ('tensorflow', 'onnxruntime')}
    assert results['onnxruntime'].pop('backend') == 'onnxruntime'
    assert results['tensorflow'].pop('backend') == 'tensorflow'
    assert results['onnxruntime'].pop('frozen_graph') is False
    results['tensorflow'].pop('frozen_graph')
    assert sorted(results['tensorflow']) == sorted(results['onnxruntime'])
    for key, want in results['tensorflow'].items():
        got = results['onnxruntime'][key]
        if isinstance(want, dict):
            assert sorted(got) == sorted(want)
            for name, value in want.items():
                assert got[name] == pytest.approx(value, abs=1e-3), (key, name)
        else:
            assert got == want, key


def test_missing_or_stale_export(tiny_run, tmp_path, capsys, monkeypatch):
    """No export, or one older than the checkpoint: one error saying how to write it; auto takes TensorFlow."""
    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns('test_images', 'logs', 'export*', 'evaluation*'))
    command = re.escape('python main.py --export {} --format onnx'.format(run))
    with pytest.raises(InputError, match='model.onnx not found: .*write it with ' + command):
        Segmenter(run, backend='onnxruntime')
    assert run_cli('--predict', TEST_IMAGES, '--output', tmp_path / 'out', '--checkpoint', run,
                   '--backend', 'onnxruntime') == 2
    assert re.search(command, error_line(capsys))
    with pytest.raises(InputError, match='model.onnx not found: .*--format onnx --which last'):
        Segmenter(run, which='last', backend='onnxruntime')
    path = export_run(run, ('onnx',))['onnx']
    os.utime(path, (0, 0))
    with pytest.raises(InputError, match='model.onnx is older than the checkpoint .*: export it again with ' + command):
        Segmenter(run, backend='onnxruntime')
    monkeypatch.setitem(onnx_backend.AUTO, 'avx2', 'onnxruntime')
    assert onnx_backend.choose('auto', TrainedRun(run), info=AVX2) == 'tensorflow'


def test_auto_choice(learned_onnx_run, monkeypatch):
    """auto takes AUTO's backend for the CPU class where it can run; bf16 and other classes take TensorFlow."""
    trained = TrainedRun(learned_onnx_run)
    assert onnx_backend.choose('auto', trained, info=AVX2) == 'tensorflow', 'measured: a tie on AVX2'
    monkeypatch.setitem(onnx_backend.AUTO, 'avx2', 'onnxruntime')
    assert onnx_backend.choose('auto', trained, info=AVX2) == 'onnxruntime'
    assert onnx_backend.choose('auto', trained, bf16=True, info=AVX2) == 'tensorflow'
    assert onnx_backend.choose('auto', trained, info=dict(AVX2, flags=None)) == 'tensorflow'
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # as if not installed
    assert onnx_backend.choose('auto', trained, info=AVX2) == 'tensorflow'
    with pytest.raises(InputError, match='needs the onnxruntime package .*pip install onnxruntime'):
        onnx_backend.choose('onnxruntime', trained)


def test_flag_errors(learned_onnx_run, capsys):
    with pytest.raises(InputError, match='--bf16 .* does not apply to --backend onnxruntime'):
        Segmenter(learned_onnx_run, bf16=True, backend='onnxruntime')
    with pytest.raises(InputError, match="backend must be one of auto, tensorflow, onnxruntime, got 'onnx'"):
        Segmenter(learned_onnx_run, backend='onnx')
    assert run_cli('--export', learned_onnx_run, '--backend', 'onnxruntime') == 2
    assert error_line(capsys) == 'error: --backend does not apply to --export; it is for --evaluate, --video, --predict'

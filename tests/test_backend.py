"""The ONNX Runtime inference backend against TensorFlow: Segmenter, --predict, evaluate_run, the errors."""
import os
import re
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE, TINY_SHAPE, error_line, run_cli
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


@pytest.fixture(scope='module')
def onnx_run(tiny_run, tmp_path_factory):
    """A copy of the tiny run with its ONNX export (the shared tiny_run stays without one)."""
    run = str(tmp_path_factory.mktemp('backend') / 'run')
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns('test_images', 'logs', 'export*', 'evaluation*'))
    export_run(run, ('onnx',))
    return run


def images():
    """Two KITTI test images at their own size, one resized to the training size, one small odd size."""
    kitti_images = [read_image(os.path.join(TEST_IMAGES, n)) for n in ('um_000000.png', 'uu_000001.png')]
    at_training_size = np.asarray(Image.fromarray(kitti_images[0]).resize(TRAINING_SIZE[::-1], Image.BILINEAR))
    return kitti_images + [at_training_size, kitti_images[1][40:91, 100:177]]


def decided(probs):
    """Pixels whose class does not hang on a difference below 1e-4 between the two largest probabilities."""
    top2 = np.sort(probs, axis=-1)[..., -2:]
    return top2[..., 1] - top2[..., 0] > 1e-4


def test_onnxruntime_matches_tensorflow(onnx_run):
    """Segmenter.predict: probabilities within 1e-4 at the training size and at other sizes, same classes."""
    ims = images()
    with Segmenter(onnx_run, backend='tensorflow') as tf_model:
        want, want_classes = tf_model.predict(ims, batch_size=2)
        assert tf_model.backend == 'tensorflow' and tf_model.graph is not None
    with Segmenter(onnx_run, backend='onnxruntime', threads=1) as ort_model:
        assert ort_model.backend == 'onnxruntime' and ort_model.graph is None and not ort_model.frozen
        assert ort_model.num_classes == 2 and ort_model.image_shape == TRAINING_SIZE
        assert ort_model.model.session.get_session_options().intra_op_num_threads == 1
        got, got_classes = ort_model.predict(ims, batch_size=2)
    assert got[2].shape[:2] == TRAINING_SIZE and got[3].shape[:2] == (51, 77)
    for g, w, gc, wc, image in zip(got, want, got_classes, want_classes, ims):
        assert g.shape == image.shape[:2] + (2,) and g.dtype == np.float32
        diff = np.abs(g - w).max()
        print('ONNX Runtime vs TensorFlow at {}: max abs difference {:.1e}'.format(image.shape[:2], diff))
        assert diff < 1e-4
        mask = decided(w)
        assert mask.mean() > 0.9 and np.array_equal(gc[mask], wc[mask])


def test_predict_command_with_both_backends(onnx_run, tmp_path):
    """--predict --backend onnxruntime writes the class maps and KITTI files --backend tensorflow writes."""
    folder = str(tmp_path / 'in')
    os.makedirs(folder)
    for name in ('um_000000.png', 'uu_000001.png'):
        shutil.copy(os.path.join(TEST_IMAGES, name), folder)
    outs = {}
    for backend in ('tensorflow', 'onnxruntime'):
        outs[backend] = str(tmp_path / backend)
        assert run_cli('--predict', folder, '--output', outs[backend], '--checkpoint', onnx_run,
                       '--backend', backend) == 0
    with Segmenter(onnx_run, backend='tensorflow') as model:
        probs, _ = model.predict([read_image(os.path.join(folder, n)) for n in sorted(os.listdir(folder))])
    assert sorted(os.listdir(outs['tensorflow'])) == sorted(os.listdir(outs['onnxruntime']))
    for name, p in zip(sorted(os.listdir(folder)), probs):
        maps = [np.asarray(Image.open(os.path.join(outs[b], name))) for b in ('tensorflow', 'onnxruntime')]
        mask = decided(p)
        assert mask.mean() > 0.9 and np.array_equal(maps[0][mask], maps[1][mask])
        submission = kitti.mask_name(os.path.splitext(name)[0]) + '.png'  # round(255 p(road))
        road = [np.asarray(Image.open(os.path.join(outs[b], submission)), np.int16) for b in outs]
        assert np.abs(road[0] - road[1]).max() <= 1 and np.mean(road[0] == road[1]) > 0.99


def test_evaluate_with_both_backends(onnx_run, tmp_path):
    """evaluate_run gives the same metrics with either backend and records which one ran."""
    results = {b: evaluate_run(onnx_run, out_dir=str(tmp_path / b), backend=b) for b in ('tensorflow', 'onnxruntime')}
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


def test_auto_choice(onnx_run, monkeypatch):
    """auto takes AUTO's backend for the CPU class where it can run; bf16 and other classes take TensorFlow."""
    trained = TrainedRun(onnx_run)
    assert onnx_backend.choose('auto', trained, info=AVX2) == 'tensorflow', 'measured: a tie on AVX2'
    monkeypatch.setitem(onnx_backend.AUTO, 'avx2', 'onnxruntime')
    assert onnx_backend.choose('auto', trained, info=AVX2) == 'onnxruntime'
    assert onnx_backend.choose('auto', trained, bf16=True, info=AVX2) == 'tensorflow'
    assert onnx_backend.choose('auto', trained, info=dict(AVX2, flags=None)) == 'tensorflow'
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # as if not installed
    assert onnx_backend.choose('auto', trained, info=AVX2) == 'tensorflow'
    with pytest.raises(InputError, match='needs the onnxruntime package .*pip install onnxruntime'):
        onnx_backend.choose('onnxruntime', trained)


def test_flag_errors(onnx_run, capsys):
    with pytest.raises(InputError, match='--bf16 .* does not apply to --backend onnxruntime'):
        Segmenter(onnx_run, bf16=True, backend='onnxruntime')
    with pytest.raises(InputError, match="backend must be one of auto, tensorflow, onnxruntime, got 'onnx'"):
        Segmenter(onnx_run, backend='onnx')
    assert run_cli('--export', onnx_run, '--backend', 'onnxruntime') == 2
    assert error_line(capsys) == 'error: --backend does not apply to --export; it is for --evaluate, --video, --predict'

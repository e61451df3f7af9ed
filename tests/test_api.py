"""The Python API: Segmenter on a trained run, its input forms, streams, errors, and a TF2 host's eager mode."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import project_tests
from conftest import ROOT, TINY_SHAPE, iou, road_test_images, run_process
from roadseg.model.heads import add_inference_outputs
from roadseg import task
from roadseg.model.prediction import predict_probabilities
from roadseg.serving.inference import Segmenter
from roadseg.system.files import InputError
from roadseg.system.tfcompat import tf

TF2 = int(tf.__version__.split('.')[0]) >= 2
TRAINING_SIZE = tuple(int(v) for v in TINY_SHAPE[1:])
RNG = np.random.RandomState(0)
IMAGES = [RNG.randint(0, 256, shape, np.uint8) for shape in ((50, 70, 3), TRAINING_SIZE + (3,), (97, 33, 3))]


def run_python(code):
    """Run code in a fresh interpreter of this stack; returns its output, asserting it succeeded."""
    proc = run_process([sys.executable, '-c', 'import sys; sys.path.insert(0, {!r})\n'.format(ROOT) + code],
                       stderr=subprocess.STDOUT)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc.stdout


def test_import_is_cheap(tiny_run):
    """`import roadseg` loads no TensorFlow, nor does resolving Segmenter; creating one does."""
    out = run_python('import roadseg\nprint("loaded:", "tensorflow" in sys.modules)\nroadseg.Segmenter\n'
                     'print("loaded:", "tensorflow" in sys.modules)\n'
                     'roadseg.Segmenter({!r}, backend="tensorflow").close()\n'
                     'print("loaded:", "tensorflow" in sys.modules)\n'.format(tiny_run))
    # stderr (TensorFlow's warnings) shares the output: only the marked lines count
    assert [line.split()[-1] for line in out.splitlines() if line.startswith('loaded: ')] == ['False', 'False', 'True']


# Imported in a fresh process whose command line names an inference mode (the start-up choice used to read it)
NO_TENSORFLOW = ('roadseg', 'roadseg.serving.inference', 'roadseg.serving.predict', 'roadseg.serving.video',
                 'roadseg.serving.quantize', 'roadseg.evaluation.evaluate', 'roadseg.evaluation.int8', 'roadseg.runs',
                 'roadseg.task', 'roadseg.cli', 'roadseg.system.cpu')
WITH_TENSORFLOW = ('roadseg.system.tfcompat', 'roadseg.serving.export', 'roadseg.training.train', 'main')
ENVIRONMENT = """import importlib, json, os, sys
sys.argv[1:] = ['--evaluate', 'runs/x']
before = dict(os.environ)
for name in {names!r}:
    importlib.import_module(name)
print(json.dumps(sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))))
print('tensorflow' in sys.modules)
"""


def changed_by_import(names):
    """([names of environment variables that importing names changed], TensorFlow loaded) in a fresh process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(('TF_', 'ROADSEG_'))}
    proc = subprocess.run([sys.executable, '-c', ENVIRONMENT.format(names=names)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    changed, loaded = proc.stdout.split('\n')[:2]
    return json.loads(changed), loaded == 'True'


def test_import_changes_no_environment():
    """Importing roadseg modules sets no CPU settings (TF_ENABLE_ONEDNN_OPTS, ROADSEG_CHOSEN_ENV), whatever the
    host's command line: the modules of the Python API change nothing and load no TensorFlow; those that load
    it change what TensorFlow's own import changes, and its log level (system/tfcompat.py keeps its start-up
    chatter off)."""
    assert changed_by_import(NO_TENSORFLOW) == ([], False)
    tensorflow, loaded = changed_by_import(('tensorflow.compat.v1',))
    assert loaded
    assert changed_by_import(WITH_TENSORFLOW) == (sorted(set(tensorflow) | {'TF_CPP_MIN_LOG_LEVEL'}), True)


@pytest.mark.skipif(not TF2, reason='eager execution is the default of TF 2.x only')
def test_tf2_host_stays_eager(tiny_run):
    """A TF2 program keeps eager mode through import, Segmenter and predict, and its own eager code works."""
    out = run_python('\n'.join([
        'import numpy as np, tensorflow as tf',
        'import roadseg',
        'assert tf.executing_eagerly()',
        'seg = roadseg.Segmenter({!r})'.format(tiny_run),
        'assert tf.executing_eagerly()',
        'probs, classes = seg.predict(np.zeros((50, 70, 3), np.uint8))',
        'assert tf.executing_eagerly()',
        'v = tf.Variable(1.0)',
        'v.assign_add(tf.reduce_sum(tf.constant(probs[..., 1] * 0)) + 1.0)',
        'print(probs.shape, classes.dtype, float(v.numpy()), tf.executing_eagerly())']))
    assert out.splitlines()[-1] == '(50, 70, 2) uint8 2.0 True'


@pytest.fixture(scope='module')
def seg(learned_run):
    with Segmenter(learned_run) as model:
        yield model


def test_properties(seg, learned_run):
    assert seg.image_shape == TRAINING_SIZE and seg.num_classes == 2
    assert seg.frozen, 'the frozen graph training wrote is newer than the checkpoint'
    assert os.path.dirname(seg.prefix) == os.path.join(learned_run, 'best')


def test_predict_finds_the_road(seg, road_data):
    """Scenes at the training size, twice it and one cropped: road where the scene has it, in every image."""
    scenes = road_test_images(road_data)
    images = [image for _, image, _ in scenes]
    truths = [truth for _, _, truth in scenes]
    images[1] = np.repeat(np.repeat(images[1], 2, axis=0), 2, axis=1)
    truths[1] = np.repeat(np.repeat(truths[1], 2, axis=0), 2, axis=1)
    images[2], truths[2] = images[2][5:, 7:150], truths[2][5:, 7:150]
    probs, classes = seg.predict(images, batch_size=4)
    for (name, _, _), image, truth, p, c in zip(scenes, images, truths, probs, classes):
        assert c.shape == image.shape[:2] and np.array_equal(c == 1, p[..., 1] > 0.5)
        assert 0.05 < np.mean(c == 1) < 0.95 and iou(c == 1, truth) > 0.75, (name, iou(c == 1, truth))


def test_predict_forms(seg):
    """One image, a batch array and a list of sizes: outputs at the input's size, per image identical."""
    singles = [seg.predict(image) for image in IMAGES]
    for image, (probs, classes) in zip(IMAGES, singles):
        assert probs.shape == image.shape[:2] + (2,) and probs.dtype == np.float32
        assert classes.shape == image.shape[:2] and classes.dtype == np.uint8
        assert np.allclose(probs.sum(-1), 1, atol=1e-5)
        assert np.array_equal(classes, np.argmax(probs, -1))
    listed, listed_classes = seg.predict(IMAGES, batch_size=2)
    for (probs, classes), p, c in zip(singles, listed, listed_classes):
        assert np.abs(p - probs).max() < 1e-5 and np.array_equal(c, classes)
    batch = np.stack([IMAGES[0], IMAGES[0][::-1]])
    probs, classes = seg.predict(batch)
    assert probs.shape == (2, 50, 70, 2) and classes.shape == (2, 50, 70)
    assert np.abs(probs[0] - singles[0][0]).max() < 1e-5
    empty = seg.predict(np.zeros((0, 20, 30, 3), np.uint8))
    assert empty[0].shape == (0, 20, 30, 2) and empty[1].shape == (0, 20, 30)


def test_predict_iter_streams(seg):
    """predict_iter pulls at most one batch ahead of what it has yielded."""
    pulled = []

    def frames():
        for i in range(7):
            pulled.append(i)
            yield IMAGES[i % 3]

    results = seg.predict_iter(frames(), batch_size=3)
    shapes = []
    for n, (probs, _) in enumerate(results, start=1):
        assert len(pulled) <= 3 * ((n - 1) // 3 + 1)
        shapes.append(probs.shape[:2])
    assert shapes == [IMAGES[i % 3].shape[:2] for i in range(7)]


def test_bad_images_are_input_errors(seg):
    with pytest.raises(InputError, match=r'image 0: expected uint8 RGB of shape \(H, W, 3\), got float32'):
        seg.predict(np.zeros((20, 30, 3), np.float32))
    with pytest.raises(InputError, match=r'image 1: .*got uint8 \(20, 30, 4\)'):
        seg.predict([IMAGES[0], np.zeros((20, 30, 4), np.uint8)])


def test_missing_best_uses_last_with_a_note(tmp_path, tiny_run, capsys):
    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns('best', 'test_images', 'logs', 'export*'))
    with Segmenter(run) as model:
        assert os.path.dirname(model.prefix) == os.path.join(run, 'last')
    assert 'note: {} has no best/ checkpoint; using last/'.format(run) in capsys.readouterr().out


def test_missing_config_is_an_error(tmp_path, tiny_run):
    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns('config.json', 'test_images', 'logs', 'export*'))
    with pytest.raises(InputError, match='config.json not found: .*image size the model was trained at'):
        Segmenter(run)
    with open(os.path.join(run, 'config.json'), 'w') as f:
        json.dump({'epochs': 1}, f)
    with pytest.raises(InputError, match='config.json: no readable image_shape'):
        Segmenter(run)


def test_predict_probabilities_live_session():
    """The training loop's form: a live session at any frame size, keep_prob fed, per-image sizes back."""
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        image_input, keep_prob, out, pretrained = project_tests.tiny_fcn(sess)
        with tf.variable_scope('somewhere'):
            probabilities, classes = add_inference_outputs(out, task.kitti())
        assert (probabilities.name, classes.name, classes.dtype) == ('probabilities:0', 'classes:0', tf.uint8)
        again = add_inference_outputs(out, task.kitti())
        assert again[0] is probabilities and again[1] is classes, 'added once'
        project_tests.init_new_variables(sess, pretrained)
        got = list(predict_probabilities(sess, probabilities, image_input, IMAGES, TRAINING_SIZE, 2,
                                         {keep_prob: 1.0}))
        direct = sess.run(probabilities, {image_input: IMAGES[1][None].astype(np.float32), keep_prob: 1.0})[0]
    assert [p.shape for p in got] == [im.shape[:2] + (2,) for im in IMAGES]
    assert np.abs(got[1] - direct).max() < 1e-6

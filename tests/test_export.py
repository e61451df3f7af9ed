"""Export: freezing the trained graph (ours or a foreign encoder's), the serving SavedModel, ONNX."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import project_tests
from conftest import ROOT, SAMPLE, TINY_SHAPE, run_cli
from roadseg.data.batches import resize_rgb
from roadseg.data.images import read_image
from roadseg.model import heads
from roadseg.model.heads import add_inference_outputs
from roadseg import task
from roadseg.model.freeze import TRAINING_OPS, freeze, read_frozen
from roadseg.runs import FROZEN, find_checkpoint
from roadseg.serving.layout import DEFAULT_FORMATS
from roadseg.serving.export import export_run
from roadseg.serving.inference import Segmenter
from roadseg.system.files import InputError
from roadseg.system.tfcompat import tf
import main

TF2 = int(tf.__version__.split('.')[0]) >= 2
TRAINING_SIZE = tuple(int(v) for v in TINY_SHAPE[1:])


def build_foreign_vgg(export_dir):
    """A VGG-shaped SavedModel (tag vgg16, the five tensors of Udacity's vgg.zip) laid out unlike ours:
    tf.Variable weights in features/stageK/ and classifier/ scopes, average pools, scaling instead of the
    Caffe mean, a plain placeholder keep_prob and TF 1.0's dropout arithmetic, as in vgg.zip."""
    rng = np.random.RandomState(1)
    with tf.Graph().as_default() as graph:
        image = tf.placeholder(tf.float32, [None, None, None, 3], name='image_input')
        keep_prob = tf.placeholder(tf.float32, name='keep_prob')
        net, channels, ends = image / 127.5 - 1.0, 3, []
        for k, width in enumerate((4, 6, 8, 8, 8), start=1):
            with tf.variable_scope('features/stage{}'.format(k)):
                w = tf.Variable(rng.normal(0, np.sqrt(2.0 / (9 * channels)), (3, 3, channels, width))
                                .astype(np.float32), name='w')
                b = tf.Variable(np.full(width, 0.01, np.float32), name='b')
            net = tf.nn.relu(tf.nn.conv2d(net, w, [1, 1, 1, 1], 'SAME') + b)
            net = tf.nn.avg_pool(net, [1, 2, 2, 1], [1, 2, 2, 1], 'SAME')
            ends.append(net)
            channels = width
        with tf.variable_scope('classifier'):
            w = tf.Variable(rng.normal(0, 0.5, (1, 1, channels, 12)).astype(np.float32), name='fc')
        fc = tf.nn.relu(tf.nn.conv2d(net, w, [1, 1, 1, 1], 'SAME'))
        dropped = fc / keep_prob * tf.floor(keep_prob + tf.random_uniform(tf.shape(fc)))
        dropped.set_shape(fc.shape)
        tf.identity(ends[2], name='layer3_out')
        tf.identity(ends[3], name='layer4_out')
        tf.identity(dropped, name='layer7_out')
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            builder = tf.saved_model.builder.SavedModelBuilder(export_dir)
            builder.add_meta_graph_and_variables(sess, ['vgg16'])
            builder.save()


@pytest.fixture(scope='module')
def foreign_vgg_dir(tmp_path_factory):
    """A folder holding vgg/, the foreign VGG-shaped SavedModel (pass it as --vgg-dir)."""
    folder = tmp_path_factory.mktemp('foreign')
    build_foreign_vgg(str(folder / 'vgg'))
    return str(folder)


@pytest.fixture(scope='module')
def varied_run(learned_run, tmp_path_factory):
    """A copy of the learned run (road probabilities near 0 and 1, both classes in every scene), to export."""
    run = str(tmp_path_factory.mktemp('varied') / 'run')
    shutil.copytree(learned_run, run, ignore=shutil.ignore_patterns('export*'))
    return run


@pytest.fixture(scope='module')
def exported(varied_run):
    """export_run of the varied run in all formats."""
    return export_run(varied_run)


def sample_images(shape=TRAINING_SIZE, n=2, data=SAMPLE):
    """n testing images of data (the bundled KITTI sample, or a road_tree) resized to shape, as a batch."""
    names = sorted(os.listdir(os.path.join(data, 'testing', 'image_2')))[:n]
    return np.stack([resize_rgb(read_image(os.path.join(data, 'testing', 'image_2', name)), shape)
                     for name in names])


def run_frozen(graph_def, images):
    """(probabilities, classes) of a frozen GraphDef on uint8 images at its input size."""
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name='')
        with tf.Session(graph=graph) as sess:
            return sess.run(['probabilities:0', 'classes:0'], {'image_input:0': images.astype(np.float32)})


def assert_inference_only(graph_def):
    ops = {node.op for node in graph_def.node}
    assert not ops & (TRAINING_OPS | {'PlaceholderWithDefault', 'ApplyAdam'}), ops
    assert [n.name for n in graph_def.node if n.op == 'Placeholder'] == ['image_input']


def test_freeze_foreign_encoder(foreign_vgg_dir):
    """A graph on the foreign encoder freezes to what the live session computes with keep_prob 1."""
    images = sample_images()
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        tf.set_random_seed(0)
        image_input, keep_prob, l3, l4, l7 = main.load_vgg(sess, os.path.join(foreign_vgg_dir, 'vgg'))
        pretrained = set(tf.global_variables())
        out = main.layers(l3, l4, l7, 2, crop_to=image_input)
        probabilities, classes = add_inference_outputs(out, task.kitti())
        label = tf.placeholder(tf.float32, [None, None, None, 2])
        learning_rate = tf.placeholder(tf.float32, [])
        _, train_op, _ = main.optimize(out, label, learning_rate, 2)
        project_tests.init_new_variables(sess, pretrained)
        labels = np.zeros(images.shape[:3] + (2,), np.float32)
        labels[:, TRAINING_SIZE[0] // 2:, :, 1] = 1
        labels[:, :TRAINING_SIZE[0] // 2, :, 0] = 1
        for _ in range(3):  # dropout on: the frozen graph must not keep it
            sess.run(train_op, {image_input: images, label: labels, keep_prob: 0.5, learning_rate: 1e-2})
        want = sess.run([probabilities, classes], {image_input: images, keep_prob: 1.0})
        graph_def = freeze(sess, task.kitti(), TRAINING_SIZE)
    assert_inference_only(graph_def)
    got = run_frozen(graph_def, images)
    assert np.abs(want[0] - 0.5).max() > 1e-3, 'trained weights, not the zero-initialised decoder'
    assert np.abs(got[0] - want[0]).max() < 1e-5
    assert np.array_equal(got[1], want[1])


def test_foreign_encoder_run_trains_and_exports(tmp_path, foreign_vgg_dir):
    """A run trained on a foreign vgg/ completes, writes its frozen graph, exports and loads."""
    runs = tmp_path / 'runs'
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', foreign_vgg_dir, '--runs-dir', runs, '--epochs', 1,
                   '--batch-size', 3, *TINY_SHAPE) == 0
    (run,) = [str(p) for p in runs.iterdir()]
    assert os.path.exists(os.path.join(run, 'best', FROZEN)), 'training ends with write_frozen'
    paths = export_run(run)
    assert sorted(paths) == sorted(DEFAULT_FORMATS)
    with Segmenter(run) as seg:
        assert seg.frozen
        probs, classes = seg.predict(sample_images((50, 70), 1)[0])
    assert probs.shape == (50, 70, 2) and classes.shape == (50, 70)


def test_frozen_export_matches_live_checkpoint(varied_run, exported, road_data):
    """The exported frozen graph against the checkpoint's own graph restored and run with keep_prob 1."""
    images = sample_images(data=road_data)
    prefix = find_checkpoint(varied_run)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        tf.train.import_meta_graph(prefix + '.meta').restore(sess, prefix)
        probabilities, _ = heads.inference_outputs(graph, prefix, task.kitti())
        want = sess.run(probabilities, {'image_input:0': images.astype(np.float32), 'keep_prob:0': 1.0})
    graph_def = read_frozen(exported['frozen'])
    assert_inference_only(graph_def)
    got, classes = run_frozen(graph_def, images)
    assert got.shape == images.shape[:3] + (2,) and classes.dtype == np.uint8
    road = np.mean(classes == 1, axis=(1, 2))
    assert want[..., 1].std() > 0.3 and np.all((0.05 < road) & (road < 0.95)), 'confident, road in every image'
    assert np.abs(got - want).max() < 1e-5
    assert np.array_equal(classes, np.argmax(got, -1))


@pytest.mark.skipif(not TF2, reason='tf.saved_model.load in eager mode is TF 2.x; TF 1.15 has no eager loader')
def test_saved_model_in_eager_tf2(tmp_path, exported, road_data):
    """The SavedModel in a plain eager TF2 process: serving_default on uint8 images of any size."""
    same = sample_images(data=road_data)
    other = sample_images((50, 70), 1, road_data)
    np.savez(str(tmp_path / 'in.npz'), same=same, other=other)
    script = '\n'.join([
        'import numpy as np, tensorflow as tf',
        'x = np.load({!r})'.format(str(tmp_path / 'in.npz')),
        'serve = tf.saved_model.load({!r}).signatures["serving_default"]'.format(exported['saved_model']),
        'a, b = serve(images=tf.constant(x["same"])), serve(images=tf.constant(x["other"]))',
        'assert tf.executing_eagerly()',
        'np.savez({!r}, **{{k + "_" + n: v[k].numpy() for n, v in (("same", a), ("other", b)) for k in v}})'
        .format(str(tmp_path / 'out.npz'))])
    proc = subprocess.run([sys.executable, '-c', script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    out = np.load(str(tmp_path / 'out.npz'))
    want, _ = run_frozen(read_frozen(exported['frozen']), same)
    diff = np.abs(out['probabilities_same'] - want).max()
    print('SavedModel vs frozen graph at the training size: max abs difference {:.2e}'.format(diff))
    assert diff < 1e-4
    assert out['probabilities_other'].shape == (1, 50, 70, 2) and out['classes_other'].dtype == np.uint8
    assert np.array_equal(out['classes_other'], np.argmax(out['probabilities_other'], -1))
    with Segmenter(os.path.dirname(os.path.dirname(exported['frozen']))) as seg:
        pil_resized, _ = seg.predict(other)
    # the in-graph resizing is close to PIL's (uint8 rounding and edge handling differ): measured 0.003, 99.9%
    assert np.abs(out['probabilities_other'] - pil_resized).mean() < 0.01
    assert np.mean(out['classes_other'] == np.argmax(pil_resized, -1)) > 0.99


def test_saved_model_signature_in_graph_mode(exported, road_data):
    """The serving signature through the TF1 loader (both stacks): uint8 in, the frozen graph's numbers out."""
    images = sample_images(data=road_data)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        meta_graph = tf.saved_model.loader.load(sess, [tf.saved_model.tag_constants.SERVING], exported['saved_model'])
        signature = meta_graph.signature_def['serving_default']
        out = sess.run({k: v.name for k, v in signature.outputs.items()}, {signature.inputs['images'].name: images})
    want, want_classes = run_frozen(read_frozen(exported['frozen']), images)
    assert np.abs(out['probabilities'] - want).max() < 1e-5
    assert out['classes'].dtype == np.uint8 and np.array_equal(out['classes'], want_classes)


def test_onnx_matches_frozen_graph(exported, road_data):
    """model.onnx passes onnx.checker and runs in ONNX Runtime like the frozen graph: probabilities within 1e-4,
    classes on at least 99.9% of the pixels, road in each image and not everywhere."""
    import onnx
    import onnxruntime
    onnx.checker.check_model(onnx.load(exported['onnx']))
    images = sample_images(n=3, data=road_data)
    session = onnxruntime.InferenceSession(exported['onnx'], providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == ['image_input']
    probs, classes = session.run(['probabilities', 'classes'], {'image_input': images.astype(np.float32)})
    want, want_classes = run_frozen(read_frozen(exported['frozen']), images)
    diff = np.abs(probs - want).max()
    print('ONNX Runtime vs frozen graph: max abs difference {:.2e}'.format(diff))
    assert diff < 1e-4
    assert classes.dtype == np.uint8 and np.mean(classes == want_classes) >= 0.999
    road = np.mean(want_classes == 1, axis=(1, 2))
    assert np.all((0.05 < road) & (road < 0.95)), road


def test_export_folders_and_formats(varied_run, exported, monkeypatch):
    """best -> export/, last -> export_last/; unknown formats and a missing converter are one-line errors."""
    assert {fmt: os.path.relpath(p, varied_run) for fmt, p in exported.items()} == {
        'frozen': os.path.join('export', 'frozen_inference.pb'), 'saved_model': os.path.join('export', 'saved_model'),
        'onnx': os.path.join('export', 'model.onnx')}
    assert os.path.isfile(os.path.join(exported['saved_model'], 'saved_model.pb'))
    last = export_run(varied_run, ('frozen',), which='last')
    assert last == {'frozen': os.path.join(varied_run, 'export_last', 'frozen_inference.pb')}
    with pytest.raises(InputError, match='--format must be among frozen, saved_model, onnx, onnx-int8, got tflite'):
        export_run(varied_run, ('tflite',))
    monkeypatch.setitem(sys.modules, 'tf2onnx', None)  # as if not installed
    with pytest.raises(InputError, match='ONNX export needs tf2onnx'):
        export_run(varied_run, ('frozen', 'onnx'))


def test_old_run_without_probabilities(tmp_path):
    """A run from before `probabilities` existed (logits only in its .meta) still loads and exports."""
    run = tmp_path / 'old'
    (run / 'best').mkdir(parents=True)
    images = sample_images()
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        image_input, keep_prob, out, pretrained = project_tests.tiny_fcn(sess)
        label = tf.placeholder(tf.float32, [None, None, None, 2])
        logits, train_op, _ = main.optimize(out, label, 1e-2, 2)
        project_tests.init_new_variables(sess, pretrained)
        labels = np.zeros(images.shape[:3] + (2,), np.float32)
        labels[..., 1] = 1
        sess.run(train_op, {image_input: images, label: labels})
        want = sess.run(tf.nn.softmax(logits), {image_input: images})
        tf.train.Saver().save(sess, str(run / 'best' / 'model'), global_step=1)
    (run / 'config.json').write_text(json.dumps({'image_shape': list(TRAINING_SIZE)}))
    assert 'probabilities' not in {n.name for n in graph.as_graph_def().node}
    with Segmenter(str(run)) as seg:
        assert not seg.frozen and seg.num_classes == 2
        probs, _ = seg.predict(images)
    assert np.abs(probs.reshape(-1, 2) - want).max() < 1e-5
    assert os.path.isfile(export_run(str(run), ('frozen',))['frozen'])


def test_export_command(varied_run, tmp_path):
    """python main.py --export RUN --format onnx writes only that format and names the file."""
    run = str(tmp_path / 'run')
    shutil.copytree(varied_run, run, ignore=shutil.ignore_patterns('export*'))  # the other tests' exports left out
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'main.py'), '--export', run, '--format', 'onnx'],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.join(run, 'export', 'model.onnx') in proc.stdout
    assert os.listdir(os.path.join(run, 'export')) == ['model.onnx']

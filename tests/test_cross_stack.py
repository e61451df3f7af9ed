"""Models that cross between the two TensorFlow stacks (docs/cross-stack.md): what one writes, the other loads.

The round trips run the other stack's python from ROADSEG_OTHER_PYTHON (.ci/run sets it: the TF 1.15 venv's
when this is TF 2.x, and the other way round). Unset, they are skipped; set but not working, they fail.
"""
import glob
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

import project_tests
from conftest import ROOT, SAMPLE, TINY_SHAPE, error_line, run_cli
from roadseg import runs
from roadseg.model.freeze import read_frozen
from roadseg.serving import export
from roadseg.system.tfcompat import tf

OTHER_PYTHON = os.environ.get('ROADSEG_OTHER_PYTHON')
MAIN = os.path.join(ROOT, 'main.py')
TEST_IMAGES = os.path.join(SAMPLE, 'testing', 'image_2')
TRAIN = ['--data-dir', SAMPLE, '--epochs', 1, '--batch-size', 3] + TINY_SHAPE
BUILD_VGG = ('import sys; sys.path.insert(0, sys.argv[1]); from roadseg.model import vgg; '
             'vgg.build_vgg_savedmodel(sys.argv[2], None, widths={}, fc_width={}, fc6_kernel=3)'
             .format(project_tests.TINY_WIDTHS, project_tests.TINY_FC))
FUTURE = '9.9.0'  # a TensorFlow version that wrote a graph with what no TensorFlow has


@pytest.fixture(scope='module')
def other():
    """other(*argv): the other stack's python running argv in ROOT, asserting it succeeds; returns its stdout."""
    if not OTHER_PYTHON:
        pytest.skip('ROADSEG_OTHER_PYTHON is not set: the other stack\'s python (e.g. .venv37/bin/python when this '
                    'is TF 2.x) runs the cross-stack round trips; .ci/run sets it')
    try:
        proc = subprocess.run([OTHER_PYTHON, '-c', 'import tensorflow as tf; print(tf.__version__)'], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    except OSError as e:
        pytest.fail('ROADSEG_OTHER_PYTHON={}: {}'.format(OTHER_PYTHON, e))
    assert proc.returncode == 0, 'ROADSEG_OTHER_PYTHON={} has no TensorFlow:\n{}'.format(OTHER_PYTHON, proc.stderr)
    version = proc.stdout.split()[-1]
    assert version.split('.')[0] != tf.__version__.split('.')[0], \
        'ROADSEG_OTHER_PYTHON={} runs TensorFlow {}, the same stack as this one ({})'.format(
            OTHER_PYTHON, version, tf.__version__)

    def run(*argv):
        proc = subprocess.run([OTHER_PYTHON, '-u'] + [str(a) for a in argv], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
        assert proc.returncode == 0, 'TensorFlow {}: {}\n{}\n{}'.format(version, argv, proc.stdout, proc.stderr)
        return proc.stdout
    return run


def probabilities(graph_def, images):
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        tf.import_graph_def(graph_def, name='')
        return sess.run('probabilities:0', {'image_input:0': images})


def serve(saved_model, images):
    """The serving SavedModel's probabilities for uint8 images."""
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        signature = tf.saved_model.loader.load(sess, ['serve'], saved_model).signature_def['serving_default']
        return sess.run(signature.outputs['probabilities'].name, {signature.inputs['images'].name: images})


def road_files(folder):
    """{name: uint8 array} of the KITTI submission files (round(255 p(road))) --predict wrote in folder."""
    return {os.path.basename(p): np.asarray(Image.open(p), np.int16)
            for p in glob.glob(os.path.join(str(folder), '*_road_*.png'))}


def overall(run):
    with open(os.path.join(run, 'evaluation_best', 'metrics.json')) as f:
        return json.load(f)['overall']


def images(n=2):
    height, width = (int(v) for v in TINY_SHAPE[1:])
    return np.random.RandomState(0).uniform(0, 255, (n, height, width, 3)).astype(np.float32)


def test_this_stack_writes_what_the_other_loads(other, tiny_vgg_dir, tiny_run, tmp_path):
    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns('export*', 'evaluation_*'))
    out = other(MAIN, '--vgg-dir', tiny_vgg_dir, '--runs-dir', tmp_path / 'runs', '--init-from', run, *TRAIN)
    assert 'Weights initialised from' in out and 'Done: ' in out, 'training starts on our encoder and weights'

    other(MAIN, '--predict', TEST_IMAGES, '--output', tmp_path / 'theirs', '--checkpoint', run)
    assert run_cli('--predict', TEST_IMAGES, '--output', tmp_path / 'ours', '--checkpoint', run) == 0
    theirs, ours = road_files(tmp_path / 'theirs'), road_files(tmp_path / 'ours')
    assert len(ours) == 6 and sorted(theirs) == sorted(ours)
    assert max(np.abs(theirs[n] - ours[n]).max() for n in ours) <= 1, 'the same probabilities (to 1/255)'

    other(MAIN, '--evaluate', run)
    theirs = overall(run)
    assert run_cli('--evaluate', run) == 0
    for key in ('max_f1', 'average_precision', 'iou'):
        assert theirs[key] == pytest.approx(overall(run)[key], abs=1e-3), key

    other(MAIN, '--export', run, '--format', 'frozen', 'saved_model')
    expected = probabilities(export.freeze_checkpoint(runs.find_checkpoint(run), None), images())
    frozen = read_frozen(os.path.join(run, 'export', runs.FROZEN))
    np.testing.assert_allclose(probabilities(frozen, images()), expected, atol=1e-5)
    served = serve(os.path.join(run, 'export', 'saved_model'), images().astype(np.uint8))
    np.testing.assert_allclose(served, probabilities(frozen, images().astype(np.uint8).astype(np.float32)),
                               atol=1e-4)


def test_the_other_stack_writes_what_this_one_loads(other, tmp_path):
    vgg_dir = tmp_path / 'encoder'
    other('-c', BUILD_VGG, ROOT, vgg_dir / 'vgg')
    other(MAIN, '--vgg-dir', vgg_dir, '--runs-dir', tmp_path / 'theirs', *TRAIN)
    (run,) = glob.glob(str(tmp_path / 'theirs' / '*'))

    assert run_cli('--vgg-dir', vgg_dir, '--runs-dir', tmp_path / 'ours', '--init-from', run, *TRAIN) == 0
    assert run_cli('--predict', TEST_IMAGES, '--output', tmp_path / 'predicted', '--checkpoint', run) == 0
    assert len(road_files(tmp_path / 'predicted')) == 6
    assert run_cli('--evaluate', run) == 0
    assert 0 < overall(run)['average_precision'] <= 1
    assert run_cli('--export', run, '--format', 'frozen', 'saved_model') == 0
    theirs = probabilities(read_frozen(os.path.join(run, 'best', runs.FROZEN)), images())
    ours = probabilities(read_frozen(os.path.join(run, 'export', runs.FROZEN)), images())
    assert theirs[..., 1].std() > 1e-3, 'outputs that tell weights apart'
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_graphs_are_written_for_both_stacks(tiny_vgg_dir, tiny_run):
    """Reference variables only, and no attrs at their defaults, in the encoder, the checkpoints' graphs and
    the frozen graph."""
    model = saved_model_pb2.SavedModel()
    with open(os.path.join(tiny_vgg_dir, 'vgg', 'saved_model.pb'), 'rb') as f:
        model.ParseFromString(f.read())
    metas = [model.meta_graphs[0]]
    for path in glob.glob(os.path.join(tiny_run, '*', '*.meta')):
        metas.append(meta_graph_pb2.MetaGraphDef())
        with open(path, 'rb') as f:
            metas[-1].ParseFromString(f.read())
    assert len(metas) == 3
    for meta in metas:
        ops = {node.op for node in meta.graph_def.node}
        assert meta.meta_info_def.stripped_default_attrs and 'VariableV2' in ops and 'VarHandleOp' not in ops
    frozen = read_frozen(os.path.join(tiny_run, 'best', runs.FROZEN))
    convolutions = [n for n in frozen.node if n.op in ('Conv2D', 'MaxPool')]
    assert len(convolutions) == 23 and not any('data_format' in n.attr for n in convolutions), 'NHWC is the default'


def rewrite(path, proto, change):
    """Parse path into proto, change(proto), write it back."""
    with open(path, 'rb') as f:
        proto.ParseFromString(f.read())
    change(proto)
    with open(path, 'wb') as f:
        f.write(proto.SerializeToString())


def from_the_future(meta, what='op'):
    """A MetaGraphDef as a TensorFlow FUTURE would write it, with an op or an attr that no TensorFlow has."""
    meta.meta_info_def.tensorflow_version = FUTURE
    if what == 'op':
        meta.graph_def.node.add(name='later', op='AddedLater', input=['image_input'])
    else:
        next(n for n in meta.graph_def.node if n.op == 'MaxPool').attr['added_later'].i = 1
    return "op 'AddedLater'" if what == 'op' else "MaxPool's attr 'added_later'"


@pytest.mark.parametrize('what', ['op', pytest.param('attr', marks=pytest.mark.skipif(
    not tf.__version__.startswith('1.'), reason='TF 2.x ignores the attrs it does not know'))])
def test_an_encoder_with_what_this_tensorflow_lacks_is_one_error_line(tiny_vgg_dir, tmp_path, capsys, what):
    vgg = str(tmp_path / 'vgg')
    shutil.copytree(os.path.join(tiny_vgg_dir, 'vgg'), vgg)
    pb = os.path.join(vgg, 'saved_model.pb')
    missing = []
    rewrite(pb, saved_model_pb2.SavedModel(), lambda model: missing.append(from_the_future(model.meta_graphs[0], what)))
    assert run_cli('--vgg-dir', tmp_path, '--runs-dir', tmp_path / 'runs', *TRAIN) == 2
    assert error_line(capsys) == (
        "error: {} was written by TensorFlow {} and holds {}, which TensorFlow {} does not have: delete {} to rebuild "
        "it; this release writes it for both stacks".format(pb, FUTURE, missing[0], tf.__version__, vgg))
    assert os.listdir(str(tmp_path / 'runs')) == []


def test_a_checkpoint_with_what_this_tensorflow_lacks_is_one_error_line(tiny_run, tmp_path, capsys):
    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns('export*'))
    meta = runs.find_checkpoint(run) + '.meta'
    rewrite(meta, meta_graph_pb2.MetaGraphDef(), from_the_future)
    assert run_cli('--export', run, '--format', 'frozen') == 2
    assert error_line(capsys) == (
        "error: {} was written by TensorFlow {} and holds op 'AddedLater', which TensorFlow {} does not have: use "
        "the run with that TensorFlow, or train from its weights here with --init-from {}".format(
            meta, FUTURE, tf.__version__, run))
    assert not os.path.exists(os.path.join(run, 'export'))


def test_a_frozen_graph_with_what_this_tensorflow_lacks_is_one_error_line(tiny_run, tmp_path, capsys):
    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns('export*'))
    frozen = os.path.join(run, 'best', runs.FROZEN)

    def add_future_op(graph_def):
        graph_def.versions.producer = 9999
        graph_def.node.add(name='later', op='AddedLater', input=['probabilities'])
    rewrite(frozen, tf.GraphDef(), add_future_op)
    assert run_cli('--predict', TEST_IMAGES, '--output', tmp_path / 'out', '--checkpoint', run) == 2
    assert error_line(capsys) == (
        "error: {} was written by a newer TensorFlow (GraphDef version 9999; this one has {}) and holds op "
        "'AddedLater', which TensorFlow {} does not have: use it with that TensorFlow (docs/cross-stack.md says "
        "what crosses)".format(frozen, tf.version.GRAPH_DEF_VERSION, tf.__version__))

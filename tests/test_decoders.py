"""Every decoder (roadseg/model/decoders.py) on the tiny encoder: sizes, weights, and a run each that trains,
evaluates, predicts and exports; an encoder without the named stages is one error line."""
import glob
import json
import os
import shutil

import numpy as np
import pytest

import project_tests
from conftest import SAMPLE, TINY_SHAPE, error_line, kept_entry, run_cli
from test_cross_stack import MAIN, other, serve  # noqa: F401 (other: the other stack's python, a fixture)
from roadseg import runs, task
from roadseg.model import blocks, decoders, freeze, heads, vgg
from roadseg.model.names import FULL_LADDER
from roadseg.serving import export
from roadseg.system.files import InputError
from roadseg.system.tfcompat import tf
import main

NAMES = sorted(decoders.DECODERS)
TEST_IMAGES = os.path.join(SAMPLE, 'testing', 'image_2')
IMAGES = np.random.RandomState(0).uniform(0, 255, (2, 64, 192, 3)).astype(np.float32)  # TINY_SHAPE


def build(name, size, num_classes=5, crop=False, **options):
    """(logits, end_points, session, image_input) of decoder `name` on the tiny encoder, new variables set."""
    sess = tf.Session(graph=tf.Graph())
    with sess.graph.as_default():
        image_input, keep_prob, l3, l4, l7 = main.load_vgg(sess, project_tests.tiny_vgg_path())
        pretrained = set(tf.global_variables())
        stages = vgg.encoder_stages(sess.graph, 'tiny', decoders.NEEDS[name])
        logits, ends = decoders.DECODERS[name](dict(stages, pool3=l3, pool4=l4, fc7=l7), num_classes,
                                               keep_prob=keep_prob, crop_to=image_input if crop else None,
                                               **options)
        project_tests.init_new_variables(sess, pretrained)
    return logits, ends, sess, image_input


VARIANTS = {'psp-noskips': {'skips': False}, 'unet-3': {'stages': 3}, 'linknet-1': {'stages': 1},
            'unet-4': {'stages': 4}}


@pytest.mark.parametrize('name', NAMES + sorted(VARIANTS))
@pytest.mark.parametrize('size', [(64, 96), (32, 160)])
def test_decoders_keep_sizes_that_are_multiples_of_32(name, size):
    options = VARIANTS.get(name, {})
    logits, ends, sess, image_input = build(name.split('-')[0], size, **options)
    with sess, sess.graph.as_default():
        images = np.random.RandomState(0).uniform(0, 255, (2,) + size + (3,)).astype(np.float32)
        out = sess.run(logits, {image_input: images})
        assert logits.op.name == 'decoder/' + heads.DECODER_OUTPUT
        new = [v for v in tf.trainable_variables() if v.op.name.startswith('decoder/')]
        kernels = [v for v in new if v.op.name.endswith('/kernel')]
        assert len(tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)) == len(kernels) > 0
        grads = tf.gradients(tf.reduce_sum(logits * tf.random_normal(tf.shape(logits), seed=1)), new)
        assert all(g is not None for g in grads), 'every decoder weight is trained'
    assert out.shape == (2,) + size + (5,)


@pytest.mark.parametrize('name', ['segnet', 'unet', 'linknet', 'psp', 'unet-3'])
def test_other_sizes_are_cropped_to_the_image(name):
    logits, _, sess, image_input = build(name.split('-')[0], None, crop=True, **VARIANTS.get(name, {}))
    with sess:
        assert sess.run(logits, {image_input: np.zeros((1, 50, 70, 3), np.float32)}).shape == (1, 50, 70, 5)


@pytest.mark.parametrize('stages', [1, 3, 5])
def test_a_shorter_ladder_joins_only_the_deepest_stages(stages):
    _, ends, sess, _ = build('linknet', None, stages=stages)
    sess.close()
    fused = sorted(k[len('fuse_'):] for k in ends if k.startswith('fuse_'))
    assert fused == list(decoders.CONV_STAGES[5 - stages:])
    assert ('up_score' in ends) == (stages < 5)
    with pytest.raises(ValueError, match='stages'):
        build('unet', None, stages=6)


def test_segnet_unpools_each_maximum_where_it_was():
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.placeholder(tf.float32, [None, None, None, 3])
        pooled, argmax = blocks.max_pool_with_argmax(x, 'p')
        back = blocks.unpool(pooled, argmax, x)
        values = np.random.RandomState(0).permutation(2 * 4 * 6 * 3).reshape(2, 4, 6, 3).astype(np.float32)
        got = sess.run(back, {x: values})
    windows = values.reshape(2, 2, 2, 3, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(2, 2, 3, 3, 4)
    want = np.where(values == np.repeat(np.repeat(windows.max(-1), 2, 1), 2, 2), values, 0)
    np.testing.assert_array_equal(got, want)


def test_adaptive_pooling_averages_each_bin():
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.placeholder(tf.float32, [None, None, None, 2])
        values = np.random.RandomState(0).rand(1, 5, 7, 2).astype(np.float32)
        got = sess.run(blocks.adaptive_avg_pool(x, 3), {x: values})
    rows, cols = [(0, 2), (1, 4), (3, 5)], [(0, 3), (2, 5), (4, 7)]  # floor(i*n/3) .. ceil((i+1)*n/3)
    want = [[values[0, r0:r1, c0:c1].mean((0, 1)) for c0, c1 in cols] for r0, r1 in rows]
    np.testing.assert_allclose(got[0], want, rtol=1e-5)


@pytest.mark.parametrize('bins,size', [(1, (5, 7)), (3, (5, 7)), (6, (11, 15)), (2, (64, 3))])
def test_pyramid_bins_resize_as_tensorflow_does(bins, size):
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.placeholder(tf.float32, [None, bins, bins, 2])
        values = np.random.RandomState(0).rand(2, bins, bins, 2).astype(np.float32)
        got, want = sess.run([blocks.resize_bins(x, tf.constant(size)),
                              tf.image.resize_bilinear(x, size, half_pixel_centers=True)], {x: values})
    np.testing.assert_allclose(got, want, atol=1e-5)


def onnx_probabilities(path, images):
    import onnxruntime
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    return session.run(['probabilities'], {'image_input': images})[0]


TRAINED = [(name, FULL_LADDER) for name in NAMES] + [('unet', 3)]  # (decoder, --ladder-stages) of decoder_run


@pytest.fixture(scope='module', params=TRAINED, ids=lambda p: p[0] if p[1] == FULL_LADDER else '{}-{}'.format(*p))
def decoder_run(request, tiny_vgg_dir, tmp_path_factory):
    """(decoder, ladder stages, run folder): two steps of each decoder on the sample, conv1 frozen; and U-Net with
    --ladder-stages 3."""
    name, stages = request.param
    runs = tmp_path_factory.mktemp('runs-{}-{}'.format(name, stages))
    ladder = ['--ladder-stages', stages] if stages != FULL_LADDER else []
    assert run_cli('--decoder', name, *ladder, '--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--runs-dir', runs,
                   '--epochs', 1, '--batch-size', 3, '--freeze-blocks', 1, *TINY_SHAPE) == 0
    (run,) = glob.glob(str(runs / '*'))
    return name, stages, run


def frozen_probabilities(path, images):
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        tf.import_graph_def(freeze.read_frozen(path), name='')
        return sess.run('probabilities:0', {'image_input:0': images})


def test_each_decoder_trains_evaluates_predicts_and_exports(decoder_run, tmp_path):
    name, stages, run = decoder_run
    with open(os.path.join(run, 'config.json')) as f:
        config = json.load(f)
    assert (config['decoder'], config['ladder_stages']) == (name, stages)
    assert run_cli('--evaluate', run) == 0
    with open(os.path.join(run, 'evaluation_best', 'metrics.json')) as f:
        overall = json.load(f)['overall']
    kept = kept_entry(run)
    assert overall['iou'] == pytest.approx(kept['val_iou'], abs=1e-3)  # the model validation kept, scored again
    assert run_cli('--predict', TEST_IMAGES, '--output', tmp_path / 'out', '--checkpoint', run) == 0
    assert len(glob.glob(str(tmp_path / 'out' / '*_overlay.png'))) == len(os.listdir(TEST_IMAGES))
    written = export.export_run(run, ('frozen', 'saved_model', 'onnx'))
    frozen = frozen_probabilities(written['frozen'], IMAGES)
    assert frozen[..., 1].std() > 1e-4, 'trained weights, not a constant'
    np.testing.assert_allclose(onnx_probabilities(written['onnx'], IMAGES), frozen, atol=1e-4)
    served = serve(written['saved_model'], IMAGES.astype(np.uint8))
    np.testing.assert_allclose(served, frozen_probabilities(written['frozen'], IMAGES.astype(np.uint8).astype(
        np.float32)), atol=1e-4)


def test_the_other_stack_loads_each_decoder(decoder_run, other, tmp_path):
    run = decoder_run[-1]
    run_copy = str(tmp_path / 'run')
    shutil.copytree(run, run_copy, ignore=shutil.ignore_patterns('export*', 'evaluation_*'))
    other(MAIN, '--export', run_copy, '--format', 'frozen')
    theirs = frozen_probabilities(os.path.join(run_copy, 'export', runs.FROZEN), IMAGES)
    np.testing.assert_allclose(theirs, frozen_probabilities(os.path.join(run, 'best', runs.FROZEN), IMAGES),
                               atol=1e-5)


def test_an_encoder_without_named_stages_is_one_error_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(vgg, 'STAGES', ())  # an encoder as releases before the named stages wrote it
    vgg.build_vgg_savedmodel(str(tmp_path / 'vgg'), None, widths=project_tests.TINY_WIDTHS,
                             fc_width=project_tests.TINY_FC, fc6_kernel=3)
    monkeypatch.undo()
    train = ['--data-dir', SAMPLE, '--vgg-dir', tmp_path, '--runs-dir', tmp_path / 'runs', '--epochs', 1,
             '--batch-size', 3] + TINY_SHAPE
    assert run_cli('--decoder', 'unet', *train) == 2
    assert error_line(capsys) == ('error: {} has no encoder stage conv1_2 (built by an older release): delete it, or '
                                  'pass another --vgg-dir, to rebuild it with the stages this decoder needs'
                                  .format(tmp_path / 'vgg'))
    assert os.listdir(str(tmp_path / 'runs')) == [], 'stopped before the run folder was made'
    assert run_cli('--decoder', 'psp', *train) == 0, 'pool3, pool4 and fc7 are there'


def test_fcn_flag_is_a_synonym_and_conflicts_are_one_error_line(tiny_vgg_dir, tmp_path, capsys):
    train = ['--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--runs-dir', tmp_path, '--epochs', 1, *TINY_SHAPE]
    assert run_cli('--fcn', 16, '--decoder', 'unet', *train) == 2
    assert error_line(capsys) == 'error: --fcn 16 conflicts with --decoder unet'
    assert run_cli('--decoder', 'segnet', '--skip-scaling', *train) == 2
    assert error_line(capsys) == 'error: --skip-scaling applies to --decoder fcn8, fcn16, fcn32, psp, not segnet'
    assert run_cli('--ladder-stages', 3, *train) == 2
    assert error_line(capsys) == 'error: --ladder-stages applies to --decoder unet or linknet, not fcn8'
    assert os.listdir(str(tmp_path)) == []


def test_an_op_tf2onnx_cannot_convert_is_one_error_line_and_the_other_formats_are_written(tiny_run, tmp_path,
                                                                                           capsys, monkeypatch):
    with tf.Graph().as_default() as graph:
        x = tf.placeholder(tf.float32, [None, 4, 4, 3], name='image_input')
        tf.identity(tf.math.igamma(x + 1.0, x + 2.0), name='probabilities')
        tf.identity(x, name='classes')
    with pytest.raises(InputError, match='cannot convert TensorFlow op Igamma to ONNX: no model.onnx'):
        export.write_onnx(graph.as_graph_def(), str(tmp_path / 'model.onnx'), task.kitti())
    assert not os.path.exists(str(tmp_path / 'model.onnx'))

    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns('export*'))
    real = export.write_onnx
    monkeypatch.setattr(export, 'write_onnx', lambda graph_def, path, kind: real(graph.as_graph_def(), path, kind))
    assert run_cli('--export', run) == 2
    line = error_line(capsys)
    assert line.startswith('error: tf2onnx ') and line.endswith('cannot convert TensorFlow op Igamma to ONNX: no '
                                                                'model.onnx; written: {}, {}'.format(
                                                                    os.path.join(run, 'export', runs.FROZEN),
                                                                    os.path.join(run, 'export', 'saved_model')))
    assert sorted(os.listdir(os.path.join(run, 'export'))) == [runs.FROZEN, 'saved_model']


def test_a_run_from_before_decoder_resumes_and_init_from_needs_the_same_decoder(tiny_run, tiny_vgg_dir, tmp_path,
                                                                                 capsys):
    run = str(tmp_path / 'old.partial')
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns('export*', 'evaluation_*'))
    config = runs.read_config(run)
    del config['decoder']
    config['fcn'] = 8
    runs.write_config(run, config)
    assert run_cli('--resume', run, '--fcn', 8, '--epochs', 2, '--vgg-dir', tiny_vgg_dir,
                   '--runs-dir', tmp_path) == 0
    assert runs.read_config(str(tmp_path / 'old'))['decoder'] == 'fcn8'
    assert run_cli('--decoder', 'unet', '--init-from', tiny_run, '--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir,
                   '--runs-dir', tmp_path / 'new', '--epochs', 1, *TINY_SHAPE) == 2
    assert error_line(capsys) == ('error: --init-from {} was trained with --decoder fcn8, this run has --decoder '
                                  'unet: its weights start the same decoder only'.format(tiny_run))

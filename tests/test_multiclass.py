"""Multi-class runs end to end: synthetic shapes and a few CamVid frames, trained, evaluated, predicted."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, kept_entry, run_cli
from roadseg.serving.inference import Segmenter
from roadseg.system.tfcompat import tf
import main
import project_tests

CAMVID = os.path.join(ROOT, 'data', 'CamVid')


@pytest.mark.parametrize('variant,size', [(8, (64, 96)), (16, (64, 96)), (32, (64, 96)), (16, (50, 70))])
def test_fcn_variants_keep_the_input_size(variant, size):
    with tf.Graph().as_default(), tf.Session() as sess:
        image_input, _, l3, l4, l7 = main.load_vgg(sess, project_tests.tiny_vgg_path())
        pretrained = set(tf.global_variables())
        out = main.layers(l3, l4, l7, 5, crop_to=image_input, variant=variant)
        project_tests.init_new_variables(sess, pretrained)
        result = sess.run(out, {image_input: np.zeros((1,) + size + (3,), np.float32)})
        kernels = {v.op.name for v in tf.trainable_variables() if v.op.name.startswith('decoder/')}
    assert result.shape == (1,) + size + (5,)
    expected = {8: {'score3', 'score4', 'score7', 'up3', 'up4', 'up7'}, 16: {'score4', 'score7', 'up4x16', 'up7'},
                32: {'score7', 'up7x32'}}[variant]
    assert {name.split('/')[1] for name in kernels} == expected


def test_class_weights_weight_each_pixel_by_its_true_class():
    """The weighted loss, computed here by hand: sum_i w[y_i] * -log softmax(z_i)[y_i] / sum_i w[y_i] over the
    labelled pixels, on logits that differ per pixel and class (so the weights change the value)."""
    z = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0], [1.0, -2.0, 0.5], [-1.0, 0.0, 2.0], [5.0, -5.0, 0.0]],
                 np.float32)
    y = [0, 1, 2, 1, None]  # the last pixel is don't care (an all-zero label)
    weights = np.array([1.0, 3.0, 0.5])
    one_hot = np.zeros_like(z)
    for i, c in enumerate(y):
        if c is not None:
            one_hot[i, c] = 1
    with tf.Graph().as_default():
        logits = tf.Variable(z.reshape(1, 1, 5, 3))
        labels = tf.placeholder(tf.float32, [None, None, None, 3])
        _, _, loss = main.optimize(logits, labels, 0.1, 3, class_weights=list(weights))
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            value = sess.run(loss, {labels: one_hot.reshape(1, 1, 5, 3)})
    labelled = [i for i, c in enumerate(y) if c is not None]
    true = np.array([y[i] for i in labelled])
    zl = z[labelled].astype(np.float64)
    nll = np.log(np.exp(zl).sum(axis=1)) - zl[np.arange(len(true)), true]
    want = np.sum(weights[true] * nll) / np.sum(weights[true])
    by_predicted = weights[np.argmax(zl, axis=1)]
    assert abs(np.mean(nll) - want) > 0.1 and abs(np.sum(by_predicted * nll) / by_predicted.sum() - want) > 0.1
    assert abs(value - want) < 1e-5, (value, want)


def _check_run(run, tmp_path, num_classes):
    config = json.load(open(os.path.join(run, 'config.json')))
    assert config['num_classes'] == num_classes and len(config['class_colors']) == num_classes
    assert os.path.exists(os.path.join(run, 'test_images', 'legend.png'))
    assert os.path.exists(os.path.join(run, 'best', 'evaluation', 'class_iou.png'))
    assert run_cli('--evaluate', run) == 0
    metrics = json.load(open(os.path.join(run, 'evaluation_best', 'metrics.json')))
    assert len(metrics['class_iou']) == num_classes
    kept = kept_entry(run)
    assert metrics['mean_iou'] == pytest.approx(kept['val_iou'], abs=1e-3)  # the model validation kept
    images = tmp_path / 'images'
    images.mkdir()
    image = np.random.RandomState(0).randint(0, 255, (40, 60, 3), np.uint8)
    Image.fromarray(image).save(str(images / 'a.png'))
    assert run_cli('--predict', images, '--checkpoint', run, '--output', tmp_path / 'out') == 0
    classes = np.asarray(Image.open(str(tmp_path / 'out' / 'a.png')))
    with Segmenter(run) as model:
        probs, _ = model.predict(image)
    assert classes.shape == (40, 60) and (classes == np.argmax(probs, -1)).all()
    assert sorted(os.listdir(str(tmp_path / 'out'))) == ['a.png', 'a_overlay.png', 'legend.png']


def test_shapes_run(tmp_path, tiny_vgg_dir):
    runs = tmp_path / 'runs'
    assert run_cli('--dataset', 'shapes', '--vgg-dir', tiny_vgg_dir, '--runs-dir', runs, '--epochs', 1,
                   '--batch-size', 16, '--image-shape', 64, 64, '--learning-rate', 1e-3) == 0
    (run,) = os.listdir(str(runs))
    _check_run(str(runs / run), tmp_path, 5)


def _camvid_subset(root, frames=(6, 3)):
    for split, n in zip(('train', 'val'), frames):
        for sub in (split, split + 'annot'):
            os.makedirs(os.path.join(root, sub))
        for name in sorted(os.listdir(os.path.join(CAMVID, split)))[:n]:
            for sub in (split, split + 'annot'):
                shutil.copy(os.path.join(CAMVID, sub, name), os.path.join(root, sub, name))
    return root


@pytest.mark.skipif(not os.path.isdir(CAMVID), reason='data/CamVid not found (python ../shared/camvid/materialize.py '
                                                      'data/CamVid)')
def test_camvid_run_with_class_weights(tmp_path, tiny_vgg_dir, capsys):
    data = _camvid_subset(str(tmp_path / 'CamVid'))
    runs = tmp_path / 'runs'
    assert run_cli('--data-dir', data, '--vgg-dir', tiny_vgg_dir, '--runs-dir', runs, '--epochs', 1,
                   '--batch-size', 3, '--image-shape', 96, 128, '--class-weights', 'median') == 0
    out = capsys.readouterr().out
    assert 'camvid: 11 classes' in out and 'Class weights (median frequency): Sky' in out
    (run,) = os.listdir(str(runs))
    _check_run(str(runs / run), tmp_path, 11)

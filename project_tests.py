"""The Udacity rubric tests, stronger: run as `python project_tests.py`, also collected by pytest.

Fast: they use a tiny VGG-shaped SavedModel (tag vgg16, the same five tensors) built here.
"""
import contextlib
import io
import os
import re
import sys
import tempfile
import unittest
from unittest import mock

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from roadseg.system.tfcompat import tf  # noqa: E402
from roadseg.model import heads, vgg  # noqa: E402
import main  # noqa: E402

TINY_WIDTHS = (4, 8, 8, 16, 16)
TINY_FC = 16
_tiny = {}


def tiny_vgg_path():
    """A random VGG-shaped SavedModel (widths 4..16, fc 16), built once per process."""
    if 'path' not in _tiny:
        _tiny['dir'] = tempfile.TemporaryDirectory(prefix='tiny-vgg-')
        _tiny['path'] = vgg.build_vgg_savedmodel(os.path.join(_tiny['dir'].name, 'vgg'), None,
                                                 widths=TINY_WIDTHS, fc_width=TINY_FC, fc6_kernel=3)
    return _tiny['path']


def tiny_fcn(sess, num_classes=2, crop=True):
    """(image_input, keep_prob, output, pretrained variables) of the tiny encoder + layers()."""
    image_input, keep_prob, l3, l4, l7 = main.load_vgg(sess, tiny_vgg_path())
    pretrained = set(tf.global_variables())
    out = main.layers(l3, l4, l7, num_classes, crop_to=image_input if crop else None)
    return image_input, keep_prob, out, pretrained


def init_new_variables(sess, pretrained):
    """Initialise what layers()/optimize() added, keeping the loaded VGG weights."""
    sess.run(tf.variables_initializer([v for v in tf.global_variables() if v not in pretrained]))


def test_load_vgg():
    """load_vgg calls the SavedModel loader with tag vgg16 and returns the five named tensors."""
    with tf.Graph().as_default():
        with mock.patch.object(tf.saved_model.loader, 'load', wraps=tf.saved_model.loader.load) as loader:
            with tf.Session() as sess:
                tensors = main.load_vgg(sess, tiny_vgg_path())
        loader.assert_called_once_with(sess, ['vgg16'], tiny_vgg_path())
        assert [t.name for t in tensors] == list(heads.VGG_TENSORS)
        assert tensors[2].shape[-1] == TINY_WIDTHS[2] and tensors[3].shape[-1] == TINY_WIDTHS[3]
        assert tensors[4].shape[-1] == TINY_FC
        assert len(tf.trainable_variables()) == 2 * 15, 'all 13 convs and fc6/fc7 must be trainable'


def test_load_vgg_mocked_loader():
    """Udacity's form: with the loader mocked out, the five tensors come from the session's graph."""
    with tf.Graph().as_default():
        with mock.patch.object(tf.saved_model.loader, 'load') as loader:
            sess = tf.Session()
            expected = [tf.placeholder(tf.float32, name=n.split(':')[0]) for n in heads.VGG_TENSORS]
            got = main.load_vgg(sess, 'some/path')
            sess.close()
        assert loader.call_args == mock.call(sess, ['vgg16'], 'some/path')
        assert list(got) == expected


def _layers_output_shape(height, width, crop):
    with tf.Graph().as_default(), tf.Session() as sess:
        image_input, _, out, pretrained = tiny_fcn(sess, crop=crop)
        init_new_variables(sess, pretrained)
        result = sess.run(out, {image_input: np.zeros((2, height, width, 3), np.float32)})
        reg = tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)
    assert out.shape.as_list() == [None, None, None, 2]
    assert len(reg) == 6, 'L2 loss on the 3 score kernels and the 3 transposed-conv kernels'
    return result.shape


def test_layers():
    """Output size equals the input's for sizes divisible by 32; other sizes round up, or crop exactly."""
    for h, w in [(32, 32), (64, 96), (160, 576)]:
        assert _layers_output_shape(h, w, crop=False) == (2, h, w, 2)
    assert _layers_output_shape(50, 70, crop=False) == (2, 56, 72, 2)
    assert _layers_output_shape(50, 70, crop=True) == (2, 50, 70, 2)


def test_layers_placeholders():
    """The Udacity form: layers() on bare placeholders keeps [None, None, None, classes]."""
    with tf.Graph().as_default():
        l3 = tf.placeholder(tf.float32, [None, None, None, 256])
        l4 = tf.placeholder(tf.float32, [None, None, None, 512])
        l7 = tf.placeholder(tf.float32, [None, None, None, 4096])
        assert main.layers(l3, l4, l7, 2).shape.as_list() == [None, None, None, 2]


def test_optimize():
    """Udacity's check (logits shape, weights change) plus: the loss falls on a small batch,
    L2 losses are in what is minimised, and don't-care pixels (all-zero labels) do not count."""
    num_classes = 2
    shape = [2, 3, 4, num_classes]
    with tf.Graph().as_default():
        layers_output = tf.Variable(tf.zeros(shape))
        tf.add_to_collection(tf.GraphKeys.REGULARIZATION_LOSSES, 1e-3 * tf.nn.l2_loss(layers_output))
        correct_label = tf.placeholder(tf.float32, [None, None, None, num_classes])
        learning_rate = tf.placeholder(tf.float32, name='learning_rate')
        logits, train_op, loss = main.optimize(layers_output, correct_label, learning_rate, num_classes)
        assert logits.shape.as_list() == [2 * 3 * 4, num_classes]
        labels = np.zeros(shape, np.float32)
        labels[..., 1] = 1
        labels[:, 0] = 0  # a row of don't-care pixels
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            first = sess.run(loss, {correct_label: labels})
            assert abs(first - np.log(2)) < 1e-6, 'mean over the labelled pixels only'
            for _ in range(20):
                sess.run(train_op, {correct_label: labels, learning_rate: 0.1})
            value, last = sess.run([layers_output, loss], {correct_label: labels})
    assert value.min() != 0 or value.max() != 0, 'Training operation not changing weights.'
    assert last < 0.5 * first
    assert np.all(value[:, 0] == 0) and np.abs(value[:, 1:]).min() > 0, "don't-care pixels get no gradient"


def test_train_nn():
    """train_nn trains a real (tiny) FCN: it prints a loss per epoch and the loss goes down."""
    rng = np.random.RandomState(0)
    images = rng.uniform(0, 255, (4, 64, 64, 3)).astype(np.float32)
    labels = np.zeros((4, 64, 64, 2), np.float32)
    labels[:, 32:, :, 1] = 1
    labels[:, :32, :, 0] = 1

    def get_batches_fn(batch_size):
        for i in range(0, len(images), batch_size):
            yield images[i:i + batch_size], labels[i:i + batch_size]

    with tf.Graph().as_default(), tf.Session() as sess:
        tf.set_random_seed(0)
        image_input, keep_prob, out, pretrained = tiny_fcn(sess)
        correct_label = tf.placeholder(tf.float32, [None, None, None, 2])
        learning_rate = tf.placeholder(tf.float32)
        _, train_op, loss = main.optimize(out, correct_label, learning_rate, 2)
        init_new_variables(sess, pretrained)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            history = main.train_nn(sess, 8, 2, get_batches_fn, train_op, loss, image_input, correct_label,
                                    keep_prob, learning_rate, keep_prob_value=1.0, learning_rate_value=1e-2)
    losses = [float(x) for x in re.findall(r'Epoch \d+/8: loss ([0-9.]+)', printed.getvalue())]
    assert len(losses) == 8 and np.allclose(losses, history, atol=1e-4)
    assert losses[-1] < 0.7 * losses[0], losses


def test_for_kitti_dataset():
    """The full KITTI Road set: 289 training images, 289 road masks, 290 testing images."""
    from roadseg.data.datasets.kitti_road import count_kitti
    data_dir = os.path.join(HERE, 'data', 'data_road')
    if not os.path.isdir(data_dir):
        raise unittest.SkipTest('{} not found (see data/README.md)'.format(data_dir))  # pytest counts it as a skip
    assert count_kitti(data_dir) == (289, 289, 290)


if __name__ == '__main__':
    tests = [test_load_vgg, test_load_vgg_mocked_loader, test_layers, test_layers_placeholders, test_optimize,
             test_train_nn, test_for_kitti_dataset]
    for test in tests:
        try:
            test()
        except unittest.SkipTest as skipped:
            print('SKIPPED: {}: {}'.format(test.__name__, skipped))
            continue
        print('Tests Passed: {}'.format(test.__name__))

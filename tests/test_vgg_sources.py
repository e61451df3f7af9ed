"""ImageNet VGG16 weight sources: Keras HDF5 files and TF-slim checkpoints written here in their layouts (small
widths), converted and checked against NumPy; bad files; the checksummed download from a file:// URL; the order."""
import hashlib
import os
import pathlib
import stat

import numpy as np
import pytest

from roadseg.model import vgg, vgg_sources, vgg_weights
from roadseg.system.files import InputError
from roadseg.system.tfcompat import tf
from test_vgg import numpy_pool5

WIDTHS = (4, 6, 8, 10, 12)
FC = 16
KERAS = ('BGR', (103.939, 116.779, 123.68))  # keras imagenet_utils 'caffe' mode
SLIM = ('RGB', (123.68, 116.78, 103.94))  # slim vgg_preprocessing


@pytest.fixture(autouse=True)
def no_keras_download(monkeypatch, tmp_path):
    """No test reaches the network or the user's Keras cache."""
    monkeypatch.setattr(vgg_weights, 'KERAS_URLS', ())
    monkeypatch.setenv('KERAS_HOME', str(tmp_path / 'keras-home'))


def _layer(rng, shape):
    kernel = rng.normal(0, np.sqrt(2.0 / np.prod(shape[:-1])), shape).astype(np.float32)
    return kernel, rng.uniform(0, 0.1, shape[-1]).astype(np.float32)


def random_weights(seed=0):
    """VGG16-shaped weights in the encoder's layout: convs 3x3 (WIDTHS), fc6 7x7xC5xFC, fc7 1x1xFCxFC."""
    rng = np.random.RandomState(seed)
    weights, channels = {}, 3
    for b, n in enumerate(vgg_weights.CONVS_PER_BLOCK, start=1):
        for i in range(1, n + 1):
            weights['conv{}_{}'.format(b, i)] = _layer(rng, (3, 3, channels, WIDTHS[b - 1]))
            channels = WIDTHS[b - 1]
    weights['fc6'] = _layer(rng, (7, 7, channels, FC))
    weights['fc7'] = _layer(rng, (1, 1, FC, FC))
    return weights


def keras_layers(weights):
    """[(Keras layer name, (kernel, bias) or None)] of VGG16 with its top; fc1 (7*7*C5, F), fc2 (F, F)."""
    layers = [('input_1', None)]
    for b, n in enumerate(vgg_weights.CONVS_PER_BLOCK, start=1):
        layers += [('block{}_conv{}'.format(b, i), weights['conv{}_{}'.format(b, i)]) for i in range(1, n + 1)]
        layers.append(('block{}_pool'.format(b), None))
    fc = weights['fc7'][0].shape[-1]
    layers += [('flatten', None),
               ('fc1', (weights['fc6'][0].reshape(-1, fc), weights['fc6'][1])),
               ('fc2', (weights['fc7'][0].reshape(-1, fc), weights['fc7'][1])),
               ('predictions', _layer(np.random.RandomState(1), (fc, 10)))]
    return layers


def write_keras_h5(path, weights, keras2=False, drop=()):
    """What Keras' save_weights writes: root attribute layer_names, a group per layer with attribute
    weight_names; Keras 1 names as in vgg16_weights_tf_dim_ordering_tf_kernels.h5 (block1_conv1_W_1:0),
    Keras 2 names (block1_conv1/kernel:0) under model_weights/ as in a whole-model file."""
    import h5py
    layers = [(name, arrays) for name, arrays in keras_layers(weights) if name not in drop]
    with h5py.File(str(path), 'w') as f:
        root = f.create_group('model_weights') if keras2 else f
        root.attrs['layer_names'] = np.array([name.encode() for name, _ in layers])
        for name, arrays in layers:
            group = root.create_group(name)
            names = [] if arrays is None else [pattern.format(name) for pattern in (
                ('{}/kernel:0', '{}/bias:0') if keras2 else ('{}_W_1:0', '{}_b_1:0'))]
            group.attrs['weight_names'] = np.array([n.encode() for n in names], 'S')
            for n, array in zip(names, arrays or ()):
                group[n] = array
    return str(path)


def write_slim_ckpt(prefix, weights, version='V1', drop=()):
    """TF-slim's vgg_16 variables (vgg_16/conv1/conv1_1/weights .. vgg_16/fc8, global_step) with tf.train.Saver;
    V1 is one file at prefix, as vgg_16.ckpt of slim's release."""
    os.makedirs(os.path.dirname(str(prefix)), exist_ok=True)
    names = {'fc6': 'vgg_16/fc6', 'fc7': 'vgg_16/fc7'}
    for b, n in enumerate(vgg_weights.CONVS_PER_BLOCK, start=1):
        names.update({'conv{}_{}'.format(b, i): 'vgg_16/conv{0}/conv{0}_{1}'.format(b, i) for i in range(1, n + 1)})
    with tf.Graph().as_default(), tf.Session() as sess:
        fc8 = _layer(np.random.RandomState(1), (1, 1, FC, 10))
        for scope, (kernel, bias) in [(names[k], v) for k, v in weights.items()] + [('vgg_16/fc8', fc8)]:
            for var, value in (('/weights', kernel), ('/biases', bias)):
                if scope + var not in drop:
                    tf.Variable(value, name=scope + var)
        tf.train.get_or_create_global_step()
        sess.run(tf.global_variables_initializer())
        saver = tf.train.Saver(write_version=getattr(tf.train.SaverDef, version))
        return saver.save(sess, str(prefix), write_meta_graph=False)


def image_224():
    return np.random.RandomState(2).randint(0, 256, (224, 224, 3)).astype(np.float32)


def run_encoder(vgg_path, image):
    """pool5 (7, 7, C5) and layer7_out (7, 7, F) of the SavedModel for one 224x224 image."""
    with tf.Graph().as_default() as graph, tf.Session() as sess:
        image_input, _, _, _, layer7 = vgg.load_vgg_tensors(sess, vgg_path)
        pool5, out7 = sess.run([graph.get_tensor_by_name('pool5:0'), layer7], {image_input: image[None]})
    return pool5[0], out7[0]


def assert_close(got, want):
    assert want.max() > 0.1, 'a real activation, not all zeros'
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


@pytest.mark.parametrize('keras2', [False, True], ids=['keras1-layout', 'keras2-model-weights'])
def test_keras_h5_matches_numpy_vgg16(tmp_path, keras2):
    """pool5, and at a 224x224 input fc7 at the centre (where the SAME 7x7 fc6 sees all of pool5) equal Keras'
    VGG16 in NumPy: BGR minus Keras' mean, Flatten (channels last), Dense fc1, Dense fc2, ReLUs."""
    weights = random_weights()
    path = write_keras_h5(tmp_path / vgg_weights.KERAS_FILE, weights, keras2)
    vgg_path, source = vgg_sources.maybe_build_vgg(str(tmp_path / 'data'), vgg_weights=path)
    image = image_224()
    pool5, out7 = run_encoder(vgg_path, image)
    want5 = numpy_pool5(image, weights, KERAS)
    assert_close(pool5, want5)
    layers = dict(keras_layers(weights))
    fc1 = np.maximum(want5.reshape(-1) @ layers['fc1'][0] + layers['fc1'][1], 0)
    assert_close(out7[3, 3], np.maximum(fc1 @ layers['fc2'][0] + layers['fc2'][1], 0))
    assert source == vgg.validate_vgg_savedmodel(vgg_path)['source']
    assert source.startswith('Keras HDF5 ' + path) and 'fc6 7x7x12x16, fc7 1x1x16x16 from the file' in source
    assert 'input BGR minus (103.939, 116.779, 123.68)' in source


@pytest.mark.parametrize('version', ['V1', 'V2'])
def test_slim_checkpoint_matches_numpy_vgg16(tmp_path, version):
    """The same against slim's vgg_16 in NumPy: RGB minus slim's mean, fc6 a 7x7 VALID conv, fc7 1x1."""
    weights = random_weights()
    path = write_slim_ckpt(tmp_path / 'slim' / 'vgg_16.ckpt', weights, version)
    vgg_path, source = vgg_sources.maybe_build_vgg(str(tmp_path / 'data'), vgg_weights=path)
    image = image_224()
    pool5, out7 = run_encoder(vgg_path, image)
    want5 = numpy_pool5(image, weights, SLIM)
    assert_close(pool5, want5)
    fc6 = np.maximum(np.einsum('hwc,hwcf->f', want5, weights['fc6'][0]) + weights['fc6'][1], 0)
    assert_close(out7[3, 3], np.maximum(fc6 @ weights['fc7'][0][0, 0] + weights['fc7'][1], 0))
    assert source.startswith('TF-slim checkpoint ' + path) and 'input RGB minus (123.68, 116.78, 103.94)' in source


def test_slim_index_file_can_be_given(tmp_path):
    prefix = write_slim_ckpt(tmp_path / 'vgg_16.ckpt', random_weights(), 'V2')
    weights, preprocessing, kind = vgg_weights.load_weights_file(prefix + '.index')
    assert kind == 'TF-slim checkpoint' and preprocessing == SLIM
    assert np.array_equal(weights['conv5_3'][0], random_weights()['conv5_3'][0])


def test_other_fc_shape_keeps_the_convs_and_initialises_fc(tmp_path):
    weights = random_weights()
    path = write_keras_h5(tmp_path / 'vgg16.h5', weights)
    vgg_path, source = vgg_sources.maybe_build_vgg(str(tmp_path / 'data'), fc_width=8, fc6_kernel=3, vgg_weights=path)
    found = vgg.validate_vgg_savedmodel(vgg_path)
    assert (found['fc_width'], found['fc6_kernel']) == (8, 3)
    assert 'fc6 3x3x12x8, fc7 1x1x8x8 He-initialised (the file has 7x7, width 16)' in source
    with tf.Graph().as_default(), tf.Session() as sess:
        vgg.load_vgg_tensors(sess, vgg_path)
        conv = sess.run({v.op.name: v for v in tf.trainable_variables()}['conv4_2/filter'])
    assert np.array_equal(conv, weights['conv4_2'][0])


def _keras(d, change=None, **kwargs):
    weights = random_weights()
    if change:
        change(weights)
    return write_keras_h5(d / 'k.h5', weights, **kwargs)


def _slim(d, change=None, **kwargs):
    weights = random_weights()
    if change:
        change(weights)
    return write_slim_ckpt(d / 'vgg_16.ckpt', weights, **kwargs)


def _conv5x5(weights):
    weights['conv2_1'] = (np.zeros((5, 5, 4, 6), np.float32), weights['conv2_1'][1])


def _fc6_short(weights):
    weights['fc6'] = (weights['fc6'][0][:6], weights['fc6'][1])


def _fc6_3x3(weights):
    weights['fc6'] = (weights['fc6'][0][:3, :3], weights['fc6'][1])


def _write(d, name, data):
    (d / name).write_bytes(data)
    return str(d / name)


@pytest.mark.parametrize('make, message', [
    (lambda d: _keras(d, drop=('block3_conv2',)), 'no layer block3_conv2'),
    (lambda d: _keras(d, drop=('fc2',)), 'no layer fc2'),
    (lambda d: _keras(d, _conv5x5), 'block2_conv1 has kernel 5x5x4x6 and bias 6, expected 3x3x4x6 and 6'),
    (lambda d: _keras(d, _fc6_short), 'fc1 has kernel 504x16 and bias 16, expected 588x16 and 16'),
    (lambda d: _slim(d, drop=('vgg_16/fc7/weights',)), 'no variable vgg_16/fc7/weights'),
    (lambda d: _slim(d, _fc6_3x3), 'vgg_16/fc6 has kernel 3x3x12x16 and bias 16, expected 7x7x12x16 and 16'),
    (lambda d: _write(d, 'notes.txt', b'not weights\n' * 10), 'neither a Keras VGG16 HDF5 file nor a TF-slim'),
    (lambda d: _write(d, 'cut.h5', vgg_weights.HDF5_SIGNATURE + b'\0' * 100), 'cannot read VGG16 weights from'),
    (lambda d: str(d / 'missing.h5'), 'VGG16 weights file not found'),
], ids=['keras-missing-conv', 'keras-missing-fc2', 'keras-conv-shape', 'keras-fc1-shape', 'slim-missing-fc7',
        'slim-fc6-shape', 'not-weights', 'truncated-hdf5', 'missing-file'])
def test_bad_weights_file_is_one_error_naming_it(tmp_path, make, message):
    (tmp_path / 'in').mkdir()
    path = make(tmp_path / 'in')
    with pytest.raises(InputError) as e:
        vgg_sources.maybe_build_vgg(str(tmp_path / 'data'), vgg_weights=path)
    assert message in str(e.value) and path in str(e.value)
    assert not os.path.exists(str(tmp_path / 'data' / 'vgg'))


def _md5(path):
    return hashlib.md5(open(str(path), 'rb').read()).hexdigest()


def test_download_checked_with_the_published_checksum(tmp_path, monkeypatch):
    """The first URL is unreachable, the second serves the file; it lands under Keras' name, the rest is built."""
    served = write_keras_h5(tmp_path / 'served.h5', random_weights())
    monkeypatch.setattr(vgg_weights, 'KERAS_URLS', ((tmp_path / 'absent.h5').as_uri(), pathlib.Path(served).as_uri()))
    monkeypatch.setattr(vgg_weights, 'KERAS_MD5', _md5(served))
    data = tmp_path / 'data'
    vgg_path, source = vgg_sources.maybe_build_vgg(str(data))
    kept = data / vgg_weights.KERAS_FILE
    assert sorted(os.listdir(str(data))) == sorted(['vgg', vgg_weights.KERAS_FILE])
    assert kept.read_bytes() == pathlib.Path(served).read_bytes()
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o666 & ~umask, 'the umask\'s permissions, not mkstemp\'s 0600'
    assert source.startswith('ImageNet VGG16, Keras HDF5 {};'.format(kept))
    assert vgg_sources.maybe_build_vgg(str(data)) == (vgg_path, source), 'validated, not fetched again'


def test_download_with_a_wrong_checksum_is_refused(tmp_path, monkeypatch):
    served = write_keras_h5(tmp_path / 'served.h5', random_weights())
    url = pathlib.Path(served).as_uri()
    monkeypatch.setattr(vgg_weights, 'KERAS_URLS', (url,))
    monkeypatch.setattr(vgg_weights, 'KERAS_MD5', '0' * 32)
    data = tmp_path / 'data'
    with pytest.raises(InputError, match='checksum mismatch for {} downloaded from {}: md5 {}, expected 0{{32}}'
                       .format(vgg_weights.KERAS_FILE, url, _md5(served))):
        vgg_sources.maybe_build_vgg(str(data))
    assert os.listdir(str(data)) == [], 'no partial download, no vgg/'


def test_unreachable_download_leaves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(vgg_weights, 'KERAS_URLS', ((tmp_path / 'absent.h5').as_uri(),))
    assert vgg_weights.keras_vgg16_file(str(tmp_path / 'data')) is None
    assert os.listdir(str(tmp_path / 'data')) == []
    assert "note: could not download Keras' ImageNet VGG16 weights" in capsys.readouterr().out


def test_keras_cache_is_used_without_download(tmp_path, monkeypatch):
    cached = tmp_path / 'keras-home' / 'models' / vgg_weights.KERAS_FILE
    cached.parent.mkdir(parents=True)
    write_keras_h5(cached, random_weights())
    monkeypatch.setattr(vgg_weights, 'KERAS_MD5', _md5(cached))
    monkeypatch.setattr(vgg_weights, 'KERAS_URLS', ((tmp_path / 'absent.h5').as_uri(),))
    assert vgg_weights.keras_vgg16_file(str(tmp_path / 'data')) == str(cached)


def test_tampered_copy_in_data_is_refused(tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    (data / vgg_weights.KERAS_FILE).write_bytes(b'\x89HDF\r\n\x1a\n tampered')
    with pytest.raises(InputError, match='checksum mismatch for .*{}: md5 '.format(vgg_weights.KERAS_FILE)):
        vgg_sources.maybe_build_vgg(str(data))
    assert os.listdir(str(data)) == [vgg_weights.KERAS_FILE], 'reported, not deleted'


def test_given_file_comes_before_the_download(tmp_path, monkeypatch):
    monkeypatch.setattr(vgg_weights, 'KERAS_URLS', ((tmp_path / 'would-fail.h5').as_uri(),))
    monkeypatch.setattr(vgg_weights, 'KERAS_MD5', '0' * 32)
    path = write_slim_ckpt(tmp_path / 'slim' / 'vgg_16.ckpt', random_weights())
    _, source = vgg_sources.maybe_build_vgg(str(tmp_path / 'data'), vgg_weights=path)
    assert source.startswith('TF-slim checkpoint')
    assert os.listdir(str(tmp_path / 'data')) == ['vgg']


def test_existing_vgg_comes_before_a_given_file(tmp_path, capsys):
    data = str(tmp_path / 'data')
    keras = write_keras_h5(tmp_path / 'k.h5', random_weights())
    vgg_path, source = vgg_sources.maybe_build_vgg(data, vgg_weights=keras)
    slim = write_slim_ckpt(tmp_path / 'slim' / 'vgg_16.ckpt', random_weights())
    assert vgg_sources.maybe_build_vgg(data, vgg_weights=slim) == (vgg_path, source)
    assert 'note: {} exists and is used as is, not built from {}'.format(vgg_path, slim) in capsys.readouterr().out

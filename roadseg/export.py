"""Export a trained run for deployment: the frozen inference graph, a serving SavedModel, an ONNX model.

Everything starts from the trained graph itself (the checkpoint's .meta or the live training session),
whatever encoder it was built on: its `probabilities` and `classes` outputs are frozen with every variable a
constant and the encoder's keep_prob fixed to 1. Loading any of these files runs the graph it holds: load
only models you trust.
"""
import json
import os
import shutil
import tempfile

from .crossstack import (check_graph_def, meta_graph_writer, missing_in_this_tensorflow, not_loadable,
                         strip_default_attrs)
from .files import InputError, check_writable_dir, first_line, write_bytes_atomic
from .tfcompat import tf

PROBABILITIES = 'probabilities'
CLASSES = 'classes'
IMAGE_INPUT = 'image_input'
KEEP_PROB = 'keep_prob'
LOGITS = 'logits'  # (pixels, C): the only output of runs from before `probabilities` existed
FROZEN = 'frozen_inference.pb'
FORMATS = ('frozen', 'saved_model', 'onnx', 'onnx-int8')
DEFAULT_FORMATS = FORMATS[:3]  # onnx-int8 (roadseg/quantize.py) changes the results: only when asked for
FILE_NAMES = {'frozen': FROZEN, 'saved_model': 'saved_model', 'onnx': 'model.onnx', 'onnx-int8': 'model-int8.onnx'}
ONNX_OPSET = 13
# op types that must not survive freezing: variables, their reads and writes, random draws
TRAINING_OPS = {'VariableV2', 'VarHandleOp', 'ReadVariableOp', 'Assign', 'AssignVariableOp', 'RandomUniform',
                'RandomUniformInt', 'RandomStandardNormal', 'TruncatedNormal'}


def add_inference_outputs(output, num_classes):
    """`probabilities` (N, H, W, C) float32 softmax and `classes` (N, H, W) uint8 argmax of the (N, H, W, C)
    logits `output`, added once to its graph at the top-level name scope; returns (probabilities, classes)."""
    graph = output.graph
    try:
        return graph.get_tensor_by_name(PROBABILITIES + ':0'), graph.get_tensor_by_name(CLASSES + ':0')
    except KeyError:
        pass
    with graph.as_default(), graph.name_scope(None):
        probabilities = tf.nn.softmax(output, name=PROBABILITIES)
        probabilities.set_shape([None, None, None, num_classes])
        classes = tf.cast(tf.argmax(output, axis=-1), tf.uint8, name=CLASSES)
    return probabilities, classes


def inference_outputs(graph, source):
    """(probabilities, classes) of a trained graph; for older runs of this project, derived from their
    logits:0 (pixels, C) and image_input:0. source names the file in errors."""
    try:
        return graph.get_tensor_by_name(PROBABILITIES + ':0'), graph.get_tensor_by_name(CLASSES + ':0')
    except KeyError:
        pass
    try:
        logits = graph.get_tensor_by_name(LOGITS + ':0')
        image = graph.get_tensor_by_name(IMAGE_INPUT + ':0')
    except KeyError:
        raise InputError('{} has no {} output (nor {} and {} to derive it from): not a model of this project'
                         .format(source, PROBABILITIES, LOGITS, IMAGE_INPUT))
    num_classes = int(logits.shape[-1])
    with graph.as_default(), graph.name_scope(None):
        output = tf.reshape(logits, tf.concat([tf.shape(image)[:3], [num_classes]], 0))
    return add_inference_outputs(output, num_classes)


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


def find_checkpoint(path, which='best'):
    """Checkpoint prefix from a run folder (its best/ or last/ checkpoint), a checkpoint folder or a prefix.
    A run without best/ uses last/, with a note saying so."""
    if path is None:
        raise InputError('no checkpoint given: pass --checkpoint runs/<timestamp>')
    for folder in (os.path.join(path, which), os.path.join(path, 'last'), path):
        if os.path.isdir(folder):
            prefix = tf.train.latest_checkpoint(folder)
            if not prefix:  # a folder moved after training: its `checkpoint` file names the old place
                indexes = sorted((f for f in os.listdir(folder) if f.endswith('.index')),
                                 key=lambda f: os.path.getmtime(os.path.join(folder, f)))
                if indexes and os.path.exists(os.path.join(folder, indexes[-1][:-len('.index')] + '.meta')):
                    prefix = os.path.join(folder, indexes[-1][:-len('.index')])
            if prefix:
                if folder == os.path.join(path, 'last') and which != 'last':
                    print('note: {} has no {}/ checkpoint; using last/ ({})'.format(path, which, prefix))
                return prefix
    if os.path.exists(path + '.index') and os.path.exists(path + '.meta'):
        return path
    raise InputError('no checkpoint found at {} (expected a training run folder with best/ or last/)'
                     .format(path))


def run_folder(prefix):
    """The run folder of a checkpoint prefix: the parent of its best/ or last/ folder, else its own folder."""
    folder = os.path.dirname(os.path.abspath(prefix))
    return os.path.dirname(folder) if os.path.basename(folder) in ('best', 'last') else folder


def export_dir(prefix):
    """Where export_run writes checkpoint prefix's exports: RUN/export/, or RUN/export_last/ for a last/ one."""
    from_last = os.path.basename(os.path.dirname(os.path.abspath(prefix))) == 'last'
    return os.path.join(run_folder(prefix), 'export_last' if from_last else 'export')


def read_image_shape(run_dir):
    """(height, width) the run was trained at, from its config.json; InputError if it is missing or broken."""
    path = os.path.join(run_dir, 'config.json')
    try:
        with open(path) as f:
            height, width = json.load(f)['image_shape']
    except FileNotFoundError:
        raise InputError('{} not found: the run\'s config.json gives the image size the model was trained at'
                         .format(path))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError('{}: no readable image_shape ({})'.format(path, first_line(e)))
    return int(height), int(width)


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
    """ONNX model at path, converted by tf2onnx from a frozen graph and checked by onnx.checker.
    Input `image_input` float32 (N, H, W, 3) RGB 0..255 at the training size; outputs `probabilities`
    (N, H, W, C) float32 and `classes` (N, H, W) uint8."""
    tf2onnx, onnx = _onnx_modules()
    names = {IMAGE_INPUT + ':0': IMAGE_INPUT, PROBABILITIES + ':0': PROBABILITIES, CLASSES + ':0': CLASSES}
    model, _ = tf2onnx.convert.from_graph_def(graph_def, name='fcn8s', input_names=[IMAGE_INPUT + ':0'],
                                              output_names=[PROBABILITIES + ':0', CLASSES + ':0'],
                                              opset=opset, tensors_to_rename=names)
    onnx.checker.check_model(model)
    write_bytes_atomic(path, model.SerializeToString())
    return path

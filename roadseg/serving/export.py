"""Export a trained run for deployment: the frozen inference graph, a serving SavedModel, an ONNX model.

Everything starts from the trained graph itself (the checkpoint's .meta or the live training session),
whatever encoder it was built on: its `probabilities` and its task's decision output (`classes` or the task's
own, heads.output_names) are frozen (model/freeze.py) with every variable a constant and the encoder's keep_prob
fixed to 1. Loading any of these files runs the graph it holds: load only models you trust.
"""
import os
import shutil
import tempfile

from ..model.freeze import freeze
from ..model.heads import output_names
from ..model.names import IMAGE_INPUT, PROBABILITIES
from ..runs import TrainedRun
from ..system.crossstack import meta_graph_writer, missing_in_this_tensorflow, not_loadable
from ..system.files import InputError, check_writable_dir, first_line, write_bytes_atomic
from ..system.tfcompat import tf
from . import onnx_backend, quantize
from .layout import DEFAULT_FORMATS, FILE_NAMES, FORMATS

ONNX_OPSET = 13


def freeze_checkpoint(prefix, image_shape, task):
    """Frozen GraphDef (see freeze) of a checkpoint of task: its own .meta graph, restored in a private tf.Graph."""
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        try:
            saver = tf.train.import_meta_graph(prefix + '.meta', clear_devices=True)
            saver.restore(sess, prefix)
        except (KeyError, ValueError, OSError, tf.errors.OpError) as e:
            if missing_in_this_tensorflow(e):
                raise not_loadable(prefix + '.meta', e, meta_graph_writer(prefix + '.meta'),
                                   'use the run with that TensorFlow, or train from its weights here with '
                                   '--init-from {}'.format(TrainedRun(prefix).path))
            raise InputError('cannot load checkpoint {}: {}'.format(prefix, first_line(e)))
        return freeze(sess, task, image_shape, source=prefix + '.meta')


def export_run(run, formats=DEFAULT_FORMATS, which='best', data_dir=None, calibration_images=None):
    """Export a run's checkpoint into RUN/export/ (best) or RUN/export_last/ (last), one file or folder per
    format: frozen_inference.pb, saved_model/, model.onnx, model-int8.onnx (from model.onnx, written too when
    it is missing or stale; calibrated on calibration_images training images of data_dir, default the run's;
    see serving/quantize.py; evaluation/int8.py measures its accuracy). run: a runs.TrainedRun, or a path to
    one with which. Returns {format: path}. When tf2onnx cannot convert an op of the model, the other formats
    are still written and the InputError names the op and what was written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InputError('--format must be among {}, got {}'.format(', '.join(FORMATS), ' '.join(formats)))
    if 'onnx' in formats or 'onnx-int8' in formats:
        _onnx_modules()  # fail before any work when the converter is missing
    run = TrainedRun.of(run, which)
    if 'onnx-int8' in formats:
        quantize.tools()  # fail before any work when ONNX Runtime cannot quantize
        try:
            onnx_backend.current_export(run)
        except InputError:  # int8 starts from a current model.onnx
            formats = tuple(formats) + ('onnx',)
    task = run.task()
    graph_def = freeze_checkpoint(run.checkpoint, run.image_shape, task)
    check_writable_dir(run.export_dir, 'export folder')
    writers = {'frozen': lambda path: write_bytes_atomic(path, graph_def.SerializeToString()),
               'saved_model': lambda path: write_saved_model(graph_def, run.image_shape, path, task),
               'onnx': lambda path: write_onnx(graph_def, path, task),
               'onnx-int8': lambda path: quantize.export_int8(run, path, data_dir, calibration_images)}
    written, failed = {}, None
    for fmt in FORMATS:
        if fmt in formats and not (failed and fmt == 'onnx-int8'):  # int8 starts from model.onnx
            try:
                writers[fmt](os.path.join(run.export_dir, FILE_NAMES[fmt]))
            except InputError as e:
                if fmt != 'onnx':
                    raise
                failed = e
                continue
            written[fmt] = os.path.join(run.export_dir, FILE_NAMES[fmt])
    if failed:
        raise InputError('{}{}'.format(failed, '; written: ' + ', '.join(written.values()) if written else ''))
    return written


def _resize(images, size):
    """Bilinear resize with antialiasing of float (N, H, W, C) to size (h, w), as PIL resizes for training."""
    import tensorflow.compat.v2 as tf2
    return tf2.image.resize(images, size, method='bilinear', antialias=True)


def write_saved_model(graph_def, image_shape, path, task):
    """A SavedModel (tag serve) at path whose `serving_default` signature takes `images` uint8 (N, H, W, 3)
    RGB of any size and returns `probabilities` float32 (N, H, W, C) and task's decision (`classes` uint8
    (N, H, W), or the task's own) at that size (resized to image_shape for the network and back, inside the
    graph). Built beside path, then renamed."""
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
            decision = tf.identity(task.decide_op(probabilities), name=task.decision)
            signature = tf.saved_model.signature_def_utils.predict_signature_def(
                {'images': images}, {PROBABILITIES: probabilities, task.decision: decision})
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


def write_onnx(graph_def, path, task, opset=ONNX_OPSET):
    """ONNX model at path (roadseg/serving/onnx_export.py) of a frozen graph of task, checked by onnx.checker.
    Input `image_input` float32 (N, H, W, 3) RGB 0..255 at the training size; outputs `probabilities`
    (N, H, W, C) float32 and the task's decision (`classes` (N, H, W) uint8, or the task's own). InputError
    naming the op when tf2onnx leaves one unconverted."""
    from .onnx_export import to_onnx
    tf2onnx, onnx = _onnx_modules()
    model = to_onnx(graph_def, opset, output_names(task))
    unconverted = sorted({n.op_type for n in model.graph.node if n.domain in ('', 'ai.onnx') and
                          not onnx.defs.has(n.op_type)})
    if unconverted:
        raise InputError('tf2onnx {} cannot convert TensorFlow op {} to ONNX: no model.onnx'.format(
            tf2onnx.__version__, ', '.join(unconverted)))
    onnx.checker.check_model(model)
    write_bytes_atomic(path, model.SerializeToString())
    return path

"""Graphs that load in both TensorFlow stacks (1.15 and 2.x), and one-line errors for those that cannot.

TensorFlow's own means for a newer writer and an older reader is to leave out every attr at its default
value (strip_default_attrs): attrs added to an op since come with defaults, so the older reader meets none it
does not know. Stripping cannot help with an op the reader lacks or a new attr set to another value, such as
the debug_name every TF 2.x resource variable carries (VarHandleOp); graphs written here therefore hold
reference variables on both stacks (roadseg/model/vgg.py). docs/cross-stack.md says what crosses.
"""
import re

from .files import InputError, first_line
from .tfcompat import tf

_MISSING = ((re.compile(r"attr '([^']+)' not in Op<name=([^;>]+)"), "{1}'s attr '{0}'"),
            (re.compile(r"Op type not registered '([^']+)'"), "op '{0}'"))


def strip_default_attrs(graph_def):
    """A copy of graph_def without the attrs that hold their op's default value (the stripping
    Saver.save and the SavedModel builder do with strip_default_attrs=True)."""
    with tf.Graph().as_default():
        return tf.train.export_meta_graph(graph_def=graph_def, strip_default_attrs=True).graph_def


def missing_in_this_tensorflow(exc):
    """"VarHandleOp's attr 'debug_name'" or "op 'Foo'" when exc is TensorFlow refusing a graph for an attr
    or op it does not know, else None."""
    for pattern, what in _MISSING:
        found = pattern.search(str(exc))
        if found:
            return what.format(*found.groups())
    return None


def meta_graph_writer(path):
    """'TensorFlow 2.21.0': the version that wrote a .meta file or a SavedModel's saved_model.pb
    ('an unknown TensorFlow' when the file does not say)."""
    from tensorflow.core.protobuf import saved_model_pb2  # after tfcompat: TensorFlow imported quietly
    saved_model = path.endswith('saved_model.pb')
    proto = saved_model_pb2.SavedModel() if saved_model else tf.MetaGraphDef()
    try:
        with open(path, 'rb') as f:
            proto.ParseFromString(f.read())
    except Exception:  # OSError, or protobuf's DecodeError: the loader's own error says more
        return 'an unknown TensorFlow'
    metas = proto.meta_graphs if saved_model else [proto]
    version = metas[0].meta_info_def.tensorflow_version if metas else ''
    return 'TensorFlow ' + version if version else 'an unknown TensorFlow'


def graph_def_writer(graph_def):
    """Who wrote a GraphDef, as far as it says: only its GraphDef version (TensorFlow 1.15 writes 134)."""
    producer, ours = graph_def.versions.producer, tf.version.GRAPH_DEF_VERSION
    return '{} TensorFlow (GraphDef version {}; this one has {})'.format(
        'a newer' if producer > ours else 'another', producer, ours)


def not_loadable(path, exc, writer, advice):
    """InputError for TensorFlow refusing the graph in path: the op or attr this TensorFlow lacks, who wrote
    the file, this TensorFlow's version and `advice`; TensorFlow's own first line when it is something else."""
    missing = missing_in_this_tensorflow(exc)
    if missing is None:
        return InputError('cannot load {}: {}'.format(path, first_line(exc)))
    return InputError('{} was written by {} and holds {}, which TensorFlow {} does not have: {}'.format(
        path, writer, missing, tf.__version__, advice))


def check_graph_def(graph_def, path, advice):
    """InputError (not_loadable) unless this TensorFlow can import graph_def. Checked by importing it with
    every constant replaced by a placeholder of its type and shape, so the weights are not copied."""
    skeleton = tf.GraphDef()
    skeleton.versions.CopyFrom(graph_def.versions)
    skeleton.library.CopyFrom(graph_def.library)
    for node in graph_def.node:
        if node.op == 'Const':
            value = node.attr['value'].tensor
            stand_in = skeleton.node.add(name=node.name, op='Placeholder', input=node.input)
            stand_in.attr['dtype'].type = value.dtype
            stand_in.attr['shape'].shape.CopyFrom(value.tensor_shape)
        else:
            skeleton.node.add().CopyFrom(node)
    try:
        with tf.Graph().as_default():
            tf.import_graph_def(skeleton, name='')
    except (ValueError, tf.errors.NotFoundError) as e:  # an attr, an op this TensorFlow does not know
        raise not_loadable(path, e, graph_def_writer(graph_def), advice)

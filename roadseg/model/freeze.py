"""A trained graph frozen for inference: every variable a constant, keep_prob 1, its `probabilities` and
`classes` outputs kept (the run's best/frozen_inference.pb, and what --export starts from)."""
from ..system.crossstack import check_graph_def, strip_default_attrs
from ..system.files import InputError, first_line, write_bytes_atomic
from ..system.tfcompat import tf
from .heads import inference_outputs
from .names import CLASSES, IMAGE_INPUT, KEEP_PROB, PROBABILITIES

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

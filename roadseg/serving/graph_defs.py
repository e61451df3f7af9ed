"""Reading and writing the nodes of a frozen GraphDef (roadseg/serving/onnx_graph.py, channel_flip.py)."""
from ..system.tfcompat import tf


def node_name(ref):
    """Node name of an input reference ('x', 'x:0', '^x')."""
    return ref.lstrip('^').split(':')[0]


def const_node(name, value):
    """A Const NodeDef holding numpy value."""
    node = tf.NodeDef(name=name, op='Const')
    node.attr['dtype'].type = tf.as_dtype(value.dtype).as_datatype_enum
    node.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(value))
    return node


def static_shapes(graph_def):
    """({node name: its single output's static shape as a list, None for unknown dims; None for an unknown
    rank}, for single-output nodes only)."""
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name='')
    shapes = {}
    for op in graph.get_operations():
        if len(op.outputs) == 1:
            shape = tf.TensorShape(op.outputs[0].shape)
            shapes[op.name] = None if shape.ndims is None else shape.as_list()
    return shapes

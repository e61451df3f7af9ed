"""The channel flip of a frozen graph in ops every ONNX client has (roadseg/serving/onnx_graph.py calls it).

tf2onnx converts the BGR channel flip of the VGG input (tf.reverse of the last axis) into ReverseSequence, an op
OpenCV's importer lacks. A reverse of the channel axis feeding per-channel constant arithmetic and then
convolutions with constant kernels (VGG's BGR flip, mean subtraction, conv1_1) is folded into those constants:
the permutation is applied to the mean and to the kernels' input channels, which is exact. Any other channel
reverse becomes a Gather of the reversed channel indices.
"""
import numpy as np

from ..system.tfcompat import tf
from .graph_defs import const_node, node_name, static_shapes

PER_CHANNEL = {'Sub', 'Add', 'AddV2', 'Mul', 'RealDiv', 'BiasAdd'}


def _const_behind(nodes, ref):
    """The Const node ref reads, through Identity nodes, or None."""
    node = nodes.get(node_name(ref))
    while node is not None and node.op == 'Identity':
        node = nodes.get(node_name(node.input[0]))
    return node if node is not None and node.op == 'Const' else None


def _flip_path(nodes, consumers, shapes, name, channels, path):
    """True when every use of name's output is per-channel constant arithmetic (or Identity) leading only to
    NHWC convolutions with constant kernels; those nodes are added to path {node name: the input it takes}."""
    uses = consumers.get(name, [])
    if not uses:
        return False  # a graph output: the flipped tensor itself is wanted
    for node, index in uses:
        if node.op == 'Conv2D':
            if index != 0 or node.attr['data_format'].s not in (b'', b'NHWC') or \
                    _const_behind(nodes, node.input[1]) is None:
                return False
            path[node.name] = index
            continue
        if node.op not in PER_CHANNEL | {'Identity'} or shapes.get(node.name) != shapes.get(name) or \
                (node.op == 'BiasAdd' and index != 0):
            return False
        if node.op != 'Identity':
            const = _const_behind(nodes, node.input[1 - index])
            dims = None if const is None else [d.size for d in const.attr['value'].tensor.tensor_shape.dim]
            if dims is None or len(dims) > 4 or (dims and dims[-1] not in (1, channels)):
                return False
        path[node.name] = index
        if not _flip_path(nodes, consumers, shapes, node.name, channels, path):
            return False
    return True


def _unflipped_inputs(nodes, node, index, source, channels):
    """(node's inputs with the flipped tensor replaced by source and its constant permuted, the new Const or
    None): a Conv2D's kernel along its input channels, a per-channel operand along its last axis."""
    inputs = list(node.input)
    inputs[index] = source
    if node.op == 'Identity':
        return inputs, None
    other = 1 - index
    value = tf.make_ndarray(_const_behind(nodes, inputs[other]).attr['value'].tensor)
    axis = 2 if node.op == 'Conv2D' else -1
    if not value.ndim or value.shape[axis] != channels:
        return inputs, None
    const = const_node(node.name + '/channels_reversed', np.ascontiguousarray(np.flip(value, axis)))
    inputs[other] = const.name
    return inputs, const


def _gather_channels(node, channels, rank):
    """GatherV2 nodes (the gather named like node, then its constants) taking the last axis in reverse."""
    indices = const_node(node.name + '/indices', np.arange(channels - 1, -1, -1, dtype=np.int32))
    axis = const_node(node.name + '/axis', np.array(rank - 1, np.int32))
    gather = tf.NodeDef(name=node.name, op='GatherV2', input=[node.input[0], indices.name, axis.name])
    gather.attr['Tparams'].CopyFrom(node.attr['T'])
    gather.attr['Tindices'].type = tf.int32.as_datatype_enum
    gather.attr['Taxis'].type = tf.int32.as_datatype_enum
    return [gather, indices, axis]


def fold_channel_flips(graph_def, outputs):
    """graph_def with each reverse of the last axis folded into the constants it meets (see the module
    docstring), or else replaced by a Gather of the channels in reverse order."""
    nodes = {n.name: n for n in graph_def.node}
    shapes = static_shapes(graph_def)
    consumers = {}
    for node in graph_def.node:
        for i, ref in enumerate(node.input):
            if not ref.startswith('^'):
                consumers.setdefault(node_name(ref), []).append((node, i))
    replaced, added = {}, []
    for node in graph_def.node:
        axis = _const_behind(nodes, node.input[1]) if node.op == 'ReverseV2' else None
        shape = shapes.get(node.name)
        if axis is None or shape is None or shape[-1] is None:
            continue
        if [int(a) for a in np.ravel(tf.make_ndarray(axis.attr['value'].tensor))] not in ([-1], [len(shape) - 1]):
            continue
        path = {}
        if node.name in outputs or not _flip_path(nodes, consumers, shapes, node.name, shape[-1], path):
            gather = _gather_channels(node, shape[-1], len(shape))
            replaced[node.name] = gather[0]
            added += gather[1:]
            continue
        for name, index in path.items():
            source = node.input[0] if node_name(nodes[name].input[index]) == node.name else nodes[name].input[index]
            inputs, const = _unflipped_inputs(nodes, nodes[name], index, source, shape[-1])
            replaced[name] = tf.NodeDef()
            replaced[name].CopyFrom(nodes[name])
            replaced[name].input[:] = inputs
            added += [const] if const is not None else []
    out = tf.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    out.node.extend([replaced.get(n.name, n) for n in graph_def.node] + added)
    return tf.graph_util.extract_sub_graph(out, outputs)
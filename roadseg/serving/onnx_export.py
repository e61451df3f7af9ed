"""A frozen graph to the ONNX model that ONNX Runtime and OpenCV's DNN module both run (tf2onnx, opset 13).

The graph is first made plain at the training size (roadseg/serving/onnx_graph.py: shapes folded, dropout
and the channel flip gone), so tf2onnx emits Conv, Relu, MaxPool, ConvTranspose with fixed pads and Add, with
one Transpose at the input and one at the output (the model keeps the frozen graph's NHWC interface). The batch,
pinned for that, is made symbolic (`N`) again; ONNX's shape inference must carry `N` to every output, else
(a graph that computes with the batch, such as a run from before `probabilities` existed) the model is
converted as it is, with the batch left dynamic in the graph and only the channel flip replaced.
"""
import numpy as np

from ..model.names import CLASSES, IMAGE_INPUT, PROBABILITIES
from . import onnx_graph

BATCH = 'N'


def _image_size(graph_def):
    """(H, W) of the graph's image input, or None when either is unknown."""
    for node in graph_def.node:
        if node.name == IMAGE_INPUT and node.attr['shape'].shape.dim:
            dims = [d.size for d in node.attr['shape'].shape.dim]
            if len(dims) == 4 and dims[1] > 0 and dims[2] > 0:
                return dims[1], dims[2]
    return None


def _convert(graph_def, opset, outputs):
    import tf2onnx
    names = dict({IMAGE_INPUT + ':0': IMAGE_INPUT}, **{name + ':0': name for name in outputs})
    model, _ = tf2onnx.convert.from_graph_def(graph_def, name='fcn8s', input_names=[IMAGE_INPUT + ':0'],
                                              output_names=[name + ':0' for name in outputs],
                                              opset=opset, tensors_to_rename=names)
    return model


def without_full_slices(model):
    """model with the axes a Slice takes whole (start 0, end past any size, step 1) left out of it, as tf2onnx
    writes them for a crop of H and W only: ONNX's shape inference loses the batch's name on them. In place."""
    from onnx import numpy_helper
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != 'Slice' or len(node.input) < 4 or not all(i in constants for i in node.input[1:]):
            continue
        starts, ends, axes = (constants[i] for i in node.input[1:4])
        steps = constants[node.input[4]] if len(node.input) > 4 else np.ones_like(starts)
        keep = ~((starts == 0) & (ends >= np.iinfo(np.int32).max) & (steps == 1))
        if keep.all() or not keep.any():
            continue
        names = [node.name + suffix for suffix in ('/starts', '/ends', '/axes', '/steps')]
        for name, value in zip(names, (starts, ends, axes, steps)):
            model.graph.initializer.extend([numpy_helper.from_array(value[keep], name)])
        node.input[1:] = names
    used = {i for node in model.graph.node for i in node.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def with_symbolic_batch(model):
    """A copy of model with dimension 0 of its inputs and outputs named BATCH and no recorded intermediate
    shapes, or None when ONNX's shape inference does not carry BATCH through to every output."""
    import onnx
    model = without_full_slices(_copy(model))
    graph = model.graph
    del graph.value_info[:]
    for value in list(graph.input) + list(graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = BATCH
    declared = {o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim] for o in graph.output}
    for value in graph.output:
        value.type.tensor_type.ClearField('shape')
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception:  # onnx's InferenceError (its class moved between releases)
        return None
    found = {o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim]
             for o in inferred.graph.output}
    if found != declared:
        return None
    del inferred.graph.value_info[:]
    return inferred


def _copy(model):
    import onnx
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def channels_last_heads(model):
    """model with tf2onnx's tail, Softmax and ArgMax over axis 1 of the NCHW logits and then a Transpose of
    the probabilities to NHWC, turned into one Transpose of the logits and both over the last axis (ONNX
    Runtime runs a Softmax over any other axis between two transposes of its own). Changed in place."""
    graph = model.graph
    nodes = list(graph.node)
    outputs = {o.name for o in graph.output}
    users = {}
    for node in nodes:
        for name in node.input:
            users.setdefault(name, []).append(node)
    for softmax in [n for n in nodes if n.op_type == 'Softmax']:
        after = users.get(softmax.output[0], [])
        if len(after) != 1 or after[0].op_type != 'Transpose' or after[0].output[0] not in outputs or \
                list(_attr(after[0], 'perm')) != [0, 2, 3, 1] or _attr(softmax, 'axis') not in (1, -3):
            continue
        transpose, logits = after[0], softmax.input[0]
        argmaxes = [n for n in users[logits] if n.op_type == 'ArgMax' and _attr(n, 'axis') in (1, -3)]
        if len(users[logits]) != 1 + len(argmaxes):
            continue
        nhwc = logits + '_nhwc'
        probabilities = transpose.output[0]
        transpose.input[:], transpose.output[:] = [logits], [nhwc]
        softmax.input[:], softmax.output[:] = [nhwc], [probabilities]
        for node in [softmax] + argmaxes:
            _set_attr(node, 'axis', 3)
            node.input[0] = nhwc
        graph.node.remove(transpose)
        graph.node.insert(min(list(graph.node).index(n) for n in [softmax] + argmaxes), transpose)
    return model


def _attr(node, name):
    import onnx
    found = [onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name]
    return found[0] if found else None


def _set_attr(node, name, value):
    import onnx
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept + [onnx.helper.make_attribute(name, value)])


def to_onnx(graph_def, opset, outputs=(PROBABILITIES, CLASSES)):
    """ONNX ModelProto of a frozen graph (input image_input (N, H, W, 3), outputs: probabilities and the run's
    task's decision, heads.output_names; roadseg/serving/export.py): the plain graph when it stays
    batch-independent, else the graph as it is."""
    outputs = list(outputs)
    size = _image_size(graph_def)
    if size is not None:
        plain = onnx_graph.plain_graph(graph_def, IMAGE_INPUT, size, outputs)
        model = with_symbolic_batch(_convert(plain, opset, outputs))
        if model is not None:
            return channels_last_heads(model)
    return _convert(onnx_graph.fold_channel_flips(graph_def, outputs), opset, outputs)

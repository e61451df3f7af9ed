"""A frozen graph to the ONNX model that ONNX Runtime and OpenCV's DNN module both run (tf2onnx, opset 13).

The graph is first made plain at the training size (roadseg/serving/onnx_graph.py: shapes folded, dropout
and the channel flip gone), so tf2onnx emits Conv, Relu, MaxPool, ConvTranspose with fixed pads and Add, with
one Transpose at the input and one at the output (the model keeps the frozen graph's NHWC interface). The batch,
pinned for that, is made symbolic (`N`) again; ONNX's shape inference must carry `N` to every output, else
(a graph that computes with the batch, such as a run from before `probabilities` existed) the model is
converted as it is, with the batch left dynamic in the graph and only the channel flip replaced.

Two ops tf2onnx writes are rewritten into forms ONNX Runtime runs as fast as the rest (for_onnxruntime): the
Softmax over the class axis of the NCHW logits, and the (3,) mean subtracted from the NHWC input.
"""
import numpy as np

from ..model.names import CLASSES, IMAGE_INPUT, PROBABILITIES
from . import channel_flip, onnx_graph

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
    return _without_unused_initializers(model)


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


def softmax_as_elementwise(model, opset):
    """model with each Softmax (opset 13+: over one axis) written as ReduceMax, Sub, Exp, ReduceSum and Div over
    that axis: the same function within float rounding, in ops every client has. ONNX Runtime runs a Softmax
    over any axis but the last between two transposes of its own and a short last axis row by row, each row a
    call: on FCN-8s's (N, C, H, W) logits with C = 2 that cost more than the rest of the graph after the
    convolutions; the elementwise form is a few vectorised passes. Changed in place."""
    import onnx
    from onnx import numpy_helper
    if opset < 13:  # before 13 a Softmax flattens every axis from `axis` on
        return model
    graph = model.graph
    for softmax in [n for n in graph.node if n.op_type == 'Softmax']:
        x, y, name = softmax.input[0], softmax.output[0], softmax.name or softmax.output[0]
        axis = _attr(softmax, 'axis')
        axis = -1 if axis is None else axis
        axes = numpy_helper.from_array(np.array([axis], np.int64), name + '/axes')
        graph.initializer.extend([axes])
        make = onnx.helper.make_node
        reduce_max = make('ReduceMax', [x, axes.name], [y + '/max'], name=name + '/max', keepdims=1) if opset >= 18 \
            else make('ReduceMax', [x], [y + '/max'], name=name + '/max', keepdims=1, axes=[axis])
        nodes = [reduce_max,
                 make('Sub', [x, y + '/max'], [y + '/shifted'], name=name + '/shifted'),
                 make('Exp', [y + '/shifted'], [y + '/exp'], name=name + '/exp'),
                 make('ReduceSum', [y + '/exp', axes.name], [y + '/sum'], name=name + '/sum', keepdims=1),
                 make('Div', [y + '/exp', y + '/sum'], [y], name=name)]
        index = list(graph.node).index(softmax)
        graph.node.remove(softmax)
        for offset, node in enumerate(nodes):
            graph.node.insert(index + offset, node)
    return model


def channel_constants_as_rows(model):
    """model with each constant vector (C,) that an Add, Sub, Mul or Div applies to a graph input (N, H, W, C) of
    known W (the mean subtracted from image_input) widened to a row (W, C) of the same values. ONNX Runtime
    broadcasts the smaller operand one repeat at a time: a row of W*C values per call instead of C = 3. Changed
    in place; constants no node uses any more are dropped."""
    from onnx import numpy_helper
    graph = model.graph
    widths = {}
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[2].dim_value > 0 and dims[3].dim_value > 0:
            widths[value.name] = dims[2].dim_value, dims[3].dim_value
    constants = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type not in ('Add', 'Sub', 'Mul', 'Div') or len(node.input) != 2:
            continue
        for data, other in ((0, 1), (1, 0)):
            if node.input[data] not in widths or node.input[other] not in constants:
                continue
            width, channels = widths[node.input[data]]
            value = numpy_helper.to_array(constants[node.input[other]])
            if not 1 <= value.ndim <= 4 or value.size != channels or value.shape[-1] != channels:
                continue
            row = np.ascontiguousarray(np.broadcast_to(value.reshape(channels), (width, channels)))
            row = numpy_helper.from_array(row, node.input[other] + '/row')
            if row.name not in constants:
                graph.initializer.extend([row])
                constants[row.name] = row
            node.input[other] = row.name
    return _without_unused_initializers(model)


def _without_unused_initializers(model):
    used = {i for node in model.graph.node for i in node.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def _attr(node, name):
    import onnx
    found = [onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name]
    return found[0] if found else None


def for_onnxruntime(model, opset):
    """model with the softmax and the input's per-channel constants in the forms ONNX Runtime runs fast
    (softmax_as_elementwise, channel_constants_as_rows); the same function for every client. In place."""
    return channel_constants_as_rows(softmax_as_elementwise(model, opset))


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
            return for_onnxruntime(model, opset)
    return for_onnxruntime(_convert(channel_flip.fold_channel_flips(graph_def, outputs), opset, outputs), opset)

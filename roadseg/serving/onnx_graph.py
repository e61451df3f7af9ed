"""The frozen inference graph made plain for ONNX clients (ONNX Runtime, OpenCV's DNN module and the like).

A frozen graph still computes at run time what the training size fixes: tensor shapes for the transposed
convolutions and the crop, and keep_prob's dropout (a zero draw that keeps everything, roadseg/model/freeze.py).
tf2onnx turns that into Shape/Slice/Pad/Where chains, and the BGR channel flip of the VGG input (tf.reverse)
into ReverseSequence, an op OpenCV's importer lacks. plain_graph() returns the same function without them:

- at the training size with a batch of PIN_BATCH, every shape is a constant; what only shapes and constants
  feed is folded (small results only: weights stay as they are), and so is a constant fill used where a
  scalar broadcasts to the same shape (the zero draw);
- an op that passes one input through unchanged (x*1, x/1, x+0, x-0, a select on a constant condition) is
  bypassed when that input already has the output's shape;
- a reverse of the channel axis feeding per-channel constant arithmetic and then convolutions with constant
  kernels (VGG's BGR flip, mean subtraction, conv1_1) is folded into those constants: the permutation is
  applied to the mean and to the kernels' input channels, which is exact; any other channel reverse becomes
  a Gather of the reversed channel indices.
The batch is pinned only to give shapes a value; roadseg/serving/onnx_export.py frees it again in the ONNX model.
"""
import numpy as np

from ..system.tfcompat import tf

PIN_BATCH = 2  # not 1: converters turn a transpose that moves only size-1 axes into a reshape of that batch
FOLD_LIMIT = 4096  # elements: results up to this size are folded into constants (shapes, scalars, indices)
SHAPE_OPS = ('Shape', 'Size', 'Rank')
ELEMENTWISE = {'Add', 'AddV2', 'Sub', 'Mul', 'RealDiv', 'Div', 'Maximum', 'Minimum', 'Greater', 'GreaterEqual',
               'Less', 'LessEqual', 'Equal', 'NotEqual', 'LogicalAnd', 'LogicalOr', 'LogicalNot', 'Cast', 'Neg',
               'Floor', 'Select', 'SelectV2'}
STATEFUL = {'Placeholder', 'PlaceholderWithDefault', 'VariableV2', 'VarHandleOp', 'RandomUniform',
            'RandomStandardNormal', 'TruncatedNormal', 'RandomUniformInt'}
# op -> (its identity constant, the input positions that constant may take)
PASS_THROUGH = {'Mul': (1, (0, 1)), 'RealDiv': (1, (1,)), 'Div': (1, (1,)), 'Add': (0, (0, 1)),
                'AddV2': (0, (0, 1)), 'Sub': (0, (1,)), 'BiasAdd': (0, (1,))}
PER_CHANNEL = {'Sub', 'Add', 'AddV2', 'Mul', 'RealDiv', 'BiasAdd'}


def _name(ref):
    """Node name of an input reference ('x', 'x:0', '^x')."""
    return ref.lstrip('^').split(':')[0]


def _const(name, value):
    """A Const NodeDef holding numpy value."""
    node = tf.NodeDef(name=name, op='Const')
    node.attr['dtype'].type = tf.as_dtype(value.dtype).as_datatype_enum
    node.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(value))
    return node


def _static_shapes(graph_def):
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


def _pinned(graph_def, input_name, image_shape):
    """A copy of graph_def whose input takes (PIN_BATCH, H, W, 3)."""
    out = tf.GraphDef()
    out.CopyFrom(graph_def)
    for node in out.node:
        if node.name == input_name:
            node.attr['shape'].shape.CopyFrom(tf.TensorShape([PIN_BATCH] + list(image_shape) + [3]).as_proto())
    return out


def _evaluate(node, values):
    """Output 0 of node (a NodeDef) run on constant inputs (numpy arrays, in order)."""
    graph_def = tf.GraphDef()
    for i, value in enumerate(values):
        graph_def.node.extend([_const('in{}'.format(i), value)])
    copy = graph_def.node.add()
    copy.CopyFrom(node)
    copy.name = 'out'
    copy.attr.pop('_class', None)  # colocation with nodes not copied here
    copy.input[:] = ['in{}'.format(i) for i in range(len(values))]
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name='')
        with tf.Session(graph=graph) as sess:
            return sess.run('out:0')


class _Folder:
    """Values of the nodes that only shapes and constants feed, and the bypassable ops, in one forward pass."""

    def __init__(self, shapes, outputs):
        self.shapes = shapes
        self.outputs = set(outputs)  # kept as they are: their names are the model's outputs
        self.values = {}   # name -> numpy value broadcasting to the node's static shape
        self.alias = {}    # name -> the input reference it passes through

    def full(self, name):
        """True when the known value of name has its node's own static shape (not a broadcast scalar)."""
        return list(self.values[name].shape) == self.shapes.get(name)

    def ref(self, ref):
        """An input reference with bypassed nodes followed."""
        while _name(ref) in self.alias and not ref.startswith('^'):
            ref = self.alias[_name(ref)]
        return ref

    def visit(self, node):
        inputs = [self.ref(r) for r in node.input if not r.startswith('^')]
        known = all(_name(r) in self.values for r in inputs)  # only single-output nodes get values
        shape = self.shapes.get(node.name)
        if node.op == 'Const':
            size = np.prod(shape) if shape is not None and None not in shape else None
            if size is not None and size <= FOLD_LIMIT:
                self.values[node.name] = tf.make_ndarray(node.attr['value'].tensor)
        elif node.op in SHAPE_OPS:
            of = self.shapes.get(_name(inputs[0]))
            if of is not None and None not in of:
                value = {'Shape': of, 'Size': int(np.prod(of)), 'Rank': len(of)}[node.op]
                dtype = tf.as_dtype(node.attr['out_type'].type).as_numpy_dtype if 'out_type' in node.attr else np.int32
                self.values[node.name] = np.array(value, dtype)
        elif node.op == 'Identity' and known:
            self.values[node.name] = self.values[_name(inputs[0])]
        elif node.op == 'Fill' and known:
            self.values[node.name] = self.values[_name(inputs[1])]  # a scalar broadcast to the fill's shape
        elif known and inputs and node.name in self.shapes and node.op not in STATEFUL and \
                node.name not in self.outputs and not any(r.startswith('^') for r in node.input):
            self._fold(node, inputs, shape)
        if node.name not in self.values and node.name not in self.outputs:
            self._bypass(node, inputs, shape)

    def _fold(self, node, inputs, shape):
        values = [self.values[_name(r)] for r in inputs]
        if node.op in ELEMENTWISE or all(self.full(_name(r)) for r in inputs):
            value = _evaluate(node, values)
            if node.op in ELEMENTWISE or (shape is not None and list(value.shape) == shape):
                if value.size <= FOLD_LIMIT:
                    self.values[node.name] = value

    def _bypass(self, node, inputs, shape):
        if shape is None or None in shape:
            return
        if node.op in ('Select', 'SelectV2') and _name(inputs[0]) in self.values:
            cond = self.values[_name(inputs[0])]
            if cond.all() or not cond.any():
                self._alias_if_same_shape(node.name, inputs[1 if cond.all() else 2], shape)
        elif node.op in PASS_THROUGH:
            identity, positions = PASS_THROUGH[node.op]
            for i in positions:
                value = self.values.get(_name(inputs[i]))
                if value is not None and np.all(value == identity):
                    self._alias_if_same_shape(node.name, inputs[1 - i], shape)
                    return

    def _alias_if_same_shape(self, name, ref, shape):
        if self.shapes.get(_name(ref)) == shape:  # a single-output node: ref reads its output 0
            self.alias[name] = ref


def _topological(graph_def):
    """graph_def's nodes, each after its inputs."""
    nodes = {n.name: n for n in graph_def.node}
    order, state = [], {}
    for root in nodes:
        stack = [(root, False)]
        while stack:
            name, done = stack.pop()
            if done:
                state[name] = 2
                order.append(nodes[name])
                continue
            if state.get(name):
                continue
            state[name] = 1
            stack.append((name, True))
            stack.extend((_name(r), False) for r in nodes[name].input if _name(r) in nodes and not state.get(_name(r)))
    return order


def fold_static(graph_def, input_name, image_shape, outputs):
    """graph_def at (PIN_BATCH, H, W, 3) with its static computations folded and pass-through ops bypassed."""
    graph_def = _pinned(graph_def, input_name, image_shape)
    folder = _Folder(_static_shapes(graph_def), outputs)
    for node in _topological(graph_def):
        folder.visit(node)
    out = tf.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    for node in graph_def.node:
        if node.name in folder.alias:
            continue
        if node.name in folder.values and node.op not in ('Const', 'Identity') and folder.full(node.name):
            out.node.extend([_const(node.name, folder.values[node.name])])
            continue
        copy = out.node.add()
        copy.CopyFrom(node)
        copy.input[:] = [folder.ref(r) for r in node.input]
    return tf.graph_util.extract_sub_graph(out, outputs)


def _const_behind(nodes, ref):
    """The Const node ref reads, through Identity nodes, or None."""
    node = nodes.get(_name(ref))
    while node is not None and node.op == 'Identity':
        node = nodes.get(_name(node.input[0]))
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
    const = _const(node.name + '/channels_reversed', np.ascontiguousarray(np.flip(value, axis)))
    inputs[other] = const.name
    return inputs, const


def _gather_channels(node, channels, rank):
    """GatherV2 nodes (the gather named like node, then its constants) taking the last axis in reverse."""
    indices = _const(node.name + '/indices', np.arange(channels - 1, -1, -1, dtype=np.int32))
    axis = _const(node.name + '/axis', np.array(rank - 1, np.int32))
    gather = tf.NodeDef(name=node.name, op='GatherV2', input=[node.input[0], indices.name, axis.name])
    gather.attr['Tparams'].CopyFrom(node.attr['T'])
    gather.attr['Tindices'].type = tf.int32.as_datatype_enum
    gather.attr['Taxis'].type = tf.int32.as_datatype_enum
    return [gather, indices, axis]


def fold_channel_flips(graph_def, outputs):
    """graph_def with each reverse of the last axis folded into the constants it meets (see the module
    docstring), or else replaced by a Gather of the channels in reverse order."""
    nodes = {n.name: n for n in graph_def.node}
    shapes = _static_shapes(graph_def)
    consumers = {}
    for node in graph_def.node:
        for i, ref in enumerate(node.input):
            if not ref.startswith('^'):
                consumers.setdefault(_name(ref), []).append((node, i))
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
            source = node.input[0] if _name(nodes[name].input[index]) == node.name else nodes[name].input[index]
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


def plain_graph(graph_def, input_name, image_shape, outputs):
    """graph_def (frozen, input input_name) at batch PIN_BATCH and size image_shape (H, W), shapes folded,
    pass-through ops bypassed, channel flips folded; outputs: the node names to keep."""
    return fold_channel_flips(fold_static(graph_def, input_name, image_shape, outputs), outputs)

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
- the channel reverse is folded into the mean and conv1_1's kernel, or else becomes a Gather
  (roadseg/serving/channel_flip.py).
The batch is pinned only to give shapes a value; roadseg/serving/onnx_export.py frees it again in the ONNX model.
"""
import numpy as np

from ..system.tfcompat import tf
from .channel_flip import fold_channel_flips
from .graph_defs import const_node, node_name, static_shapes

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
        graph_def.node.extend([const_node('in{}'.format(i), value)])
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
        while node_name(ref) in self.alias and not ref.startswith('^'):
            ref = self.alias[node_name(ref)]
        return ref

    def visit(self, node):
        inputs = [self.ref(r) for r in node.input if not r.startswith('^')]
        known = all(node_name(r) in self.values for r in inputs)  # only single-output nodes get values
        shape = self.shapes.get(node.name)
        if node.op == 'Const':
            size = np.prod(shape) if shape is not None and None not in shape else None
            if size is not None and size <= FOLD_LIMIT:
                self.values[node.name] = tf.make_ndarray(node.attr['value'].tensor)
        elif node.op in SHAPE_OPS:
            of = self.shapes.get(node_name(inputs[0]))
            if of is not None and None not in of:
                value = {'Shape': of, 'Size': int(np.prod(of)), 'Rank': len(of)}[node.op]
                dtype = tf.as_dtype(node.attr['out_type'].type).as_numpy_dtype if 'out_type' in node.attr else np.int32
                self.values[node.name] = np.array(value, dtype)
        elif node.op == 'Identity' and known:
            self.values[node.name] = self.values[node_name(inputs[0])]
        elif node.op == 'Fill' and known:
            self.values[node.name] = self.values[node_name(inputs[1])]  # a scalar broadcast to the fill's shape
        elif known and inputs and node.name in self.shapes and node.op not in STATEFUL and \
                node.name not in self.outputs and not any(r.startswith('^') for r in node.input):
            self._fold(node, inputs, shape)
        if node.name not in self.values and node.name not in self.outputs:
            self._bypass(node, inputs, shape)

    def _fold(self, node, inputs, shape):
        values = [self.values[node_name(r)] for r in inputs]
        if node.op in ELEMENTWISE or all(self.full(node_name(r)) for r in inputs):
            value = _evaluate(node, values)
            if node.op in ELEMENTWISE or (shape is not None and list(value.shape) == shape):
                if value.size <= FOLD_LIMIT:
                    self.values[node.name] = value

    def _bypass(self, node, inputs, shape):
        if shape is None or None in shape:
            return
        if node.op in ('Select', 'SelectV2') and node_name(inputs[0]) in self.values:
            cond = self.values[node_name(inputs[0])]
            if cond.all() or not cond.any():
                self._alias_if_same_shape(node.name, inputs[1 if cond.all() else 2], shape)
        elif node.op in PASS_THROUGH:
            identity, positions = PASS_THROUGH[node.op]
            for i in positions:
                value = self.values.get(node_name(inputs[i]))
                if value is not None and np.all(value == identity):
                    self._alias_if_same_shape(node.name, inputs[1 - i], shape)
                    return

    def _alias_if_same_shape(self, name, ref, shape):
        if self.shapes.get(node_name(ref)) == shape:  # a single-output node: ref reads its output 0
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
            inputs = [node_name(r) for r in nodes[name].input]
            stack.extend((i, False) for i in inputs if i in nodes and not state.get(i))
    return order


def fold_static(graph_def, input_name, image_shape, outputs):
    """graph_def at (PIN_BATCH, H, W, 3) with its static computations folded and pass-through ops bypassed."""
    graph_def = _pinned(graph_def, input_name, image_shape)
    folder = _Folder(static_shapes(graph_def), outputs)
    for node in _topological(graph_def):
        folder.visit(node)
    out = tf.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    for node in graph_def.node:
        if node.name in folder.alias:
            continue
        if node.name in folder.values and node.op not in ('Const', 'Identity') and folder.full(node.name):
            out.node.extend([const_node(node.name, folder.values[node.name])])
            continue
        copy = out.node.add()
        copy.CopyFrom(node)
        copy.input[:] = [folder.ref(r) for r in node.input]
    return tf.graph_util.extract_sub_graph(out, outputs)


def plain_graph(graph_def, input_name, image_shape, outputs):
    """graph_def (frozen, input input_name) at batch PIN_BATCH and size image_shape (H, W), shapes folded,
    pass-through ops bypassed, channel flips folded; outputs: the node names to keep."""
    return fold_channel_flips(fold_static(graph_def, input_name, image_shape, outputs), outputs)

"""What a frozen inference graph (roadseg/serving/export.py freeze) costs: its parameters, and the FLOPs of one
image's forward pass (2 per multiply-add), counted on the graph itself so that every decoder is measured alike:
Conv2D at its output size, transposed convs (Conv2DBackpropInput) at their input size, MatMul. Pools, ReLUs,
additions, resizes and the pyramid pooling's weighted sums are left out (a few percent at most)."""
import numpy as np

from roadseg.model.heads import IMAGE_INPUT
from roadseg.model.names import WEIGHT_SUFFIXES
from roadseg.system.tfcompat import tf

COUNTED = ('Conv2D', 'Conv2DBackpropInput', 'MatMul')


def parameters(graph_def):
    """Number of weights the frozen graph uses (its variables, now constants)."""
    return sum(int(np.prod([d.size for d in n.attr['value'].tensor.tensor_shape.dim]))
               for n in graph_def.node if n.op == 'Const' and n.name.endswith(WEIGHT_SUFFIXES))


def _op_flops(op, shapes):
    if op.type == 'Conv2D':
        _, kernel, out = shapes
        return 2 * out[1] * out[2] * np.prod(kernel)
    if op.type == 'Conv2DBackpropInput':
        _, kernel, grad, _ = shapes
        return 2 * grad[1] * grad[2] * np.prod(kernel)
    a, _, out = shapes
    return 2 * np.prod(out) * (a[0] if op.get_attr('transpose_a') else a[1])


def forward_flops(graph_def, height, width):
    """FLOPs of the frozen graph's forward pass on one height x width image."""
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        image = tf.placeholder(tf.float32, [1, height, width, 3])
        tf.import_graph_def(graph_def, {IMAGE_INPUT + ':0': image}, name='')
        ops = [op for op in graph.get_operations() if op.type in COUNTED]
        shapes = sess.run([[tf.shape(t) for t in list(op.inputs) + op.outputs[:1]] for op in ops],
                          {image: np.zeros((1, height, width, 3), np.float32)})
    return int(sum(_op_flops(op, s) for op, s in zip(ops, shapes)))

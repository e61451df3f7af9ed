"""The model's output heads and the one list of its tensor names.

The encoder SavedModel takes `image_input` (float32 (N, H, W, 3) RGB 0..255) and `keep_prob` and gives
`layer3_out`, `layer4_out`, `layer7_out`; the decoder's output is `fcn_output` (N, H, W, C) logits (Udacity's
optimize reshapes it to `logits` (pixels, C)); the heads added here are `probabilities` (the run's task's
activation: softmax or sigmoid) and its decision (`classes`, the argmax, or the task's own name, roadseg/task.py).
Frozen graphs, the SavedModel and the ONNX model keep these names.
"""
from ..system.files import InputError
from ..system.tfcompat import tf

IMAGE_INPUT = 'image_input'
KEEP_PROB = 'keep_prob'
ENCODER_OUTPUTS = ('layer3_out', 'layer4_out', 'layer7_out')
VGG_TENSORS = tuple(name + ':0' for name in (IMAGE_INPUT, KEEP_PROB) + ENCODER_OUTPUTS)  # load_vgg's five, in order
VGG_SOURCE = 'vgg_source'  # string constant naming the encoder's weights
DECODER_OUTPUT = 'fcn_output'
LOGITS = 'logits'  # (pixels, C): the only output of runs from before `probabilities` existed
PROBABILITIES = 'probabilities'
CLASSES = 'classes'  # the softmax tasks' decision


def tensor(graph, name):
    """graph's tensor `name`:0."""
    return graph.get_tensor_by_name(name + ':0')


def output_names(task):
    """The inference outputs of a run of task: [probabilities, its decision]."""
    return [PROBABILITIES, task.decision]


def add_inference_outputs(output, task):
    """`probabilities` (N, H, W, C) float32 (task.activate) and the decision (task.decide_op, named
    task.decision) of the (N, H, W, C) logits `output`, added once to its graph at the top-level name scope;
    returns (probabilities, decision)."""
    graph = output.graph
    try:
        return tensor(graph, PROBABILITIES), tensor(graph, task.decision)
    except KeyError:
        pass
    with graph.as_default(), graph.name_scope(None):
        probabilities = tf.identity(task.activate(output), name=PROBABILITIES)
        probabilities.set_shape([None, None, None, task.num_classes])
        decision = tf.identity(task.decide_op(probabilities), name=task.decision)
    return probabilities, decision


def inference_outputs(graph, source, task):
    """(probabilities, decision) of a trained graph of task; for older runs of this project (softmax runs),
    derived from their logits:0 (pixels, C) and image_input:0. source names the file in errors."""
    names = {op.name for op in graph.get_operations()}
    if PROBABILITIES in names:
        if task.decision not in names:
            raise InputError('{} has no {} output: not a model of a {} run'.format(source, task.decision, task.name))
        return tensor(graph, PROBABILITIES), tensor(graph, task.decision)
    try:
        logits, image = tensor(graph, LOGITS), tensor(graph, IMAGE_INPUT)
    except KeyError:
        raise InputError('{} has no {} and {} outputs (nor {} and {} to derive them from): not a model of this '
                         'project, or not a {} run'.format(source, PROBABILITIES, task.decision, LOGITS, IMAGE_INPUT,
                                                           task.name))
    with graph.as_default(), graph.name_scope(None):
        output = tf.reshape(logits, tf.concat([tf.shape(image)[:3], [int(logits.shape[-1])]], 0))
    return add_inference_outputs(output, task)

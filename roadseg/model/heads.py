"""The model's output heads: `probabilities` (the run's task's activation: softmax or sigmoid) and its decision
(`classes`, the argmax, or the task's own name, roadseg/task/) of the decoder's logits.

The tensor names are model/names.py's; they are importable from here too (heads.VGG_TENSORS, heads.LOGITS, ...).
"""
from ..system.files import InputError
from ..system.tfcompat import tf
from .names import (CLASSES, DECODER_OUTPUT, ENCODER_OUTPUTS, IMAGE_INPUT, KEEP_PROB, LOGITS,  # noqa: F401
                    PROBABILITIES, VGG_SOURCE, VGG_TENSORS)


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

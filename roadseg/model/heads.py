"""The model's output heads: `probabilities` (softmax) and `classes` (argmax) of the decoder's logits.

The tensor names are model/names.py's; they are importable from here too (heads.VGG_TENSORS, heads.LOGITS, ...).
"""
from ..system.files import InputError
from ..system.tfcompat import tf
from .names import (CLASSES, DECODER_OUTPUT, ENCODER_OUTPUTS, IMAGE_INPUT, KEEP_PROB, LOGITS,  # noqa: F401
                    PROBABILITIES, VGG_SOURCE, VGG_TENSORS)


def tensor(graph, name):
    """graph's tensor `name`:0."""
    return graph.get_tensor_by_name(name + ':0')


def add_inference_outputs(output, num_classes):
    """`probabilities` (N, H, W, C) float32 softmax and `classes` (N, H, W) uint8 argmax of the (N, H, W, C)
    logits `output`, added once to its graph at the top-level name scope; returns (probabilities, classes)."""
    graph = output.graph
    try:
        return tensor(graph, PROBABILITIES), tensor(graph, CLASSES)
    except KeyError:
        pass
    with graph.as_default(), graph.name_scope(None):
        probabilities = tf.nn.softmax(output, name=PROBABILITIES)
        probabilities.set_shape([None, None, None, num_classes])
        classes = tf.cast(tf.argmax(output, axis=-1), tf.uint8, name=CLASSES)
    return probabilities, classes


def inference_outputs(graph, source):
    """(probabilities, classes) of a trained graph; for older runs of this project, derived from their
    logits:0 (pixels, C) and image_input:0. source names the file in errors."""
    try:
        return tensor(graph, PROBABILITIES), tensor(graph, CLASSES)
    except KeyError:
        pass
    try:
        logits, image = tensor(graph, LOGITS), tensor(graph, IMAGE_INPUT)
    except KeyError:
        raise InputError('{} has no {} output (nor {} and {} to derive it from): not a model of this project'
                         .format(source, PROBABILITIES, LOGITS, IMAGE_INPUT))
    num_classes = int(logits.shape[-1])
    with graph.as_default(), graph.name_scope(None):
        output = tf.reshape(logits, tf.concat([tf.shape(image)[:3], [num_classes]], 0))
    return add_inference_outputs(output, num_classes)

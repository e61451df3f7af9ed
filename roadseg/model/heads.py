"""The model's output heads and the one list of its tensor names.

The encoder SavedModel takes `image_input` (float32 (N, H, W, 3) RGB 0..255) and `keep_prob` and gives
`layer3_out`, `layer4_out`, `layer7_out` and every stage by name, `conv1_2_out` .. `conv5_3_out`, `pool1_out` ..
`pool5_out` (STAGES, stage_output); the decoder's output is `fcn_output` (N, H, W, C) logits, the loss
reshapes it to `logits` (pixels, C); the heads added here are `probabilities` (softmax) and `classes`
(argmax). Frozen graphs, the SavedModel and the ONNX model keep these names.
"""
from ..system.files import InputError
from ..system.tfcompat import tf

IMAGE_INPUT = 'image_input'
KEEP_PROB = 'keep_prob'
ENCODER_OUTPUTS = ('layer3_out', 'layer4_out', 'layer7_out')
VGG_TENSORS = tuple(name + ':0' for name in (IMAGE_INPUT, KEEP_PROB) + ENCODER_OUTPUTS)  # load_vgg's five, in order
STAGES = ('conv1_2', 'conv2_2', 'conv3_3', 'conv4_3', 'conv5_3', 'pool1', 'pool2', 'pool3', 'pool4', 'pool5')
VGG_SOURCE = 'vgg_source'  # string constant naming the encoder's weights
DECODER_OUTPUT = 'fcn_output'
LOGITS = 'logits'  # (pixels, C): the only output of runs from before `probabilities` existed
PROBABILITIES = 'probabilities'
CLASSES = 'classes'


def stage_output(stage):
    """The encoder SavedModel's tensor name of a stage in STAGES: its ReLU output (convs) or pool, (N, h, w, C)."""
    return stage + '_out'


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

"""The one list of the model's tensor names, the decoders' names and which a run's settings name (decoder_of);
importing it loads no TensorFlow.

The encoder SavedModel takes `image_input` (float32 (N, H, W, 3) RGB 0..255) and `keep_prob` and gives
`layer3_out`, `layer4_out`, `layer7_out` and every stage by name, `conv1_2_out` .. `conv5_3_out`, `pool1_out` ..
`pool5_out` (STAGES, stage_output); the decoder's output is `fcn_output` (N, H, W, C) logits, Udacity's optimize
reshapes it to `logits` (pixels, C); the heads (model/heads.py) add `probabilities` and the run's task's decision
(`classes` or `masks`). Frozen graphs, the SavedModel and the ONNX model keep these names.
"""
IMAGE_INPUT = 'image_input'
KEEP_PROB = 'keep_prob'
ENCODER_OUTPUTS = ('layer3_out', 'layer4_out', 'layer7_out')
VGG_TENSORS = tuple(name + ':0' for name in (IMAGE_INPUT, KEEP_PROB) + ENCODER_OUTPUTS)  # load_vgg's five, in order
STAGES = ('conv1_2', 'conv2_2', 'conv3_3', 'conv4_3', 'conv5_3', 'pool1', 'pool2', 'pool3', 'pool4', 'pool5')
VGG_SOURCE = 'vgg_source'  # string constant naming the encoder's weights
DECODER_OUTPUT = 'fcn_output'
LOGITS = 'logits'  # (pixels, C): the only output of runs from before `probabilities` existed
PROBABILITIES = 'probabilities'
CLASSES = 'classes'  # the softmax tasks' decision (Labels names its own, roadseg/task/labels.py)


def stage_output(stage):
    """The encoder SavedModel's tensor name of a stage in STAGES: its ReLU output (convs) or pool, (N, h, w, C)."""
    return stage + '_out'

# The decoders of --decoder (roadseg/model/decoders.py builds each), and those --skip-scaling applies to; here so
# that the command line lists them without loading TensorFlow.
DECODER_NAMES = ('fcn8', 'fcn16', 'fcn32', 'segnet', 'unet', 'linknet', 'psp')
SKIP_SCALING = ('fcn8', 'fcn16', 'fcn32', 'psp')
LADDERS = ('unet', 'linknet')  # the decoders whose ladder can stop early (--ladder-stages)
LADDER_STAGES = (1, 2, 3, 4, 5)  # encoder stages a ladder joins, the deepest first; 5: down to full resolution
FULL_LADDER = LADDER_STAGES[-1]  # the default, and what runs recorded before --ladder-stages joined
# The endings of the model's weight variables (the encoder's conv*/filter, biases; the decoders' kernel, bias):
# what checkpoints and frozen graphs count as parameters, not Adam's slots (.../Adam) or the run's counters.
WEIGHT_SUFFIXES = ('/filter', '/biases', '/kernel', '/bias')


def decoder_of(config):
    """The decoder a run's settings name (roadseg/model/decoders.py): `decoder`, else for runs from before
    --decoder fcn<N> from their `fcn` (8, 16 or 32), fcn8 when neither is recorded."""
    return config.get('decoder') or 'fcn{}'.format(config.get('fcn', 8))

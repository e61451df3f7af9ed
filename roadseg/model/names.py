"""The one list of the model's tensor names; importing it loads no TensorFlow.

The encoder SavedModel takes `image_input` (float32 (N, H, W, 3) RGB 0..255) and `keep_prob` and gives
`layer3_out`, `layer4_out`, `layer7_out`; the decoder's output is `fcn_output` (N, H, W, C) logits, the loss
reshapes it to `logits` (pixels, C); the heads (model/heads.py) add `probabilities` and `classes`. Frozen graphs,
the SavedModel and the ONNX model keep these names.
"""
IMAGE_INPUT = 'image_input'
KEEP_PROB = 'keep_prob'
ENCODER_OUTPUTS = ('layer3_out', 'layer4_out', 'layer7_out')
VGG_TENSORS = tuple(name + ':0' for name in (IMAGE_INPUT, KEEP_PROB) + ENCODER_OUTPUTS)  # load_vgg's five, in order
VGG_SOURCE = 'vgg_source'  # string constant naming the encoder's weights
DECODER_OUTPUT = 'fcn_output'
LOGITS = 'logits'  # (pixels, C): the only output of runs from before `probabilities` existed
PROBABILITIES = 'probabilities'
CLASSES = 'classes'

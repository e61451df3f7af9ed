"""The decoders on the VGG16 encoder, one function each, TF-slim style:

    decoder(end_points, num_classes, keep_prob=None, l2_scale=1e-3, crop_to=None, ...) -> (logits, end_points)

end_points: the encoder's tensors by name (names.STAGES: conv1_2 .. conv5_3, pool1 .. pool5; fc7: layer7_out,
after dropout); NEEDS says which stages each decoder reads beyond pool3, pool4 and fc7 (load_vgg's three).
keep_prob: the encoder's dropout tensor, reused by decoders that skip fc6/fc7. logits: `fcn_output`
(N, H, W, num_classes), H, W those of crop_to (the image) when given; sizes that are multiples of 32 come out
whole without it. Every variable lives under decoder/ (kept float32 by int8 export, never frozen by
--freeze-blocks), every kernel adds l2_scale * l2_loss to REGULARIZATION_LOSSES, transposed convolutions start
bilinear and class scores start at zero, as in FCN. Widths (ladder_width) scale with the encoder's.
"""
from ..system.tfcompat import tf
from .names import DECODER_NAMES, FULL_LADDER, LADDER_STAGES, LADDERS
from .blocks import (adaptive_avg_pool, conv, dropout, finish, max_pool_with_argmax, resize_bins, score, unpool,
                     upsample)

CONV_STAGES = ('conv1_2', 'conv2_2', 'conv3_3', 'conv4_3', 'conv5_3')  # each block's last conv, before its pool
PSP_BINS = (1, 2, 3, 6)


def _fcn(end_points, num_classes, variant, l2_scale, skip_scaling, crop_to):
    """FCN-8s/16s/32s scores of pool3, pool4, fc7 in the current scope: main.layers' docstring."""
    layer3, layer4, layer7 = (end_points[k] for k in ('pool3', 'pool4', 'fc7'))
    if skip_scaling:
        layer3, layer4 = layer3 * 0.0001, layer4 * 0.01
    ends = {'score7': score(layer7, num_classes, 'score7', l2_scale)}
    if variant == 32:
        ends['up7x32'] = upsample(ends['score7'], 32 * tf.shape(layer7)[1:3], 32, num_classes, 'up7x32', l2_scale)
        return finish(ends['up7x32'], crop_to), ends
    ends['score4'] = score(layer4, num_classes, 'score4', l2_scale)
    ends['up7'] = upsample(ends['score7'], tf.shape(layer4)[1:3], 2, num_classes, 'up7', l2_scale)
    out = ends['up7'] + ends['score4']
    if variant == 16:
        ends['up4x16'] = upsample(out, 16 * tf.shape(layer4)[1:3], 16, num_classes, 'up4x16', l2_scale)
        return finish(ends['up4x16'], crop_to), ends
    ends['score3'] = score(layer3, num_classes, 'score3', l2_scale)
    ends['up4'] = upsample(out, tf.shape(layer3)[1:3], 2, num_classes, 'up4', l2_scale)
    ends['up3'] = upsample(ends['up4'] + ends['score3'], 8 * tf.shape(layer3)[1:3], 8, num_classes, 'up3', l2_scale)
    return finish(ends['up3'], crop_to), ends


def fcn8(end_points, num_classes, keep_prob=None, l2_scale=1e-3, crop_to=None, skip_scaling=False):
    """FCN-8s: 1x1 scores of fc7, pool4, pool3 summed on the way up (x2, x2), then x8. keep_prob: fc7 has it."""
    with tf.variable_scope('decoder'):
        return _fcn(end_points, num_classes, 8, l2_scale, skip_scaling, crop_to)


def fcn16(end_points, num_classes, keep_prob=None, l2_scale=1e-3, crop_to=None, skip_scaling=False):
    """FCN-16s: fc7's scores x2 plus pool4's, then x16."""
    with tf.variable_scope('decoder'):
        return _fcn(end_points, num_classes, 16, l2_scale, skip_scaling, crop_to)


def fcn32(end_points, num_classes, keep_prob=None, l2_scale=1e-3, crop_to=None, skip_scaling=False):
    """FCN-32s: fc7's scores x32, no skips."""
    with tf.variable_scope('decoder'):
        return _fcn(end_points, num_classes, 32, l2_scale, skip_scaling, crop_to)


def ladder_width(stage):
    """Channels of the decoder level that meets encoder stage (N, h, w, C): C / 4, at least 16 (VGG16:
    conv5_3 128, conv4_3 128, conv3_3 64, conv2_2 32, conv1_2 16)."""
    return max(int(stage.shape[-1]) // 4, 16)


def segnet(end_points, num_classes, keep_prob=None, l2_scale=1e-3, crop_to=None):
    """SegNet: each block's last conv max-pooled again with tf.nn.max_pool_with_argmax (the same maxima as the
    encoder's pools, and where they were); from pool5 (dropout at keep_prob, fc6/fc7 unused) each block
    unpools by its indices, then one 3x3 conv + ReLU to the width of the block below (the mirror of VGG16's
    blocks, one conv each, no batch normalisation); 1x1 class scores at full resolution."""
    ends = {}
    with tf.variable_scope('decoder'):
        pooled = {}
        for stage in CONV_STAGES:
            pooled[stage] = max_pool_with_argmax(end_points[stage], stage + '_argmax')
        net = dropout(pooled['conv5_3'][0], keep_prob) if keep_prob is not None else pooled['conv5_3'][0]
        for below, stage in list(zip((None,) + CONV_STAGES[:-1], CONV_STAGES))[::-1]:
            block = stage[4]  # conv5_3 -> 5
            net = ends['unpool' + block] = unpool(net, pooled[stage][1], end_points[stage])
            width = int(end_points[below or stage].shape[-1])
            net = ends['dec' + block] = conv(net, width, 'dec' + block, l2_scale)
        ends['score'] = score(net, num_classes, 'score', l2_scale)
        return finish(ends['score'], crop_to), ends


def _ladder(end_points, num_classes, l2_scale, crop_to, join, stages):
    """U-Net and LinkNet: from fc7 (1x1 conv to the first width), up the `stages` deepest encoder stages, conv5_3
    first (5: down to conv1_2): a x2 transposed conv to the stage's size, `join` with the stage, a 3x3 conv + ReLU
    to ladder_width(stage); 1x1 class scores, at full resolution with 5 stages, else (1/2 to 1/16) brought up by
    a bilinear-initialised transposed conv of factor 2^(5 - stages), as FCN's."""
    if stages not in LADDER_STAGES:
        raise ValueError('stages: one of {}, not {}'.format(LADDER_STAGES, stages))
    ends = {}
    with tf.variable_scope('decoder'):
        net = ends['reduce7'] = conv(end_points['fc7'], ladder_width(end_points['conv5_3']), 'reduce7', l2_scale,
                                     size=1)
        for stage in CONV_STAGES[len(CONV_STAGES) - stages:][::-1]:
            skip = end_points[stage]
            up = ends['up_' + stage] = upsample(net, tf.shape(skip)[1:3], 2, int(net.shape[-1]), 'up_' + stage,
                                                l2_scale)
            net = ends['fuse_' + stage] = conv(join(up, skip, stage), ladder_width(skip), 'fuse_' + stage, l2_scale)
        out = ends['score'] = score(net, num_classes, 'score', l2_scale)
        factor = 2 ** (len(CONV_STAGES) - stages)
        if factor > 1:
            out = ends['up_score'] = upsample(out, factor * tf.shape(out)[1:3], factor, num_classes, 'up_score',
                                              l2_scale)
        return finish(out, crop_to), ends


def unet(end_points, num_classes, keep_prob=None, l2_scale=1e-3, crop_to=None, stages=FULL_LADDER):
    """U-Net on VGG16: the ladder (_ladder) over the `stages` deepest stages, each concatenated to the upsampled
    features. keep_prob: fc7, the ladder's start, has it."""
    return _ladder(end_points, num_classes, l2_scale, crop_to, lambda up, skip, stage: tf.concat([up, skip], -1),
                   stages)


def linknet(end_points, num_classes, keep_prob=None, l2_scale=1e-3, crop_to=None, stages=FULL_LADDER):
    """LinkNet on VGG16: the ladder (_ladder) over the `stages` deepest stages, each reduced by a 1x1 conv to the
    upsampled width and added. keep_prob: fc7, the ladder's start, has it."""
    def add(up, skip, stage):
        return up + conv(skip, int(up.shape[-1]), 'reduce_' + stage, l2_scale, size=1, relu=False)
    return _ladder(end_points, num_classes, l2_scale, crop_to, add, stages)


def psp(end_points, num_classes, keep_prob=None, l2_scale=1e-3, crop_to=None, skip_scaling=False, skips=True):
    """PSPNet's pyramid pooling on fc7 (N, H/32, W/32, F): average pools over 1, 2, 3 and 6 bins, each a 1x1
    conv + ReLU to F/4 channels, bilinearly resized back and concatenated with fc7; a 3x3 conv + ReLU to
    min(F/2, 512) channels; then FCN-8s's ladder with the pool4 and pool3 scores (skips), or x32 (skips=False).
    keep_prob: fc7 has it."""
    top = end_points['fc7']
    ends = {}
    with tf.variable_scope('decoder'):
        width, size = int(top.shape[-1]), tf.shape(top)[1:3]
        branches = [top]
        for bins in PSP_BINS:
            pooled = conv(adaptive_avg_pool(top, bins), max(width // 4, 1), 'pyramid{}'.format(bins), l2_scale,
                          size=1)
            branches.append(resize_bins(pooled, size))
        ends['pyramid'] = conv(tf.concat(branches, -1), min(width // 2, 512), 'pyramid_fuse', l2_scale)
        logits, more = _fcn(dict(end_points, fc7=ends['pyramid']), num_classes, 8 if skips else 32, l2_scale,
                            skip_scaling, crop_to)
        ends.update(more)
        return logits, ends


DECODERS = {f.__name__: f for f in (fcn8, fcn16, fcn32, segnet, unet, linknet, psp)}
assert tuple(DECODERS) == DECODER_NAMES
FCN = ('fcn8', 'fcn16', 'fcn32')  # main.layers' variants: built through the model module's layers()
NEEDS = dict.fromkeys(DECODERS, ())  # stages by name each decoder needs beyond load_vgg's pool3, pool4, fc7
NEEDS.update(segnet=CONV_STAGES, unet=CONV_STAGES, linknet=CONV_STAGES)

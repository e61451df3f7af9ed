"""Layers the decoders are built from (roadseg/model/decoders.py, main.layers): tf.get_variable + tf.nn.*, every
new kernel L2-regularised through the REGULARIZATION_LOSSES collection that main.optimize adds to the loss."""
import numpy as np

from ..system.tfcompat import tf
from .names import DECODER_OUTPUT


def bilinear_kernel(size, channels):
    """(size, size, channels, channels) kernel upsampling each channel bilinearly, as in FCN."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    filt = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    kernel = np.zeros((size, size, channels, channels), np.float32)
    for c in range(channels):
        kernel[:, :, c, c] = filt
    return kernel


def regularized(name, shape, initializer, l2_scale):
    """A kernel variable whose l2_scale * l2_loss is added to REGULARIZATION_LOSSES (the one place it is)."""
    w = tf.get_variable(name, shape, initializer=initializer)
    tf.add_to_collection(tf.GraphKeys.REGULARIZATION_LOSSES, tf.multiply(l2_scale, tf.nn.l2_loss(w),
                                                                         name=name + '_l2'))
    return w


def conv(net, channels, name, l2_scale, size=3, relu=True, initializer=None):
    """size x size convolution to `channels` (stride 1, SAME) + bias, then ReLU unless relu=False;
    He-initialised unless `initializer` is given."""
    initializer = initializer or tf.variance_scaling_initializer(2.0, 'fan_in', 'truncated_normal')
    with tf.variable_scope(name):
        w = regularized('kernel', [size, size, net.shape[-1], channels], initializer, l2_scale)
        b = tf.get_variable('bias', [channels], initializer=tf.zeros_initializer())
        net = tf.nn.bias_add(tf.nn.conv2d(net, w, [1, 1, 1, 1], 'SAME'), b)
        return tf.nn.relu(net) if relu else net


def score(net, num_classes, name, l2_scale):
    """1x1 convolution to class scores; zero-initialised as in FCN."""
    return conv(net, num_classes, name, l2_scale, size=1, relu=False, initializer=tf.zeros_initializer())


def upsample(net, like_hw, factor, channels, name, l2_scale):
    """Transposed conv (kernel 2*factor, stride factor, bilinear init, `channels` in and out) to spatial
    size like_hw (a (2,) int32 tensor)."""
    size = 2 * factor
    with tf.variable_scope(name):
        w = regularized('kernel', [size, size, channels, channels],
                        tf.constant_initializer(bilinear_kernel(size, channels)), l2_scale)
        out_shape = tf.stack([tf.shape(net)[0], like_hw[0], like_hw[1], channels])
        out = tf.nn.conv2d_transpose(net, w, out_shape, [1, factor, factor, 1], 'SAME')
        out.set_shape([None, None, None, channels])
        return out


def dropout(net, keep_prob):
    """Dropout at keep_prob (the encoder's keep_prob tensor: fed < 1 when training, 1 for inference)."""
    return tf.nn.dropout(net, rate=1.0 - keep_prob)


def finish(out, crop_to):
    """The decoder's named output, cropped to crop_to's height and width when given."""
    if crop_to is not None:
        out = out[:, :tf.shape(crop_to)[1], :tf.shape(crop_to)[2], :]
    return tf.identity(out, name=DECODER_OUTPUT)


def max_pool_with_argmax(net, name):
    """2x2/2 SAME max pool of net (N, H, W, C) and where each maximum was: (pooled (N, ceil(H/2), ceil(W/2), C),
    int64 indices into net flattened with the batch, ((n * H + y) * W + x) * C + c)."""
    return tf.nn.max_pool_with_argmax(net, [1, 2, 2, 1], [1, 2, 2, 1], 'SAME', include_batch_in_index=True,
                                      name=name)


def unpool(net, argmax, like):
    """SegNet's unpooling: net's values put back where max_pool_with_argmax found them, zeros elsewhere;
    net and argmax (N, h, w, C), like: the pooled tensor (N, H, W, C), whose shape the result takes."""
    shape = tf.shape(like, out_type=tf.int64)
    flat = tf.scatter_nd(tf.reshape(argmax, [-1, 1]), tf.reshape(net, [-1]), tf.reshape(tf.reduce_prod(shape), [1]))
    out = tf.reshape(flat, shape)
    out.set_shape(like.shape)
    return out


def _bin_weights(size, bins):
    """(bins, size) float32: row i averages positions floor(i*size/bins) .. ceil((i+1)*size/bins) - 1, the bins
    of adaptive average pooling (they overlap when size is not a multiple of bins); size: an int32 tensor."""
    i, p = tf.range(bins)[:, None], tf.range(size)[None, :]
    inside = tf.cast((p >= i * size // bins) & (p < ((i + 1) * size + bins - 1) // bins), tf.float32)
    return inside / tf.reduce_sum(inside, axis=1, keepdims=True)


def _bilinear_weights(size, bins):
    """(size, bins) float32: row y interpolates output position y of `size` (an int32 tensor) from `bins`
    positions, with half-pixel centres and clamped edges, as tf.image.resize_bilinear(half_pixel_centers=True)."""
    source = (tf.cast(tf.range(size), tf.float32) + 0.5) * bins / tf.cast(size, tf.float32) - 0.5
    source = tf.maximum(source, 0.0)
    low = tf.floor(source)
    frac = (source - low)[:, None]
    low = tf.cast(low, tf.int32)
    return tf.one_hot(low, bins) * (1 - frac) + tf.one_hot(tf.minimum(low + 1, bins - 1), bins) * frac


def _weighted_sums(net, rows, cols):
    """out[n, r, s, c] = sum over y, x of rows[r, y] * cols[s, x] * net[n, y, x, c]; rows (R, H), cols (S, W).
    Broadcast products and sums, not MatMul: TF 2.x's MatMul gradients carry attrs TF 1.15 cannot read, and
    tf2onnx's Resize of a dynamic size does not load in ONNX Runtime."""
    net = tf.reduce_sum(tf.expand_dims(net, 1) * rows[None, :, :, None, None], axis=2)  # (N, R, W, C)
    return tf.reduce_sum(tf.expand_dims(net, 2) * cols[None, None, :, :, None], axis=3)  # (N, R, S, C)


def adaptive_avg_pool(net, bins):
    """net (N, H, W, C) averaged over bins x bins regions, any H, W: (N, bins, bins, C)."""
    shape = tf.shape(net)
    out = _weighted_sums(net, _bin_weights(shape[1], bins), _bin_weights(shape[2], bins))
    out.set_shape([None, bins, bins, net.shape[-1]])
    return out


def resize_bins(net, size):
    """net (N, bins, bins, C) resized bilinearly to size (an int32 (2,) tensor): (N, size[0], size[1], C)."""
    bins = int(net.shape[1])
    out = _weighted_sums(net, _bilinear_weights(size[0], bins), _bilinear_weights(size[1], bins))
    out.set_shape([None, None, None, net.shape[-1]])
    return out

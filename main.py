#!/usr/bin/env python
"""FCN-8s road segmentation on KITTI (the Udacity project), TensorFlow 1.x graph mode on TF 1.15 and 2.x.

    python main.py                    # train, then write inference images to runs/<timestamp>/
    python main.py --evaluate RUN     # IoU/MaxF1/AP on the validation split of the run's data
    python main.py --video in.mp4 --output out.mp4 --checkpoint RUN
"""
import math
import sys
import time

import numpy as np
if __name__ == '__main__':  # the command line: this CPU's settings for its mode, before TensorFlow is loaded
    from roadseg.system import cpu
    cpu.choose_settings(cpu.startup_mode(sys.argv))
from roadseg.system.tfcompat import tf  # noqa: E402
from roadseg.model import decoders, heads, vgg as vgg_model  # noqa: E402
from roadseg.system import progress  # noqa: E402


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def load_vgg(sess, vgg_path):
    """
    Load the VGG16 SavedModel (tag 'vgg16') into sess.
    :return: (image_input, keep_prob, layer3_out, layer4_out, layer7_out) tensors
    """
    return vgg_model.load_vgg_tensors(sess, vgg_path)


def layers(vgg_layer3_out, vgg_layer4_out, vgg_layer7_out, num_classes,
           l2_scale=1e-3, skip_scaling=False, crop_to=None, variant=8):
    """
    FCN-8s decoder: 1x1 scores on layers 3, 4, 7; x2, x2, x8 transposed convs with skip additions
    (roadseg/model/decoders.py fcn8, fcn16, fcn32; the other decoders sit beside them there).
    :param variant: 8 (FCN-8s, the default), 16 (FCN-16s: the pool3 skip left out, x2 then x16) or
        32 (FCN-32s: fc7's scores upsampled x32, no skips), as in the FCN paper
    :param l2_scale: L2 weight on every new kernel (scale * sum(w**2) / 2)
    :param skip_scaling: scale pool4 by 0.01 and pool3 by 0.0001 as the at-once FCN-8s did with SGD.
        Off by default: under Adam each weight moves by ~lr per step whatever its gradient's size,
        so those constants shrink the skip paths' effective learning rate 100x and 10000x.
    :param crop_to: optional image tensor (N, H, W, C); the output is cropped to its H, W
    :return: (N, 8*ceil(H/8), 8*ceil(W/8), num_classes) logits; exactly (N, H, W, num_classes) when
        H and W are multiples of 32 (the pools are SAME, so other sizes round up) or crop_to is given
    """
    if variant not in (8, 16, 32):
        raise ValueError('variant must be 8, 16 or 32, got {}'.format(variant))
    decoder = decoders.DECODERS['fcn{}'.format(variant)]
    end_points = {'pool3': vgg_layer3_out, 'pool4': vgg_layer4_out, 'fc7': vgg_layer7_out}
    return decoder(end_points, num_classes, l2_scale=l2_scale, crop_to=crop_to, skip_scaling=skip_scaling)[0]


def optimize(nn_last_layer, correct_label, learning_rate, num_classes, class_weights=None, wrap_optimizer=None):
    """
    Cross-entropy over labelled pixels (all-zero label rows are "don't care") plus the L2 losses, Adam.
    :param class_weights: optional (num_classes,) weights (e.g. median frequency balancing): the loss is
        the weighted mean over labelled pixels, each weighted by its true class's weight
    :param wrap_optimizer: optional callable optimizer -> optimizer, e.g. Horovod's DistributedOptimizer
    :return: (logits (pixels, num_classes), train_op, cross_entropy_loss without the L2 term)
    """
    logits = tf.reshape(nn_last_layer, (-1, num_classes), name=heads.LOGITS)
    labels = tf.reshape(correct_label, (-1, num_classes))
    xent = tf.nn.softmax_cross_entropy_with_logits_v2(labels=tf.stop_gradient(labels), logits=logits)
    if class_weights is None:
        weight = tf.reduce_sum(labels, axis=1)  # 1 labelled, 0 don't care
    else:
        weight = tf.reduce_sum(labels * tf.constant(class_weights, tf.float32, [num_classes]), axis=1)
    cross_entropy_loss = tf.divide(tf.reduce_sum(xent * weight), tf.maximum(tf.reduce_sum(weight), 1.0),
                                   name='cross_entropy_loss')
    total = cross_entropy_loss
    reg = tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)
    if reg:
        total = tf.add(cross_entropy_loss, tf.add_n(reg), name='total_loss')
    global_step = tf.train.get_or_create_global_step()
    optimizer = tf.train.AdamOptimizer(learning_rate)
    if wrap_optimizer is not None:
        optimizer = wrap_optimizer(optimizer)
    train_op = optimizer.minimize(total, global_step=global_step)
    return logits, train_op, cross_entropy_loss


def train_nn(sess, epochs, batch_size, get_batches_fn, train_op, cross_entropy_loss, input_image,
             correct_label, keep_prob, learning_rate, keep_prob_value=0.5, learning_rate_value=1e-3,
             first_epoch=0, on_epoch_end=None, on_step=None):
    """
    Train for epochs [first_epoch, epochs); print each epoch's mean loss, a tqdm bar per epoch on a terminal.
    :param get_batches_fn: get_batches_fn(batch_size) yields (images, labels) batches; its optional
        num_batches(batch_size) gives the bar its total and ETA
    :param on_epoch_end: optional callback(epoch, mean_loss) after each epoch (validation, checkpoints)
    :param on_step: optional callback(loss) -> loss to record, after each step (data-parallel ranks agree
        there on the mean loss and on whether to stop)
    :param learning_rate_value: the rate fed to learning_rate, or a callable of the run's progress
        t = (epoch + step / steps per epoch) / epochs in [0, 1) giving it (roadseg/training/schedule.py);
        without get_batches_fn.num_batches, t moves once per epoch
    :return: list of per-epoch mean losses
    :raises TrainingDiverged: on a NaN or infinite loss, before anything else is saved
    """
    history = []
    start = time.time()
    for epoch in range(first_epoch, epochs):
        losses = []
        total = get_batches_fn.num_batches(batch_size) if hasattr(get_batches_fn, 'num_batches') else None
        bar = progress.bar(get_batches_fn(batch_size), total=total, desc='Epoch {}/{}'.format(epoch + 1, epochs),
                           unit='batch', leave=False, quiet_in_logs=True)
        for step, (images, labels) in enumerate(bar):
            rate = learning_rate_value((epoch + (step / total if total else 0)) / epochs) \
                if callable(learning_rate_value) else learning_rate_value
            _, loss = sess.run([train_op, cross_entropy_loss],
                               {input_image: images, correct_label: labels,
                                keep_prob: keep_prob_value, learning_rate: rate})
            if on_step is not None:
                loss = on_step(loss)
            if not math.isfinite(float(loss)):
                raise TrainingDiverged('loss became {} in epoch {}; lower --learning-rate'.format(loss, epoch + 1))
            losses.append(float(loss))
            bar.set_postfix(loss='{:.4f}'.format(loss))
        mean = float(np.mean(losses)) if losses else float('nan')
        history.append(mean)
        per_epoch = (time.time() - start) / (epoch + 1 - first_epoch)
        print('Epoch {}/{}: loss {:.4f} ({:.0f} s per epoch, about {:.0f} min left)'.format(
            epoch + 1, epochs, mean, per_epoch, per_epoch * (epochs - epoch - 1) / 60))
        if on_epoch_end is not None:
            on_epoch_end(epoch, mean)
    return history


def run(argv=None):
    """Parse flags and train / evaluate / make a video (see README.md or --help); this module is the model."""
    from roadseg import cli
    return cli.main(argv, model=sys.modules[__name__])


if __name__ == '__main__':
    sys.exit(run())

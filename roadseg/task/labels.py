"""Labels: any number of labels per pixel (overlapping objects), one sigmoid each, binary cross-entropy with an
explicit loss mask; per-label IoU, F1, MaxF1 and AP; a mask per label and a striped overlay."""
import os

import numpy as np
from PIL import Image

from ..data.datasets import IGNORE, positive_weights
from ..evaluation import palette
from ..evaluation.metrics import THRESHOLD
from ..evaluation.scores import LabelScores
from ..system.files import save_image_atomic
from .base import Task, minimize, percent, tensorflow


class Labels(Task):
    """Any number of labels per pixel (overlapping objects): one sigmoid per label, a label's mask where its
    probability > THRESHOLD. Targets and the loss mask are per label: a label's IGNORE pixels are don't care."""
    name = 'labels'
    decision = 'masks'
    history_curves = (('val_iou', 'validation mean IoU at {:.2f}'.format(THRESHOLD)),
                      ('val_max_f1', 'validation mean MaxF1'))
    weighting = ('balanced', positive_weights, 'Positive weights (negatives / positives per label)')

    def __init__(self, class_names, colors, dice=False):
        """dice: the loss adds each label's soft Dice loss (--dice)."""
        super().__init__(class_names, colors)
        self.dice = dice

    def encode(self, label):
        return (label == 1).astype(np.float32), (label != IGNORE).astype(np.float32)

    def label_input(self):
        tf = tensorflow()
        shape = [None, None, None, self.num_classes]
        return (tf.placeholder(tf.float32, shape, name='correct_label'),
                tf.placeholder(tf.float32, shape, name='loss_mask'))

    def training_labels(self, label):
        return self.encode(label)

    def loss(self, logits, targets, loss_mask, pos_weight=None):
        """Binary cross-entropy of each label's sigmoid, averaged over the pixels and labels loss_mask keeps;
        pos_weight: optional (C,) weights of the positive term (tf.nn.weighted_cross_entropy_with_logits's
        stable form: (1 - z) x + (1 + (q - 1) z) (log(1 + exp(-|x|)) + max(-x, 0))). With dice, plus the soft
        Dice loss 1 - mean over labels of (2 sum(p z m) + 1) / (sum((p + z) m) + 1), p = sigmoid(x), m the loss
        mask, sums over the batch's (N, H, W) pixels."""
        tf = tensorflow()
        q = 1.0 if pos_weight is None else tf.constant(pos_weight, tf.float32, [self.num_classes])
        x, z = logits, targets
        per = (1 - z) * x + (1 + (q - 1) * z) * (tf.log1p(tf.exp(-tf.abs(x))) + tf.nn.relu(-x))
        bce = tf.divide(tf.reduce_sum(per * loss_mask), tf.maximum(tf.reduce_sum(loss_mask), 1.0),
                        name='cross_entropy_loss')
        if not self.dice:
            return bce
        p = tf.sigmoid(x)
        overlap = tf.reduce_sum(p * z * loss_mask, axis=[0, 1, 2])
        total = tf.reduce_sum((p + z) * loss_mask, axis=[0, 1, 2])
        return tf.add(bce, 1.0 - tf.reduce_mean((2.0 * overlap + 1.0) / (total + 1.0)), name='bce_dice_loss')

    def train_ops(self, model, output, labels, learning_rate, weights=None, wrap_optimizer=None):
        loss = self.loss(output, labels[0], labels[1], weights)
        return output, minimize(loss, learning_rate, wrap_optimizer), loss

    def activate(self, logits):
        return tensorflow().sigmoid(logits)

    def decide_op(self, probabilities):
        return tensorflow().greater(probabilities, THRESHOLD)

    def decide(self, probs):
        return probs > THRESHOLD

    def scores(self):
        return LabelScores(self.class_names)

    def keep_value(self, results):
        return results['mean_iou'] or 0.0

    def key_metrics(self, results):
        """Mean IoU and each label's IoU, in points."""
        out = {'mean_iou': results['mean_iou']}
        out.update(('iou_' + n, v) for n, v in zip(results['classes'], results['class_iou']))
        return {k: None if v is None else 100 * v for k, v in out.items()}

    def epoch_values(self, results):
        return {k: results['mean_' + k] or 0.0 for k in ('iou', 'f1', 'max_f1', 'ap')}

    def epoch_line(self, label, prefix, e, suffix):
        return ('  {} mean IoU {:.3f} at threshold {:.2f}, mean F1 {:.2f}, mean MaxF1 {:.2f}, mean AP {:.2f} '
                '({} images, {:.0f} s){}').format(label, e[prefix + 'iou'], THRESHOLD, 100 * e[prefix + 'f1'],
                                                  100 * e[prefix + 'max_f1'], 100 * e[prefix + 'ap'],
                                                  e[prefix + 'images'], e[prefix + 'seconds'], suffix)

    def kept_numbers(self, e):
        return 'mean IoU {:.3f} at threshold {:.2f}, mean MaxF1 {:.2f}'.format(e['val_iou'], THRESHOLD,
                                                                             100 * e['val_max_f1'])

    def print_results(self, results):
        """The per-label table; "overlaps": the recall where two or more labels are members."""
        keys = ('iou', 'precision', 'recall', 'f1', 'max_f1', 'ap', 'overlap_recall')
        heads = ('iou', 'precision', 'recall', 'f1', 'maxf1', 'ap', 'overlaps')
        print('{:16s}'.format('label') + ''.join('{:>10s}'.format(h) for h in heads))
        for i, name in enumerate(results['classes']):
            print('{:16s}'.format(name) + ''.join('{:>10s}'.format(percent(results['class_' + k][i])) for k in keys))
        print('{:16s}'.format('mean') + ''.join('{:>10s}'.format(percent(results['mean_' + k])) for k in keys))

    def paint(self, image, probs):
        return palette.label_overlay(image, self.decide(probs), self.colors)

    def error_overlay(self, image, probs, label):
        """Green where every labelled label is right and one is set, red where any is wrong."""
        pred, labelled = self.decide(probs), label != IGNORE
        wrong = (labelled & (pred != (label == 1))).any(axis=-1)
        found = (pred & (label == 1)).any(axis=-1) & ~wrong
        return palette.mark(image, ((found, (0, 255, 0)), (wrong, (255, 0, 0))))

    def output_names(self, path):
        """<label>/<stem>.png per label (0/255), then <stem>_overlay.png."""
        stem = os.path.splitext(os.path.basename(path))[0]
        return [os.path.join(name, stem + '.png') for name in self.class_names] + [stem + '_overlay.png']

    def write_outputs(self, out_dir, path, image, probs, decision):
        names = self.output_names(path)
        for c, name in enumerate(names[:-1]):
            os.makedirs(os.path.join(out_dir, os.path.dirname(name)), exist_ok=True)
            save_image_atomic(os.path.join(out_dir, name), Image.fromarray(decision[..., c].astype(np.uint8) * 255))
        save_image_atomic(os.path.join(out_dir, names[-1]), Image.fromarray(self.paint(image, probs)))
        return 0

    def outputs_note(self, extras):
        return 'a mask per label in <label>/, overlays, legend.png'

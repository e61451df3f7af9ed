"""The Task interface (roadseg/task/__init__.py lists the kinds) and what the kinds share: Softmax, the one class per
pixel of Binary and Classes; minimize, Adam on a task's own loss. Importing this module loads no TensorFlow."""
import abc
import os

import numpy as np
from PIL import Image

from ..data.batches import one_hot
from ..data.datasets import IGNORE, median_frequency_weights
from ..evaluation import palette, report
from ..system.files import InputError, save_image_atomic


def tensorflow():
    """tensorflow.compat.v1 (roadseg/system/tfcompat.py), imported at the first graph a task builds."""
    from ..system.tfcompat import tf
    return tf


def minimize(loss, learning_rate, wrap_optimizer=None):
    """Adam on loss plus the graph's REGULARIZATION_LOSSES (as main.optimize does); returns the train op."""
    tf = tensorflow()
    reg = tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)
    total = tf.add(loss, tf.add_n(reg), name='total_loss') if reg else loss
    optimizer = tf.train.AdamOptimizer(learning_rate)
    if wrap_optimizer is not None:
        optimizer = wrap_optimizer(optimizer)
    return optimizer.minimize(total, global_step=tf.train.get_or_create_global_step())


class Task(abc.ABC):
    """One kind of prediction over class_names (colours: one RGB tuple per class)."""
    name = None             # config.json's "task"
    decision = None         # the graph's decision output (heads.py names its probabilities)
    history_curves = ()     # ((history key, label), ...) drawn beside the loss
    curve_metric = 'iou'    # the history metric that compares runs (scripts/compare_runs.py)
    weighting = None        # (--class-weights kind, function (dataset, split) -> (C,) loss weights, printed label)

    def __init__(self, class_names, colors):
        self.class_names, self.colors = [str(n) for n in class_names], [tuple(c) for c in colors]

    @property
    def num_classes(self):
        return len(self.class_names)

    def config(self):
        """What config.json records of the task."""
        return dict(task=self.name, num_classes=self.num_classes, class_names=list(self.class_names),
                    class_colors=[list(c) for c in self.colors])

    # training
    @abc.abstractmethod
    def encode(self, label):
        """uint8 label (..., H, W[, C]) with IGNORE -> (float32 targets (..., H, W, C), float32 loss mask)."""

    @abc.abstractmethod
    def label_input(self):
        """The graph's label placeholder(s), fed with training_labels()."""

    @abc.abstractmethod
    def training_labels(self, label):
        """What a batch of uint8 labels (B, H, W[, C]) feeds label_input()."""

    @abc.abstractmethod
    def train_ops(self, model, output, labels, learning_rate, weights=None, wrap_optimizer=None):
        """(logits, train_op, loss) of the (N, H, W, C) logits output against label_input() labels."""

    def class_weights(self, kind, dataset):
        """The loss weights (C,) --class-weights kind asks for (None: unweighted), by the task's weighting of the
        training split, printed; InputError if kind is not the task's weighting."""
        if kind is None:
            return None
        if self.weighting is None or kind != self.weighting[0]:
            raise InputError('--class-weights {} does not apply to a {} run'.format(kind, self.name))
        _, weigh, label = self.weighting
        weights = weigh(dataset, 'train')
        print(label + ': ' + ', '.join('{} {:.3f}'.format(n, w) for n, w in zip(self.class_names, weights)))
        return weights

    # inference
    @abc.abstractmethod
    def activate(self, logits):
        """TF: probabilities (N, H, W, C) of logits."""

    @abc.abstractmethod
    def decide_op(self, probabilities):
        """TF: the decision of probabilities, named by the caller `decision`."""

    @abc.abstractmethod
    def decide(self, probs):
        """numpy: probabilities (..., H, W, C) -> the decision (a class map or boolean masks)."""

    # metrics
    @abc.abstractmethod
    def scores(self):
        """A fresh metric state: add(probs, label, category) -> the image's score, results() -> dict."""

    @abc.abstractmethod
    def keep_value(self, results):
        """The number (higher is better) that keeps an epoch's weights."""

    def key_metrics(self, results):
        """{metric: value in points} an int8 model is judged by."""
        return {'mean_iou': None if results['mean_iou'] is None else 100 * results['mean_iou']}

    @abc.abstractmethod
    def epoch_values(self, results):
        """The history entry's numbers (prefixed val_ or report_ by the caller; iou always among them)."""

    @abc.abstractmethod
    def epoch_line(self, label, prefix, e, suffix):
        """One line of an epoch's numbers from history entry e."""

    @abc.abstractmethod
    def kept_numbers(self, e):
        """The kept epoch's numbers from its history entry e, for the closing line."""

    def warning(self, e):
        """A warning about a useless kept model, else None."""
        return None

    @abc.abstractmethod
    def print_results(self, results):
        """--evaluate's table."""

    def plot(self, out_dir, scores, results):
        report.plot_class_iou(os.path.join(out_dir, 'class_iou.png'), results)

    # pictures and files
    @abc.abstractmethod
    def paint(self, image, probs):
        """The overlay people look at, uint8 (H, W, 3)."""

    def legend(self):
        return palette.legend(self.class_names, self.colors)

    @abc.abstractmethod
    def error_overlay(self, image, probs, label):
        """Right and wrong pixels marked (worst cases)."""

    def output_names(self, path):
        """Files --predict writes for one image (relative to its output folder): decision, overlay, extras."""
        stem = os.path.splitext(os.path.basename(path))[0]
        return [stem + '.png', stem + '_overlay.png']

    def write_outputs(self, out_dir, path, image, probs, decision):
        """Write output_names(path) for one image; returns the number of extra files written."""
        names = self.output_names(path)
        save_image_atomic(os.path.join(out_dir, names[0]), Image.fromarray(decision.astype(np.uint8)))
        save_image_atomic(os.path.join(out_dir, names[1]), Image.fromarray(self.paint(image, probs)))
        return 0

    def outputs_note(self, extras):
        return 'class maps and overlays, legend.png'


class Softmax(Task):
    """Exactly one class per pixel: one-hot targets (all-zero rows: don't care, main.optimize's convention)."""
    decision = 'classes'
    weighting = ('median', median_frequency_weights, 'Class weights (median frequency)')

    def encode(self, label):
        targets = one_hot(label, self.num_classes)
        return targets, (label != IGNORE).astype(np.float32)

    def label_input(self):
        tf = tensorflow()
        return tf.placeholder(tf.float32, [None, None, None, self.num_classes], name='correct_label')

    def training_labels(self, label):
        return self.encode(label)[0]

    def train_ops(self, model, output, labels, learning_rate, weights=None, wrap_optimizer=None):
        """The model's Udacity optimize() (softmax cross-entropy; options only when set)."""
        options = {k: v for k, v in (('class_weights', weights), ('wrap_optimizer', wrap_optimizer)) if v is not None}
        return model.optimize(output, labels, learning_rate, self.num_classes, **options)

    def activate(self, logits):
        return tensorflow().nn.softmax(logits)

    def decide_op(self, probabilities):
        tf = tensorflow()
        return tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8)

    def decide(self, probs):
        return np.argmax(probs, axis=-1).astype(np.uint8)


def percent(value):
    """A fraction as points with one decimal, '-' for None (the --evaluate tables)."""
    return '-' if value is None else '{:.1f}'.format(100 * value)

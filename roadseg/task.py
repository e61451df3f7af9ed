"""What a run predicts, decided once: one Task object per kind of prediction, asked by training, validation,
evaluation, prediction, video and export, which never test dataset names, shapes or history keys.

    Binary    two classes (any two-class dataset): softmax, positive where p(class 1) > THRESHOLD; MaxF1/AP/IoU;
              KITTI road adds its submission files
    Classes   multi-class: softmax, argmax; confusion matrix, mean IoU; every class in its colour, with a legend
    Labels    multi-label: one sigmoid per class, boolean masks at THRESHOLD; per-label IoU/F1/MaxF1/AP

for_dataset() gives a new run's task, for_config() that of a trained run (config.json's "task"; runs from before
the key: Binary for KITTI road, else Classes). Importing this module loads no TensorFlow.
"""
import abc
import os
import re

import numpy as np
from PIL import Image

from .data.batches import one_hot
from .data.datasets import IGNORE, median_frequency_weights, positive_weights
from .data.datasets.kitti_road import mask_name
from .evaluation import palette, report
from .evaluation.metrics import THRESHOLD, ConfusionMatrix, RoadEvaluator, ThresholdSweep
from .system.files import InputError, save_image_atomic

KITTI_NAME = re.compile(r'^(um|umm|uu)_\d+$')
KITTI_COLORS = ((0, 0, 0), (0, 255, 0))  # as displayed: road in translucent green


def _tf():
    from .system.tfcompat import tf
    return tf


def minimize(loss, learning_rate, wrap_optimizer=None):
    """Adam on loss plus the graph's REGULARIZATION_LOSSES (as main.optimize does); returns the train op."""
    tf = _tf()
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
        """The loss weights --class-weights kind asks for (None: unweighted); InputError if it does not apply."""
        if kind is not None:
            raise InputError('--class-weights {} does not apply to a {} run'.format(kind, self.name))
        return None

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

    def encode(self, label):
        targets = one_hot(label, self.num_classes)
        return targets, (label != IGNORE).astype(np.float32)

    def label_input(self):
        tf = _tf()
        return tf.placeholder(tf.float32, [None, None, None, self.num_classes], name='correct_label')

    def training_labels(self, label):
        return self.encode(label)[0]

    def train_ops(self, model, output, labels, learning_rate, weights=None, wrap_optimizer=None):
        """The model's Udacity optimize() (softmax cross-entropy; options only when set)."""
        options = {k: v for k, v in (('class_weights', weights), ('wrap_optimizer', wrap_optimizer)) if v is not None}
        return model.optimize(output, labels, learning_rate, self.num_classes, **options)

    def class_weights(self, kind, dataset):
        if kind != 'median':
            return super(Softmax, self).class_weights(kind, dataset)
        weights = median_frequency_weights(dataset, 'train')
        print('Class weights (median frequency): ' + ', '.join(
            '{} {:.3f}'.format(n, w) for n, w in zip(self.class_names, weights)))
        return weights

    def activate(self, logits):
        return _tf().nn.softmax(logits)

    def decide_op(self, probabilities):
        tf = _tf()
        return tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8)

    def decide(self, probs):
        return np.argmax(probs, axis=-1).astype(np.uint8)


class BinaryScores:
    """The MaxF1/AP threshold sweep, and IoU and the rubric at THRESHOLD, per category (KITTI's um/umm/uu)."""

    def __init__(self):
        self.evaluator = RoadEvaluator()

    def add(self, probs, classes, category):
        """probs (H, W, 2), classes (H, W) 0/1/IGNORE; returns the image's F1 at THRESHOLD."""
        return self.evaluator.add(probs[..., 1], classes, category or 'all')

    def results(self):
        return self.evaluator.results()


class Binary(Softmax):
    """Two classes, positive (class 1) where p > THRESHOLD; kitti: KITTI road (green overlay, no legend,
    submission files for KITTI-named images)."""
    name = 'binary'
    curve_metric = 'max_f1'
    history_curves = (('val_max_f1', 'validation MaxF1'), ('val_iou', 'validation IoU at {:.2f}'.format(THRESHOLD)))

    def __init__(self, class_names=('background', 'road'), colors=KITTI_COLORS, kitti=True):
        super(Binary, self).__init__(class_names, KITTI_COLORS if kitti else colors)
        self.kitti = kitti

    def scores(self):
        return BinaryScores()

    def keep_value(self, results):
        return results['overall']['iou']

    def key_metrics(self, results):
        return {'max_f1': 100 * results['overall']['max_f1'], 'iou': 100 * results['overall']['iou']}

    def epoch_values(self, results):
        overall = results['overall']
        pos, neg = overall['road_pixels'], overall['nonroad_pixels']
        fraction = (overall['road_labeled_road'] * pos + overall['nonroad_labeled_road'] * neg) / max(pos + neg, 1)
        return dict(iou=overall['iou'], max_f1=overall['max_f1'], ap=overall['average_precision'],
                    max_f1_threshold=overall['max_f1_threshold'], road_fraction=fraction)

    def epoch_line(self, label, prefix, e, suffix):
        return '  {} IoU {:.3f} at threshold {:.2f}, MaxF1 {:.2f} (at {:.2f}), AP {:.2f} ({} images, {:.0f} s){}'.format(
            label, e[prefix + 'iou'], THRESHOLD, 100 * e[prefix + 'max_f1'], e[prefix + 'max_f1_threshold'],
            100 * e[prefix + 'ap'], e[prefix + 'images'], e[prefix + 'seconds'], suffix)

    def kept_numbers(self, e):
        return 'IoU {:.3f} at threshold {:.2f}, MaxF1 {:.2f}, AP {:.2f}'.format(
            e['val_iou'], THRESHOLD, 100 * e['val_max_f1'], 100 * e['val_ap'])

    def warning(self, e):
        fraction = e.get('val_road_fraction')
        if fraction is not None and (fraction < 0.01 or fraction > 0.99):
            return ('warning: the kept model marks {} ({:.1%} of the validation pixels are called {} at threshold '
                    '{:.2f}); train longer or check the data'.format(
                        'almost nothing' if fraction < 0.01 else 'almost everything', fraction, self.class_names[1],
                        THRESHOLD))
        return None

    def print_results(self, results):
        print('{:8s} {:>7s} {:>7s} {:>7s} {:>7s} {:>6s} {:>10s} {:>13s} {}'.format(
            'category', 'MaxF1', 'AP', 'prec', 'recall', 'IoU', 'pos->pos', 'neg->pos', 'rubric'))
        for cat in [c for c in sorted(results) if isinstance(results[c], dict)]:
            r = results[cat]
            print('{:8s} {:7.2f} {:7.2f} {:7.2f} {:7.2f} {:6.3f} {:10.3f} {:13.3f} {}'.format(
                cat, 100 * r['max_f1'], 100 * r['average_precision'], 100 * r['precision'], 100 * r['recall'],
                r['iou'], r['road_labeled_road'], r['nonroad_labeled_road'], 'pass' if r['rubric_passed'] else 'FAIL'))

    def plot(self, out_dir, scores, results):
        report.plot_pr_curve(os.path.join(out_dir, 'pr_curve.png'), scores.evaluator, self.class_names[1])

    def paint(self, image, probs):
        return palette.road_overlay(image, probs[..., 1], THRESHOLD, self.colors[1])

    def legend(self):
        return None if self.kitti else super(Binary, self).legend()

    def error_overlay(self, image, probs, label):
        """Green found, red negative called positive, blue positive missed; ignored pixels as they are."""
        pred = probs[..., 1] > THRESHOLD
        return palette.mark(image, (((pred & (label == 1)), (0, 255, 0)), ((pred & (label == 0)), (255, 0, 0)),
                                    ((~pred & (label == 1)), (0, 0, 255))))

    def output_names(self, path):
        """Class map, overlay and, for KITTI road and a KITTI name such as um_000000.png, the submission
        file um_road_000000.png."""
        stem = os.path.splitext(os.path.basename(path))[0]
        return super(Binary, self).output_names(path) + (
            [mask_name(stem) + '.png'] if self.kitti and KITTI_NAME.match(stem) else [])

    def write_outputs(self, out_dir, path, image, probs, decision):
        """Also the KITTI submission file (8-bit road probability, round(255 p)) when output_names has one."""
        super(Binary, self).write_outputs(out_dir, path, image, probs, decision)
        names = self.output_names(path)
        if len(names) < 3:
            return 0
        road = np.clip(np.rint(probs[..., 1] * 255.0), 0, 255).astype(np.uint8)
        save_image_atomic(os.path.join(out_dir, names[2]), Image.fromarray(road))
        return 1

    def outputs_note(self, extras):
        return 'class maps and overlays, {} KITTI submission files'.format(extras) if self.kitti else \
            super(Binary, self).outputs_note(extras)


class ClassScores:
    """One confusion matrix: per-class IoU, mean IoU, pixel and mean class accuracy."""

    def __init__(self, class_names):
        self.class_names = list(class_names)
        self.matrix = ConfusionMatrix(len(self.class_names))

    def add(self, probs, classes, category=None):
        """probs (H, W, C), classes (H, W) with IGNORE; returns the image's mean IoU (1 with no labels)."""
        miou = self.matrix.add(np.argmax(probs, axis=-1).astype(np.uint8), classes)
        return 1.0 if miou is None else miou

    def results(self):
        return self.matrix.results(self.class_names)


class Classes(Softmax):
    """Any number of classes, each pixel its argmax class."""
    name = 'classes'

    def scores(self):
        return ClassScores(self.class_names)

    def keep_value(self, results):
        return results['mean_iou'] or 0.0

    def epoch_values(self, results):
        return dict(iou=results['mean_iou'] or 0.0, pixel_accuracy=results['pixel_accuracy'] or 0.0,
                    mean_class_accuracy=results['mean_class_accuracy'] or 0.0)

    def epoch_line(self, label, prefix, e, suffix):
        return '  {} mIoU {:.3f}, pixel accuracy {:.3f}, mean class accuracy {:.3f} ({} images, {:.0f} s){}'.format(
            label, e[prefix + 'iou'], e[prefix + 'pixel_accuracy'], e[prefix + 'mean_class_accuracy'],
            e[prefix + 'images'], e[prefix + 'seconds'], suffix)

    def kept_numbers(self, e):
        return 'mIoU {:.3f}, pixel accuracy {:.3f}'.format(e['val_iou'], e['val_pixel_accuracy'])

    def print_results(self, results):
        print('{:16s} {:>6s} {:>8s}'.format('class', 'IoU', 'accuracy'))
        for name, iou, acc in zip(results['classes'], results['class_iou'], results['class_accuracy']):
            print('{:16s} {:>6s} {:>8s}'.format(name, _pct(iou), _pct(acc)))
        print('mean IoU {}, pixel accuracy {}, mean class accuracy {}'.format(
            _pct(results['mean_iou']), _pct(results['pixel_accuracy']), _pct(results['mean_class_accuracy'])))

    def paint(self, image, probs):
        """Every pixel tinted with its class's colour."""
        return palette.overlay(image, self.decide(probs), self.colors)

    def error_overlay(self, image, probs, label):
        """Green right, red wrong; ignored pixels as they are."""
        pred, labelled = self.decide(probs), label != IGNORE
        return palette.mark(image, (((pred == label) & labelled, (0, 255, 0)),
                                    ((pred != label) & labelled, (255, 0, 0))))


class LabelScores:
    """Per label, the threshold sweep (ThresholdSweep: MaxF1, AP) and the counts at THRESHOLD (IoU, precision,
    recall, F1); means over the labels where each is defined."""

    def __init__(self, class_names):
        self.class_names = list(class_names)
        self.sweep = ThresholdSweep()

    def add(self, probs, label, category=None):
        """probs float (H, W, C), label uint8 (H, W, C) 0/1/IGNORE; returns the image's mean IoU at THRESHOLD over
        the labels in its label or its prediction (1 with none)."""
        ious = []
        for c, name in enumerate(self.class_names):
            tp, fp, fn, _ = self.sweep.add(name, probs[..., c], label[..., c] == 1, label[..., c] == 0)
            if tp + fp + fn:
                ious.append(tp / (tp + fp + fn))
        return float(np.mean(ious)) if ious else 1.0

    def results(self):
        """JSON-ready dict: per label (lists in class order; None where undefined) iou, precision, recall, f1
        at THRESHOLD, max_f1 (and its threshold) and ap over the sweep, positive pixels; their means."""
        out = {'classes': self.class_names}
        rows = [self._label(name) for name in self.class_names]
        for key in ('iou', 'precision', 'recall', 'f1', 'max_f1', 'max_f1_threshold', 'ap', 'pixels'):
            out['class_' + key] = [row[key] for row in rows]
        for key in ('iou', 'precision', 'recall', 'f1', 'max_f1', 'ap'):
            defined = [row[key] for row in rows if row[key] is not None]
            out['mean_' + key] = float(np.mean(defined)) if defined else None
        return out

    def _label(self, name):
        if name not in self.sweep.half:
            return dict.fromkeys(('iou', 'precision', 'recall', 'f1', 'max_f1', 'max_f1_threshold', 'ap', 'pixels'))
        tp, fp, fn, _ = (int(v) for v in self.sweep.half[name])
        swept = self.sweep.summary([name]) if tp + fn else None  # MaxF1 and AP need positive pixels
        return {'iou': _share(tp, tp + fp + fn), 'precision': _share(tp, tp + fp), 'recall': _share(tp, tp + fn),
                'f1': _share(2 * tp, 2 * tp + fp + fn), 'max_f1': swept and swept['max_f1'],
                'max_f1_threshold': swept and swept['max_f1_threshold'], 'ap': swept and swept['average_precision'],
                'pixels': tp + fn}


def _share(part, whole):
    return part / whole if whole else None


def label_overlay(image, masks, colors, alpha=0.5, stripe=4):
    """uint8 (H, W, 3) image with each label's colour blended in where its boolean (H, W, C) mask is set; where
    labels overlap, diagonal stripes (stripe px wide) take each one's colour in turn, so all of them show."""
    count = masks.sum(axis=-1)
    ys, xs = np.indices(masks.shape[:2])
    turn = ((xs + ys) // stripe) % np.maximum(count, 1)  # which of the pixel's labels shows here
    rank = np.cumsum(masks, axis=-1) - 1                  # each set label's rank among the pixel's labels
    chosen = np.argmax(masks & (rank == turn[..., None]), axis=-1)
    painted = np.asarray(colors, np.float32)[chosen]
    blend = np.rint(image.astype(np.float32) * (1 - alpha) + painted * alpha)
    return np.where((count > 0)[..., None], np.clip(blend, 0, 255), image).astype(np.uint8)


class Labels(Task):
    """Any number of labels per pixel (overlapping objects): one sigmoid per label, a label's mask where its
    probability > THRESHOLD. Targets and the loss mask are per label: a label's IGNORE pixels are don't care."""
    name = 'labels'
    decision = 'masks'
    history_curves = (('val_iou', 'validation mean IoU at {:.2f}'.format(THRESHOLD)),
                      ('val_max_f1', 'validation mean MaxF1'))

    def encode(self, label):
        return (label == 1).astype(np.float32), (label != IGNORE).astype(np.float32)

    def label_input(self):
        tf = _tf()
        shape = [None, None, None, self.num_classes]
        return (tf.placeholder(tf.float32, shape, name='correct_label'),
                tf.placeholder(tf.float32, shape, name='loss_mask'))

    def training_labels(self, label):
        return self.encode(label)

    def loss(self, logits, targets, loss_mask, pos_weight=None):
        """Binary cross-entropy of each label's sigmoid, averaged over the pixels and labels loss_mask keeps;
        pos_weight: optional (C,) weights of the positive term (tf.nn.weighted_cross_entropy_with_logits's
        stable form: (1 - z) x + (1 + (q - 1) z) (log(1 + exp(-|x|)) + max(-x, 0)))."""
        tf = _tf()
        q = 1.0 if pos_weight is None else tf.constant(pos_weight, tf.float32, [self.num_classes])
        x, z = logits, targets
        per = (1 - z) * x + (1 + (q - 1) * z) * (tf.log1p(tf.exp(-tf.abs(x))) + tf.nn.relu(-x))
        return tf.divide(tf.reduce_sum(per * loss_mask), tf.maximum(tf.reduce_sum(loss_mask), 1.0),
                         name='cross_entropy_loss')

    def train_ops(self, model, output, labels, learning_rate, weights=None, wrap_optimizer=None):
        loss = self.loss(output, labels[0], labels[1], weights)
        return output, minimize(loss, learning_rate, wrap_optimizer), loss

    def class_weights(self, kind, dataset):
        if kind != 'balanced':
            return super(Labels, self).class_weights(kind, dataset)
        weights = positive_weights(dataset, 'train')
        print('Positive weights (negatives / positives per label): ' + ', '.join(
            '{} {:.3f}'.format(n, w) for n, w in zip(self.class_names, weights)))
        return weights

    def activate(self, logits):
        return _tf().sigmoid(logits)

    def decide_op(self, probabilities):
        return _tf().greater(probabilities, THRESHOLD)

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
        keys = ('iou', 'precision', 'recall', 'f1', 'max_f1', 'ap')
        print('{:16s}'.format('label') + ''.join('{:>10s}'.format(k.replace('_', '')) for k in keys))
        for i, name in enumerate(results['classes']):
            print('{:16s}'.format(name) + ''.join('{:>10s}'.format(_pct(results['class_' + k][i])) for k in keys))
        print('{:16s}'.format('mean') + ''.join('{:>10s}'.format(_pct(results['mean_' + k])) for k in keys))

    def paint(self, image, probs):
        return label_overlay(image, self.decide(probs), self.colors)

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


def _pct(value):
    return '-' if value is None else '{:.1f}'.format(100 * value)


KINDS = {cls.name: cls for cls in (Binary, Classes, Labels)}


def for_dataset(dataset):
    """The task of a new run on dataset: Labels for a multi-label dataset, Binary for two classes, else Classes."""
    if getattr(dataset, 'multi_label', False):
        return Labels(dataset.class_names, dataset.colors)
    if dataset.num_classes == 2:
        return Binary(dataset.class_names, dataset.colors, kitti=dataset.name == 'kitti_road')
    return Classes(dataset.class_names, dataset.colors)


def for_config(config, path, num_classes=None):
    """The task of a trained run from its config (read from path, named in errors); num_classes: the model's,
    checked when given. Runs from before config.json's "task": Binary for KITTI road (dataset kitti_road, or
    neither class_names nor class_colors), else Classes. InputError for an unknown task, lists that do not
    fit, or a colour that is not RGB."""
    names, colors = config.get('class_names'), config.get('class_colors')
    kind = config.get('task')
    kitti = config.get('dataset', 'kitti_road') == 'kitti_road'
    if kind is None:
        kind = 'binary' if kitti or (names is None and colors is None) else 'classes'
    if kind not in KINDS:
        raise InputError('{}: unknown task {!r} (one of {})'.format(path, kind, ', '.join(sorted(KINDS))))
    if kind == 'binary' and names is None and colors is None:
        names, colors = ['background', 'road'], [list(c) for c in KITTI_COLORS]
    count = num_classes if num_classes is not None else len(names) if isinstance(names, list) else None
    if not isinstance(names, list) or not isinstance(colors, list) or not len(names) == len(colors) == count:
        raise InputError('{}: class_names and class_colors must be lists of {} entries, one per class of the model'
                         .format(path, count))
    for color in colors:
        if not (isinstance(color, list) and len(color) == 3 and
                all(isinstance(v, int) and 0 <= v <= 255 for v in color)):
            raise InputError('{}: class colour {!r} is not [R, G, B] in 0..255'.format(path, color))
    if kind == 'binary':
        if len(names) != 2:
            raise InputError('{}: a binary run has 2 classes, not {}'.format(path, len(names)))
        return Binary(names, colors, kitti=kitti)
    return KINDS[kind](names, colors)


def kitti():
    """The task of a KITTI road run (helper.py's Udacity path)."""
    return Binary()

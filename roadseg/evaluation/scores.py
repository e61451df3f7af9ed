"""The metric state of each task kind (roadseg/task/): add(probs, label, category) scores one image and returns
its number, results() the JSON-ready metrics of all. Built on roadseg/evaluation/metrics.py."""
import numpy as np

from .metrics import THRESHOLD, ConfusionMatrix, RoadEvaluator, ThresholdSweep


class BinaryScores:
    """The MaxF1/AP threshold sweep, and IoU and the rubric at THRESHOLD, per category (KITTI's um/umm/uu)."""

    def __init__(self):
        self.evaluator = RoadEvaluator()

    def add(self, probs, classes, category):
        """probs (H, W, 2), classes (H, W) 0/1/IGNORE; returns the image's F1 at THRESHOLD."""
        return self.evaluator.add(probs[..., 1], classes, category or 'all')

    def results(self):
        return self.evaluator.results()


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


class LabelScores:
    """Per label, the threshold sweep (ThresholdSweep: MaxF1, AP) and the counts at THRESHOLD (IoU, precision,
    recall, F1), and the recall on overlaps (pixels where two or more labels are members); means over the labels
    where each is defined."""

    def __init__(self, class_names):
        self.class_names = list(class_names)
        self.sweep = ThresholdSweep()
        self.overlap = np.zeros((len(self.class_names), 2), np.int64)  # per label: [found, members] on overlaps

    def add(self, probs, label, category=None):
        """probs float (H, W, C), label uint8 (H, W, C) 0/1/IGNORE; returns the image's mean IoU at THRESHOLD over
        the labels in its label or its prediction (1 with none)."""
        ious = []
        for c, name in enumerate(self.class_names):
            tp, fp, fn, _ = self.sweep.add(name, probs[..., c], label[..., c] == 1, label[..., c] == 0)
            if tp + fp + fn:
                ious.append(tp / (tp + fp + fn))
        members = (label == 1) & (np.sum(label == 1, axis=-1, keepdims=True) >= 2)
        self.overlap[:, 0] += np.sum(members & (probs > THRESHOLD), axis=(0, 1))
        self.overlap[:, 1] += np.sum(members, axis=(0, 1))
        return float(np.mean(ious)) if ious else 1.0

    def results(self):
        """JSON-ready dict: per label (lists in class order; None where undefined) iou, precision, recall, f1
        at THRESHOLD, max_f1 (and its threshold) and ap over the sweep, positive pixels, overlap_recall (the
        recall at THRESHOLD on the label's pixels where another label is a member too); their means."""
        out = {'classes': self.class_names}
        rows = [self._label(name) for name in self.class_names]
        for row, (found, members) in zip(rows, self.overlap):
            row['overlap_recall'] = _share(int(found), int(members))
        for key in ('iou', 'precision', 'recall', 'f1', 'max_f1', 'max_f1_threshold', 'ap', 'pixels',
                    'overlap_recall'):
            out['class_' + key] = [row[key] for row in rows]
        for key in ('iou', 'precision', 'recall', 'f1', 'max_f1', 'ap', 'overlap_recall'):
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

"""Segmentation metrics: a multi-class confusion matrix; the threshold sweep of a binary decision (KITTI road
MaxF1/AP/IoU and the Udacity rubric; each label of a multi-label run).

ConfusionMatrix: counts[label, prediction] over labelled pixels (ignore_index left out), as CamVid and
Cityscapes results are reported: per-class IoU TP / (TP + FP + FN), mean IoU, global pixel accuracy and
mean class accuracy (recall averaged over classes).

Road metrics, in perspective space like the KITTI devkit and KittiSeg's kitti_eval.py: thresholds
t_k = k/255 (k = 0..255), a pixel is predicted road at t_k when prob >= t_k, "don't care" pixels are
left out; AP is the 11-point interpolated average precision (max precision at recall >= 0, 0.1, ..., 1;
0 where never reached). IoU and the rubric use prob > THRESHOLD.
"""
import numpy as np

LEVELS = 256
THRESHOLD = 0.5  # road where p(road) > 0.5 (the argmax of two classes), as training selects and outputs


def _hist(prob):
    """Bin k holds the pixels with k/255 <= prob < (k+1)/255 (bin 255 holds prob >= 1)."""
    idx = np.clip(np.floor(prob * (LEVELS - 1)), 0, LEVELS - 1).astype(np.int64)
    return np.bincount(idx, minlength=LEVELS)


class ThresholdSweep:
    """The threshold sweep of any binary decision, per key (a KITTI category, a label): histograms of the
    positive and the negative pixels' probabilities over t_k = k/255 and the counts [tp, fp, fn, tn] at
    prob > THRESHOLD; summary(keys) gives summarize()'s metrics of those keys' pixels together."""

    def __init__(self):
        self.pos = {}   # key -> histogram of positive-pixel probabilities
        self.neg = {}   # key -> histogram of negative-pixel probabilities
        self.half = {}  # key -> [tp, fp, fn, tn] at prob > THRESHOLD

    def add(self, key, prob, positive, negative):
        """prob: float (H, W); positive, negative: boolean (H, W) (pixels in neither are left out). Returns
        this image's int64 [tp, fp, fn, tn] at THRESHOLD."""
        if prob.shape != positive.shape:
            raise ValueError('prediction {} and label {} differ in shape'.format(prob.shape, positive.shape))
        self.pos.setdefault(key, np.zeros(LEVELS, np.int64))[:] += _hist(prob[positive])
        self.neg.setdefault(key, np.zeros(LEVELS, np.int64))[:] += _hist(prob[negative])
        pred = prob > THRESHOLD
        counts = np.array([np.sum(pred & positive), np.sum(pred & negative), np.sum(~pred & positive),
                           np.sum(~pred & negative)], np.int64)
        self.half.setdefault(key, np.zeros(4, np.int64))[:] += counts
        return counts

    def summary(self, keys):
        return summarize(sum(self.pos[k] for k in keys), sum(self.neg[k] for k in keys),
                         sum(self.half[k] for k in keys))


class RoadEvaluator(ThresholdSweep):
    """The sweep of the road class per KITTI category; results() gives the metrics."""

    def add(self, prob, classes, category='all'):
        """prob: float (H, W) road probability; classes: uint8 (H, W) 0/1/IGNORE. Returns this image's F1 at THRESHOLD."""
        tp, fp, fn, _ = super(RoadEvaluator, self).add(category, prob, classes == 1, classes == 0)
        return float(2 * tp / max(2 * tp + fp + fn, 1))

    def results(self):
        """{'overall': {...}, 'um': {...}, ...}; see summarize()."""
        out = {cat: self.summary([cat]) for cat in sorted(self.pos)}
        out['overall'] = self.summary(list(self.pos))
        return out


def pr_curve(pos_hist, neg_hist):
    """(thresholds, precision, recall) over t_k = k/255."""
    tp = np.cumsum(pos_hist[::-1])[::-1].astype(np.float64)   # road pixels with prob >= t_k
    fp = np.cumsum(neg_hist[::-1])[::-1].astype(np.float64)   # non-road pixels with prob >= t_k
    positives = max(float(pos_hist.sum()), 1.0)
    precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1.0), 1.0)
    recall = tp / positives
    return np.arange(LEVELS) / (LEVELS - 1.0), precision, recall


def summarize(pos_hist, neg_hist, half):
    """Metrics dict: max_f1, max_f1_threshold, average_precision, precision/recall at MaxF1, iou, rubric."""
    thresholds, precision, recall = pr_curve(pos_hist, neg_hist)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    best = int(np.argmax(f1))
    ap = np.mean([precision[recall >= level].max() if (recall >= level).any() else 0.0
                  for level in np.linspace(0, 1, 11)])
    tp, fp, fn, tn = (int(x) for x in half)
    road_as_road = tp / max(tp + fn, 1)
    nonroad_as_road = fp / max(fp + tn, 1)
    return {
        'max_f1': float(f1[best]),
        'max_f1_threshold': float(thresholds[best]),
        'precision': float(precision[best]),
        'recall': float(recall[best]),
        'average_precision': float(ap),
        'iou': tp / max(tp + fp + fn, 1),
        'road_labeled_road': road_as_road,
        'nonroad_labeled_road': nonroad_as_road,
        'rubric_passed': bool(road_as_road >= 0.8 and nonroad_as_road <= 0.2),
        'road_pixels': int(pos_hist.sum()),
        'nonroad_pixels': int(neg_hist.sum()),
    }


def confusion(pred, label, num_classes, ignore_index=255):
    """int64 (C, C) counts[label, prediction] of one pair of integer (H, W) class maps, ignore pixels left out."""
    pred, label = np.asarray(pred), np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError('prediction {} and label {} differ in shape'.format(pred.shape, label.shape))
    keep = label != ignore_index
    truth, guess = label[keep].astype(np.int64), pred[keep].astype(np.int64)
    for name, values in (('label', truth), ('prediction', guess)):
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise ValueError('{} value {} is not a class index 0..{} (ignore {})'.format(
                name, bad[0], num_classes - 1, ignore_index))
    return np.bincount(truth * num_classes + guess, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def _ratio(num, den):
    """num / den as float64, nan where den is 0."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.where(den > 0, num / np.maximum(den, 1.0), np.nan)


def class_scores(counts):
    """(iou, accuracy), float64 (C,) each, from (C, C) counts[label, prediction].

    iou = TP / (TP + FP + FN), nan for a class in neither labels nor predictions; accuracy (recall)
    = TP / (TP + FN), nan for a class absent from the labels.
    """
    tp = np.diag(counts)
    labelled, predicted = counts.sum(axis=1), counts.sum(axis=0)
    return _ratio(tp, labelled + predicted - tp), _ratio(tp, labelled)


def _mean(values):
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else None


def _listed(values):
    return [None if np.isnan(v) else float(v) for v in values]


class ConfusionMatrix:
    """Accumulates counts[label, prediction] over images; results() gives the multi-class metrics.

    Mean IoU averages the classes present in the labels or the predictions (a class in neither has no
    IoU and is left out, not counted as 0 or 1); mean class accuracy averages the classes present in
    the labels; global pixel accuracy is correct / labelled pixels. Undefined values are None.
    """

    def __init__(self, num_classes, ignore_index=255):
        if not 0 < num_classes <= ignore_index:
            raise ValueError('need 0 < num_classes <= ignore_index, got {} and {}'.format(num_classes, ignore_index))
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.counts = np.zeros((num_classes, num_classes), np.int64)

    def add(self, pred, label):
        """pred, label: integer (H, W) class maps. Returns this image's mean IoU (None: no labelled pixel)."""
        counts = confusion(pred, label, self.num_classes, self.ignore_index)
        self.counts += counts
        return _mean(class_scores(counts)[0])

    def results(self, class_names=None):
        """JSON-ready dict: mean_iou, pixel_accuracy, mean_class_accuracy, per-class lists, pixels, counts."""
        names = list(class_names) if class_names is not None else [str(i) for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise ValueError('{} class names for {} classes'.format(len(names), self.num_classes))
        iou, accuracy = class_scores(self.counts)
        pixels = int(self.counts.sum())
        return {
            'mean_iou': _mean(iou),
            'pixel_accuracy': float(np.trace(self.counts)) / pixels if pixels else None,
            'mean_class_accuracy': _mean(accuracy),
            'classes': names,
            'class_iou': _listed(iou),
            'class_accuracy': _listed(accuracy),
            'class_pixels': self.counts.sum(axis=1).tolist(),
            'pixels': pixels,
            'counts': self.counts.tolist(),
        }

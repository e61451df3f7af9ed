"""Validation during training: the per-epoch scores that choose the kept epoch, their lines, the final summary.

Two splits when the data has a selection split (KITTI: splits/select.txt, carved out of the training images):
the selection split chooses the kept epoch (history keys val_*), and the report split (splits/val.txt) is only
measured (report_*), so the number reported never took part in a choice. Without one (the bundled sample,
multi-class data), the validation split does both and there are no report_* keys.
"""
import time

from . import evaluate as evaluation
from .evaluate import THRESHOLD
from .inference import predict_probabilities
from .tfcompat import tf


class Validator:
    """Scores the live model after each epoch (road: THRESHOLD; classes: argmax) on select_samples (which
    choose) and, when there are any, report_samples (which are only reported)."""

    def __init__(self, sess, g, dataset, select_samples, report_samples, image_shape):
        self.sess, self.g, self.dataset, self.image_shape = sess, g, dataset, image_shape
        self.select, self.report = select_samples, report_samples

    def predict(self, images):
        return predict_probabilities(self.sess, self.g['probabilities'], self.g['image_input'], images,
                                     self.image_shape, 4, {self.g['keep_prob']: 1.0})

    def _score(self, samples, prefix, entry, desc):
        t = time.time()
        scores = evaluation.scores_for(self.dataset)
        worst = evaluation.score(samples, self.dataset, self.predict, scores, desc=desc)
        results = scores.results()
        if scores.road:
            overall = results['overall']
            values = dict(iou=overall['iou'], max_f1=overall['max_f1'], ap=overall['average_precision'],
                          max_f1_threshold=overall['max_f1_threshold'], road_fraction=_predicted_road(overall))
        else:
            values = dict(iou=results['mean_iou'] or 0.0, pixel_accuracy=results['pixel_accuracy'] or 0.0,
                          mean_class_accuracy=results['mean_class_accuracy'] or 0.0)
        values.update(seconds=round(time.time() - t, 1), images=len(samples))
        entry.update({prefix + k: v for k, v in values.items()})
        return scores, worst

    def run(self, entry):
        """Adds val_* (the choosing split) and report_* metrics to entry; returns (scores, worst cases) of the
        report split if there is one, else of the choosing split; None without validation images."""
        if not self.select:
            return None
        result = self._score(self.select, 'val_', entry, 'Selection' if self.report else 'Validation')
        if self.report:
            result = self._score(self.report, 'report_', entry, 'Report split')
        return result

    @staticmethod
    def print_line(entry):
        """The validation line(s) of an epoch; the threshold is printed because it decides what is road."""
        best = ', best so far' if entry.get('best') else ''
        if 'report_iou' in entry:
            print(_line('selection', 'val_', entry, best))
            print(_line('report split', 'report_', entry, ''))
        elif 'val_iou' in entry:
            print(_line('validation', 'val_', entry, best))

    @staticmethod
    def summary(entry, result):
        values = [tf.Summary.Value(tag='loss/train', simple_value=entry['loss'])]
        if result is not None:
            values += [tf.Summary.Value(tag=tag + k[len(prefix):], simple_value=v) for k, v in sorted(entry.items())
                       for prefix, tag in (('val_', 'val/'), ('report_', 'report/'))
                       if k.startswith(prefix) and not k.endswith(('_seconds', '_images'))]
            f1, name, image, prob, classes = result[1][0]
            values.append(tf.Summary.Value(tag='val/worst_overlay', image=evaluation.png_summary(
                evaluation.error_overlay(image, prob, classes))))
        return values


def _line(label, prefix, e, suffix):
    if prefix + 'pixel_accuracy' in e:
        return '  {} mIoU {:.3f}, pixel accuracy {:.3f}, mean class accuracy {:.3f} ({} images, {:.0f} s){}'.format(
            label, e[prefix + 'iou'], e[prefix + 'pixel_accuracy'], e[prefix + 'mean_class_accuracy'],
            e[prefix + 'images'], e[prefix + 'seconds'], suffix)
    return '  {} IoU {:.3f} at threshold {:.2f}, MaxF1 {:.2f} (at {:.2f}), AP {:.2f} ({} images, {:.0f} s){}'.format(
        label, e[prefix + 'iou'], THRESHOLD, 100 * e[prefix + 'max_f1'], e[prefix + 'max_f1_threshold'],
        100 * e[prefix + 'ap'], e[prefix + 'images'], e[prefix + 'seconds'], suffix)


def _predicted_road(metrics):
    """Fraction of labelled pixels called road at THRESHOLD."""
    road, other = metrics['road_pixels'], metrics['nonroad_pixels']
    return (metrics['road_labeled_road'] * road + metrics['nonroad_labeled_road'] * other) / max(road + other, 1)


def summarize(history_path, num_val):
    """The final lines: which epoch was kept, its validation numbers (and the report split's, for the kept and
    the last epoch), and a warning for a useless model. num_val: images of the choosing split."""
    entries = evaluation.read_history(history_path)
    kept = [e for e in entries if e.get('best')]
    if not kept or 'val_iou' not in kept[-1]:
        print('Kept the last epoch ({} of {}): no validation images to choose by'.format(
            entries[-1]['epoch'] if entries else 0, len(entries)))
        return
    e = kept[-1]
    few = '; too few for a reliable number' if num_val < 10 else ''
    chooser = 'selection' if 'report_iou' in e else 'validation'
    if 'val_pixel_accuracy' in e:
        print('Kept epoch {} of {}: {} mIoU {:.3f}, pixel accuracy {:.3f} ({} images{})'.format(
            e['epoch'], entries[-1]['epoch'], chooser, e['val_iou'], e['val_pixel_accuracy'], num_val, few))
    else:
        print('Kept epoch {} of {}: {} IoU {:.3f} at threshold {:.2f}, MaxF1 {:.2f}, AP {:.2f} ({} images{})'
              .format(e['epoch'], entries[-1]['epoch'], chooser, e['val_iou'], THRESHOLD, 100 * e['val_max_f1'],
                      100 * e['val_ap'], num_val, few))
    if 'report_iou' in e:
        for what, r in (('kept epoch {}'.format(e['epoch']), e), ('last epoch {}'.format(entries[-1]['epoch']),
                                                                  entries[-1])):
            if 'report_iou' in r:
                print(_line('report split, ' + what + ':', 'report_', r, '').strip())
    fraction = e.get('val_road_fraction')
    if fraction is not None and (fraction < 0.01 or fraction > 0.99):
        print('warning: the kept model marks {} ({:.1%} of the validation pixels are called road at threshold '
              '{:.2f}); train longer or check the data'.format('almost nothing' if fraction < 0.01 else
                                                               'almost everything', fraction, THRESHOLD))

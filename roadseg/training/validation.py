"""Validation during training: the per-epoch scores that choose the kept epoch, their lines, the final summary.

Two splits when the data has a selection split (KITTI: splits/select.txt, carved out of the training images):
the selection split chooses the kept epoch (history keys val_*), and the report split (splits/val.txt) is only
measured (report_*), so the number reported never took part in a choice. Without one (the bundled sample,
multi-class data), the validation split does both and there are no report_* keys.
"""
import time

from ..evaluation import report
from ..model.prediction import predict_probabilities
from ..system.tfcompat import tf


class Validator:
    """Scores the live model after each epoch, as the run's task says, on select_samples (which choose) and,
    when there are any, report_samples (which are only reported)."""

    def __init__(self, sess, graph, dataset, task, select_samples, report_samples, image_shape):
        self.sess, self.graph, self.dataset, self.task, self.image_shape = sess, graph, dataset, task, image_shape
        self.select, self.report = select_samples, report_samples

    def predict(self, images):
        return predict_probabilities(self.sess, self.graph.probabilities, self.graph.image_input, images,
                                     self.image_shape, 4, {self.graph.keep_prob: 1.0})

    def _score(self, samples, prefix, entry, desc):
        t = time.time()
        scores = self.task.scores()
        worst = report.score(samples, self.dataset, self.predict, scores, desc=desc)
        values = self.task.epoch_values(scores.results())
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

    def print_line(self, entry):
        """The validation line(s) of an epoch (a road run's name the threshold, which decides what is road)."""
        best = ', best so far' if entry.get('best') else ''
        if self.report:
            print(self.task.epoch_line('selection', 'val_', entry, best))
            print(self.task.epoch_line('report split', 'report_', entry, ''))
        elif self.select:
            print(self.task.epoch_line('validation', 'val_', entry, best))

    def summary(self, entry, result):
        values = [tf.Summary.Value(tag='loss/train', simple_value=entry['loss'])]
        if result is not None:
            values += [tf.Summary.Value(tag=tag + k[len(prefix):], simple_value=v) for k, v in sorted(entry.items())
                       for prefix, tag in (('val_', 'val/'), ('report_', 'report/'))
                       if k.startswith(prefix) and not k.endswith(('_seconds', '_images'))]
            f1, name, image, prob, classes = result[1][0]
            values.append(tf.Summary.Value(tag='val/worst_overlay', image=report.png_summary(
                self.task.error_overlay(image, prob, classes))))
        return values


def summarize(history_path, num_val, task):
    """The final lines: which epoch was kept, its validation numbers (and the report split's, for the kept and
    the last epoch), and the task's warning for a useless model. num_val: images of the choosing split."""
    entries = report.read_history(history_path)
    kept = [e for e in entries if e.get('best')]
    if not kept or 'val_iou' not in kept[-1]:
        print('Kept the last epoch ({} of {}): no validation images to choose by'.format(
            entries[-1]['epoch'] if entries else 0, len(entries)))
        return
    e = kept[-1]
    few = '; too few for a reliable number' if num_val < 10 else ''
    chooser = 'selection' if 'report_iou' in e else 'validation'
    print('Kept epoch {} of {}: {} {} ({} images{})'.format(e['epoch'], entries[-1]['epoch'], chooser,
                                                          task.kept_numbers(e), num_val, few))
    if 'report_iou' in e:
        for what, r in (('kept epoch {}'.format(e['epoch']), e), ('last epoch {}'.format(entries[-1]['epoch']),
                                                                  entries[-1])):
            if 'report_iou' in r:
                print(task.epoch_line('report split, ' + what + ':', 'report_', r, '').strip())
    warning = task.warning(e)
    if warning:
        print(warning)

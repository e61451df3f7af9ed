"""Validation during training: the per-epoch scores that choose the kept epoch, their lines, the final summary.

Two splits when the data has a selection split (KITTI: splits/select.txt, carved out of the training images):
the selection split chooses the kept epoch (history keys val_*), and the report split (splits/val.txt) is only
measured (report_*), so the number reported never took part in a choice. Without one (the bundled sample,
multi-class data), the validation split does both and there are no report_* keys.
"""
import time

from ..evaluation import report
from ..evaluation.metrics import THRESHOLD
from ..model.prediction import flips_phrase, predict_probabilities
from ..system.tfcompat import tf


class Validator:
    """Scores the live model after each epoch, as the run's task says, on select_samples (which choose) and,
    when there are any, report_samples (which are only reported); one prediction per image. flips: the run's
    test-time flips (model/prediction.py FLIPS), which kept_with_flips measures the kept model with."""

    def __init__(self, sess, graph, dataset, task, select_samples, report_samples, image_shape, flips='none'):
        self.sess, self.graph, self.dataset, self.task, self.image_shape = sess, graph, dataset, task, image_shape
        self.select, self.report, self.flips = select_samples, report_samples, flips

    def predict(self, images, flips='none'):
        return predict_probabilities(self.sess, self.graph.probabilities, self.graph.image_input, images,
                                     self.image_shape, 4, {self.graph.keep_prob: 1.0}, flips)

    def _score(self, samples, prefix, entry, desc, flips='none'):
        t = time.time()
        scores = self.task.scores()
        worst = report.score(samples, self.dataset, lambda images: self.predict(images, flips), scores, desc=desc)
        results = scores.results()
        values = self.task.epoch_values(results)
        values.update(seconds=round(time.time() - t, 1), images=len(samples))
        entry.update({prefix + k: v for k, v in values.items()})
        return (scores, worst), self.task.keep_value(results)

    def run(self, entry):
        """Adds val_* (the choosing split) and report_* metrics to entry; returns ((scores, worst cases) of the
        report split if there is one, else of the choosing split, the task's keep_value of the choosing split);
        (None, 0.0) without validation images."""
        if not self.select:
            return None, 0.0
        result, keep = self._score(self.select, 'val_', entry, 'Selection' if self.report else 'Validation')
        if self.report:
            result, _ = self._score(self.report, 'report_', entry, 'Report split')
        return result, keep

    def kept_with_flips(self, epoch, out_dir):
        """The kept model, live in the session, on the report split (else the choosing split) averaged over the
        run's flips, reported into out_dir as --evaluate would (metrics.json, plot, worst images). Returns its
        closing line, or None for a run without flips or validation images."""
        samples = self.report or self.select
        if self.flips == 'none' or not samples:
            return None
        entry = {}
        (scores, worst), _ = self._score(samples, 'flips_', entry, 'Kept model, flips {}'.format(self.flips),
                                         self.flips)
        report.write_report(out_dir, self.task, scores, worst, {
            'checkpoint': 'best', 'epoch': epoch, 'images': len(samples), 'data_dir': self.dataset.data_dir,
            'threshold': THRESHOLD, 'flip_tta': True, 'flips': self.flips})
        split = 'report split' if self.report else 'validation'
        return self.task.epoch_line('{}, kept epoch {}, {}:'.format(split, epoch, flips_phrase(self.flips)),
                                    'flips_', entry, '').strip()

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
            _, name, image, prob, label = result[1][0]
            values.append(tf.Summary.Value(tag='val/worst_overlay', image=report.png_summary(
                self.task.error_overlay(image, prob, label))))
        return values


def summarize(history_path, num_val, task, flipped=None):
    """The final lines: which epoch was kept, its validation numbers (and the report split's, for the kept and
    the last epoch; flipped: Validator.kept_with_flips' line), and the task's warning for a useless model.
    num_val: images of the choosing split."""
    entries = report.read_history(history_path)
    kept = [e for e in entries if e.get('best')]
    if not kept or not _has(kept[-1], 'val_'):
        print('Kept the last epoch ({} of {}): no validation images to choose by'.format(
            entries[-1]['epoch'] if entries else 0, len(entries)))
        return
    e = kept[-1]
    few = '; too few for a reliable number' if num_val < 10 else ''
    chooser = 'selection' if _has(e, 'report_') else 'validation'
    print('Kept epoch {} of {}: {} {} ({} images{})'.format(e['epoch'], entries[-1]['epoch'], chooser,
                                                          task.kept_numbers(e), num_val, few))
    if _has(e, 'report_'):
        for what, r in (('kept epoch {}'.format(e['epoch']), e), ('last epoch {}'.format(entries[-1]['epoch']),
                                                                  entries[-1])):
            if _has(r, 'report_'):
                print(task.epoch_line('report split, ' + what + ':', 'report_', r, '').strip())
    if flipped:
        print(flipped)
    warning = task.warning(e)
    if warning:
        print(warning)


def _has(entry, prefix):
    """True when a history entry has numbers of the split prefix ('val_', 'report_')."""
    return any(k.startswith(prefix) for k in entry)

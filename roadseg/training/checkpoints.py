"""Checkpoints of a training run: last/ (to resume) and best/ (the kept model), and restoring one that fits."""
import time

from ..evaluation import report
from ..system.files import InputError, first_line
from ..system.tfcompat import tf


class Checkpoints:
    """last/ (everything, Adam slots included, for --resume) and best/ (the model, for inference).

    The best weights are kept in memory when they improve and written with last/ at most every `minutes`
    (and when forced: at the end, on Ctrl-C/SIGTERM), so a small data set does not rewrite hundreds of MB
    every few seconds. best/ on disk always belongs to the best keep value (the task's keep_value;
    variable best_val_iou) that last/ records.
    """

    def __init__(self, sess, run, graph, task, minutes):
        self.sess, self.run, self.task, self.interval = sess, run, task, 60.0 * minutes
        self.last_saver = tf.train.Saver(max_to_keep=1, save_relative_paths=True)
        self.best_vars = graph.model_vars + [graph.epochs_done, graph.best_metric, graph.step]
        self.best_saver = tf.train.Saver(self.best_vars, max_to_keep=1, save_relative_paths=True)
        self._feeds = [tf.placeholder(v.dtype.base_dtype, v.shape) for v in self.best_vars]
        self._assign = tf.group(*[tf.assign(v, p) for v, p in zip(self.best_vars, self._feeds)])
        self.best = None         # (values of best_vars, evaluation result) not yet written
        self.saved_at = time.time()

    def mark_best(self, result, extra):
        """Keep the session's weights as the best; result: (scores, worst cases) for best/evaluation/."""
        self.best = (self.sess.run(self.best_vars), result and result + (extra,))

    def load(self, values):
        self.sess.run(self._assign, dict(zip(self._feeds, values)))

    def due(self):
        return time.time() - self.saved_at >= self.interval

    def save(self):
        """Write the pending best weights (with their evaluation report), then last/."""
        if self.best is not None:
            values, result = self.best
            current = self.sess.run(self.best_vars)
            self.load(values)
            self.best_saver.save(self.sess, self.run.path('best', 'model'), global_step=self.best_vars[-1],
                                 latest_filename='checkpoint', strip_default_attrs=True)
            self.load(current)
            if result is not None:
                report.write_report(self.run.path('best', 'evaluation'), self.task, *result[:2], extra=result[2])
            self.best = (values, None)
        self.last_saver.save(self.sess, self.run.path('last', 'model'), global_step=self.best_vars[-1],
                             strip_default_attrs=True)
        self.saved_at = time.time()

    def restore_best(self):
        """Put the best weights into the session for the end-of-run outputs; False when there are none."""
        if self.best is not None:
            self.load(self.best[0])
            return True
        prefix = tf.train.latest_checkpoint(self.run.path('best'))
        if prefix:
            self.best_saver.restore(self.sess, prefix)
        return bool(prefix)


def restore(saver, sess, prefix, num_classes, variables):
    """saver.restore, with an InputError when the checkpoint does not fit: a missing variable, or one of another
    shape (TF 2.x resource variables would silently take the checkpoint's shape)."""
    try:
        shapes = dict(tf.train.list_variables(prefix))
        for v in variables:
            name = v.op.name
            if name in shapes and list(shapes[name]) != v.shape.as_list():
                raise ValueError('{} is {} in the checkpoint, {} in the model'.format(
                    name, list(shapes[name]), v.shape.as_list()))
        saver.restore(sess, prefix)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, ValueError) as e:
        raise InputError('checkpoint {} does not fit this model ({} classes, same flags as the run): {}'
                         .format(prefix, num_classes, first_line(e)))

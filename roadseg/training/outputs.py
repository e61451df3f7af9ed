"""The end of a training run, written by the chief: the last checkpoints, the kept model frozen (and measured with
the run's test-time flips), the loss curve, the test images."""
import os

from ..evaluation import report
from ..evaluation.overlays import session_overlays, write_images
from ..model.freeze import write_frozen
from ..runs import FROZEN
from ..system.signals import deferred_stop


def write_outputs(sess, net, run, data, ckpt, writer, validator):
    """The chief's end of a run: the last checkpoints, the best model frozen, the loss curve, test images; with
    test-time flips, the kept model measured with them into best/evaluation/. Returns that measurement's
    closing line, or None."""
    with deferred_stop():
        ckpt.save()
    writer.close()
    image_shape = tuple(run.config['image_shape'])
    flipped = None
    if ckpt.restore_best():
        write_frozen(sess, run.path('best', FROZEN), data.task, image_shape)
        kept = [e for e in report.read_history(run.path('history.jsonl')) if e.get('best')]
        if kept:
            flipped = validator.kept_with_flips(kept[-1]['epoch'], run.path('best', 'evaluation'))
    report.plot_history(run.path('loss_curve.png'), run.path('history.jsonl'), data.task.history_curves)
    write_test_images(sess, net, data.dataset, data.task, image_shape, run.path('test_images'), validator.flips)
    return flipped


def write_test_images(sess, net, dataset, task, image_shape, out_dir, flips='none'):
    """The task's overlays of the test split (else the validation split) at each image's size, averaged over
    the run's test-time flips, with the task's legend.png when it has one."""
    samples = dataset.samples('test') or dataset.samples('val')
    overlays = session_overlays(sess, net.probabilities, net.image_input, net.keep_prob, samples,
                                lambda sample: dataset.load(sample)[0], image_shape, task, flips=flips)
    write_images(out_dir, ((os.path.basename(s.image) if os.path.splitext(s.image)[1] else s.stem + '.png', shown)
                           for s, shown in overlays), len(samples), 'Test images', task.legend())

"""--evaluate: a trained run's checkpoint on the validation split of its data, scored and reported as its task
says (roadseg/task.py)."""
import os

from .metrics import THRESHOLD
from ..runs import run_dataset
from ..serving.inference import Segmenter
from ..system.files import InputError, check_writable_dir
from .report import score, write_report


def evaluate_run(run, data_dir=None, out_dir=None, which='best', batch_size=4, bf16=False, backend='auto', threads=0):
    """Evaluate a training run's checkpoint on the validation split of its data (or data_dir); writes
    RUN/evaluation_<which>[_bf16]/ and returns the metrics. backend: see inference.Segmenter."""
    dataset = run_dataset(run, data_dir)
    samples = dataset.samples('val')
    if not samples:
        raise InputError('no validation images in {}'.format(dataset.data_dir))
    model = Segmenter(run, which, threads=threads, bf16=bf16, backend=backend)
    out_dir = out_dir or os.path.join(run, 'evaluation_{}{}'.format(which, '_bf16' if bf16 else ''))
    check_writable_dir(out_dir, 'evaluation folder')
    print('Evaluating {} ({}) on {} validation images of {}'.format(model.prefix, model.backend, len(samples),
                                                                     dataset.data_dir))
    if len(samples) < 10:
        print('warning: only {} validation images: the numbers are noisy'.format(len(samples)))
    scores = model.task.scores()
    try:
        worst = score(samples, dataset, lambda images: (p for p, _ in model.predict_iter(images, batch_size)),
                      scores)
    finally:
        model.close()
    results = write_report(out_dir, model.task, scores, worst, {
        'checkpoint': model.prefix, 'images': len(samples), 'data_dir': dataset.data_dir, 'threshold': THRESHOLD,
        'frozen_graph': model.frozen, 'bf16': bf16, 'backend': model.backend})
    model.task.print_results(results)
    print('Wrote {}'.format(out_dir))
    return results

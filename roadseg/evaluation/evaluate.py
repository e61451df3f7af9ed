"""--evaluate: a trained run's checkpoint on the validation split of its data, scored and reported as its task
says (roadseg/task/)."""
import os

from ..model.prediction import flips_phrase
from ..serving import onnx_backend
from ..serving.inference import Segmenter
from ..system.files import InputError, check_writable_dir
from .metrics import THRESHOLD
from .report import score, write_report


def flips_suffix(flips, own):
    """What an evaluation folder's name adds for test-time flips other than the run's own: '' for its own,
    '_flip' for 'h', else '_flip_<mode>'."""
    return '' if flips == own else '_flip' if flips == 'h' else '_flip_' + flips


def evaluate_run(run, data_dir=None, out_dir=None, which='best', batch_size=4, bf16=False, backend='auto', threads=0,
                 precision=None, flip=None):
    """Evaluate a training run's checkpoint on the validation split of its data (or data_dir); writes
    RUN/evaluation_<which>/ (RUN/evaluation_<which>_<precision>/ when precision is given, or bf16) and returns the
    metrics, with _onnxruntime appended when ONNX Runtime runs the fp32 model and _flip (_flip_<mode>) when flip
    asks for other test-time flips than the run's own: each engine and setting keeps its own report. run: a
    runs.TrainedRun or a path to one (the run folder, RUN/best, RUN/last), or to an export's ONNX model
    (RUN/export/model-int8.onnx). backend, precision, flip: see inference.Segmenter."""
    run, precision, backend = onnx_backend.resolve(run, which, 'bf16' if bf16 else precision, backend)
    if not os.path.isdir(run.path):
        raise InputError('run folder {} {}'.format(run.path, 'is a file, not a folder' if os.path.exists(run.path)
                                                   else 'does not exist'))
    dataset = run.dataset(data_dir)
    samples = dataset.samples('val')
    if not samples:
        raise InputError('no validation images in {}'.format(dataset.data_dir))
    model = Segmenter(run, threads=threads, backend=backend, precision=precision, flip=flip)
    # the TensorFlow report is evaluation_<which>/; another engine's goes beside it (int8 runs on ONNX Runtime only)
    engine = '_' + model.backend if model.backend != 'tensorflow' and model.precision != 'int8' else ''
    out_dir = out_dir or os.path.join(run.path, 'evaluation_{}{}{}{}'.format(
        run.which, '_' + precision if precision else '', engine, flips_suffix(model.flips, run.flips)))
    check_writable_dir(out_dir, 'evaluation folder')
    print('Evaluating {} ({}, {}: {}{}) on {} validation images of {}'.format(  # shapes: generated, no folder
        model.prefix, model.backend, model.precision, model.precision_reason,
        '' if model.flips == 'none' else '; ' + flips_phrase(model.flips),
        len(samples), dataset.data_dir or dataset.name))
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
        'frozen_graph': model.frozen, 'bf16': model.precision == 'bf16', 'precision': model.precision,
        'flip_tta': model.flips != 'none', 'flips': model.flips, 'backend': model.backend})
    model.task.print_results(results)
    print('Wrote {}'.format(out_dir))
    return results

"""The int8 model's accuracy against fp32: a run's two ONNX exports (model.onnx, model-int8.onnx from
`--export RUN --format onnx-int8`, serving/quantize.py) scored on the same validation images as --evaluate scores
them, the change recorded in the model-int8.json beside them, with a warning where int8 costs more than LIMITS."""
import json
import os

from ..serving.inference import Segmenter
from ..serving.layout import INT8_SUMMARY
from ..system.files import InputError, write_bytes_atomic
from .report import score

# metric -> the largest loss in points (100 x the fraction) that int8 may cost without a warning
LIMITS = {'max_f1': 0.5, 'mean_iou': 1.0}


def accuracy_change(fp32, int8):
    """(change {metric: int8 - fp32 points}, [the warnings for losses beyond LIMITS])."""
    change = {k: None if fp32[k] is None or int8[k] is None else int8[k] - fp32[k] for k in fp32}
    warnings = ['int8 costs {:.2f} {} points (more than {:g})'.format(-change[k], k.replace('_', ' '), LIMITS[k])
                for k in LIMITS if change.get(k) is not None and -change[k] > LIMITS[k]]
    return change, warnings


def measure(run, dataset, threads=0, batch_size=4):
    """{'fp32': headline, 'int8': headline, 'images': n} of the run's (a runs.TrainedRun) two ONNX models on
    dataset's validation split, scored as --evaluate scores (the run's task's key_metrics: a multi-label run's
    mean IoU and each label's IoU; LIMITS judge those it names), one prediction per image as the files give
    (without the run's test-time flips)."""
    samples = dataset.samples('val')
    if not samples:
        raise InputError('no validation images in {} to measure int8 against fp32 on'.format(dataset.data_dir))
    out = {'images': len(samples)}
    for precision in ('fp32', 'int8'):
        with Segmenter(run, threads=threads, backend='onnxruntime', precision=precision, flip='none') as model:
            scores = model.task.scores()
            score(samples, dataset, lambda images: (p for p, _ in model.predict_iter(images, batch_size)), scores,
                  worst=0, desc='Scoring ' + precision)
            out[precision] = model.task.key_metrics(scores.results())
    return out


def describe(measured):
    """One line: 'int8 vs fp32 on 57 validation images: max f1 92.73 -> 92.61 (-0.12), iou ...'."""
    parts = ['{} {} -> {} ({})'.format(k.replace('_', ' '), _points(measured['fp32'][k]), _points(measured['int8'][k]),
                                       _points(measured['change'][k], '{:+.2f}')) for k in measured['fp32']]
    return 'int8 vs fp32 on {} validation images: {}'.format(measured['images'], ', '.join(parts))


def _points(value, form='{:.2f}'):
    return '-' if value is None else form.format(value)


def record_accuracy(run, data_dir=None, threads=0):
    """Measure run's (a runs.TrainedRun) int8 export against its fp32 one on the validation split of its data
    (data_dir, else the one in its config.json) and add the result to model-int8.json ('accuracy', 'warnings');
    prints the line and the warnings. Returns the summary."""
    summary_path = os.path.join(run.export_dir, INT8_SUMMARY)
    try:
        with open(summary_path) as f:
            summary = json.load(f)
    except (OSError, ValueError) as e:
        raise InputError('{}: no readable int8 summary ({}); export it with python main.py --export {} --format '
                         'onnx-int8'.format(summary_path, e, run.path))
    measured = measure(run, run.dataset(data_dir), threads)
    measured['change'], warnings = accuracy_change(measured['fp32'], measured['int8'])
    summary.update(accuracy=dict(measured, split='val', limits_points=LIMITS, within_limits=not warnings),
                   warnings=warnings)
    write_bytes_atomic(summary_path, json.dumps(summary, indent=2).encode())
    print('{} (in {})'.format(describe(measured), summary_path))
    for line in warnings:
        print('warning: ' + line + '; the fp32 model.onnx keeps the accuracy')
    return summary

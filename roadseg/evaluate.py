"""Evaluation on the validation split: metrics JSON, a precision-recall curve (road) or per-class IoU bars,
worst-case overlays."""
import json
import os

import numpy as np
from PIL import Image

from . import datasets, onnx_backend
from .batches import IGNORE
from .files import InputError, atomic_path, check_writable_dir, save_image_atomic, write_bytes_atomic
from .inference import Segmenter
from .metrics import ConfusionMatrix, RoadEvaluator, pr_curve
from .progress import bar

THRESHOLD = 0.5  # road where p(road) > 0.5 (the argmax of two classes), as training selects and outputs


class RoadScores:
    """KITTI road: the MaxF1/AP threshold sweep, and IoU and the rubric at THRESHOLD, per category."""
    road = True

    def __init__(self, class_names=None):
        self.evaluator = RoadEvaluator()

    def add(self, probs, classes, category):
        """probs (H, W, 2), classes (H, W) 0/1/IGNORE; returns the image's F1 at THRESHOLD."""
        return self.evaluator.add(probs[..., 1], classes, category or 'all')

    def results(self):
        return self.evaluator.results()


class ClassScores:
    """Multi-class: one confusion matrix (per-class IoU, mean IoU, pixel and mean class accuracy)."""
    road = False

    def __init__(self, class_names):
        self.class_names = list(class_names)
        self.matrix = ConfusionMatrix(len(self.class_names))

    def add(self, probs, classes, category=None):
        """probs (H, W, C), classes (H, W) with IGNORE; returns the image's mean IoU (1 with no labels)."""
        miou = self.matrix.add(np.argmax(probs, axis=-1).astype(np.uint8), classes)
        return 1.0 if miou is None else miou

    def results(self):
        return self.matrix.results(self.class_names)


def scores_for(dataset):
    return RoadScores() if dataset.name == 'kitti_road' else ClassScores(dataset.class_names)


def headline(results):
    """The number that picks the kept checkpoint: road IoU at THRESHOLD, or mean IoU."""
    return results['overall']['iou'] if 'overall' in results else results['mean_iou']


def score(samples, dataset, predict, scores, worst=3, desc='Validation'):
    """Run predict(list of uint8 images) -> (H, W, C) probabilities over the samples (loaded in chunks of 8)
    into scores (RoadScores or ClassScores). Returns the worst cases, (score, name, image, probs, classes)."""
    worst_cases = []
    progress = bar(total=len(samples), desc=desc, unit='image', leave=False, quiet_in_logs=True)
    for start in range(0, len(samples), 8):
        chunk = samples[start:start + 8]
        loaded = [dataset.load(s) for s in chunk]
        for sample, (image, classes), probs in zip(chunk, loaded, predict([im for im, _ in loaded])):
            value = scores.add(probs, classes, dataset.category(sample))
            worst_cases.append((value, os.path.basename(sample.image), image, probs, classes))
            worst_cases = sorted(worst_cases, key=lambda c: c[0])[:worst]
            progress.update(1)
    progress.close()
    return worst_cases


def error_overlay(image, probs, classes):
    """Two classes: green road found, red non-road called road, blue road missed. More classes: green right,
    red wrong. Ignored pixels are left as they are."""
    out = image.astype(np.float32)
    if probs.shape[-1] == 2:
        pred = probs[..., 1] > THRESHOLD
        marks = (((pred & (classes == 1)), (0, 255, 0)), ((pred & (classes == 0)), (255, 0, 0)),
                 ((~pred & (classes == 1)), (0, 0, 255)))
    else:
        pred, labelled = np.argmax(probs, axis=-1), classes != IGNORE
        marks = (((pred == classes) & labelled, (0, 255, 0)), ((pred != classes) & labelled, (255, 0, 0)))
    for mask, color in marks:
        out[mask] = 0.5 * out[mask] + 0.5 * np.asarray(color, np.float32)
    return out.astype(np.uint8)


def write_report(out_dir, scores, worst_cases, extra=None):
    """metrics.json, a plot (road: pr_curve.png; classes: class_iou.png) and worst_<n>_<name>.png into out_dir;
    returns the metrics dict."""
    check_writable_dir(out_dir, 'evaluation folder')
    results = scores.results()
    results.update(extra or {})
    write_bytes_atomic(os.path.join(out_dir, 'metrics.json'), json.dumps(results, indent=2).encode())
    if scores.road:
        plot_pr_curve(os.path.join(out_dir, 'pr_curve.png'), scores.evaluator)
    else:
        plot_class_iou(os.path.join(out_dir, 'class_iou.png'), results)
    written = set()
    for n, (value, name, image, probs, classes) in enumerate(worst_cases, start=1):
        file_name = 'worst_{}_{}.png'.format(n, os.path.splitext(name)[0])
        save_image_atomic(os.path.join(out_dir, file_name), Image.fromarray(error_overlay(image, probs, classes)))
        written.add(file_name)
    for stale in set(os.listdir(out_dir)) - written:  # from an earlier report in this folder
        if stale.startswith('worst_') and stale.endswith('.png'):
            os.remove(os.path.join(out_dir, stale))
    return results


def _pyplot():
    """matplotlib.pyplot on the file-only Agg backend (imported on first plot, not at start-up)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save_figure(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=100)
    _pyplot().close(fig)


def plot_pr_curve(path, evaluator):
    fig, ax = _pyplot().subplots(figsize=(5, 5))
    cats = sorted(evaluator.pos)
    curves = [(c, evaluator.pos[c], evaluator.neg[c]) for c in cats]
    curves.append(('overall', sum(evaluator.pos.values()), sum(evaluator.neg.values())))
    for name, pos, neg in curves:
        _, precision, recall = pr_curve(pos, neg)
        ax.plot(recall, precision, label=name, linewidth=2 if name == 'overall' else 1)
    ax.set(xlabel='recall', ylabel='precision', xlim=(0, 1), ylim=(0, 1.01), title='Road, validation split')
    ax.grid(True, alpha=0.3)
    ax.legend(loc='lower left')
    _save_figure(fig, path)


def run_dataset(run, data_dir=None):
    """The dataset a run was trained on (from its config.json), reading data_dir when given."""
    config_path = os.path.join(run, 'config.json')
    if not os.path.isfile(config_path):
        raise InputError('{} has no config.json to say which data it was trained on'.format(run))
    with open(config_path) as f:
        config = json.load(f)
    name = config.get('dataset', 'kitti_road')
    data_dir = data_dir or config.get('data_dir')
    if name != 'shapes' and (not data_dir or not os.path.isdir(data_dir)):
        raise InputError('data for evaluation not found: {} (pass --data-dir)'.format(data_dir))
    return datasets.get_dataset(name, data_dir, **config.get('dataset_options', {}))


def evaluate_run(run, data_dir=None, out_dir=None, which='best', batch_size=4, bf16=False, backend='auto', threads=0,
                 precision=None, flip=False):
    """Evaluate a training run's checkpoint on the validation split of its data (or data_dir); writes
    RUN/evaluation_<which>/ (RUN/evaluation_<which>_<precision>/ when precision is given, or bf16) and returns the
    metrics, with _flip appended for flip (test-time augmentation). run may name an export's ONNX model
    (RUN/export/model-int8.onnx). backend, precision, flip: see inference.Segmenter."""
    run, which, precision, backend = onnx_backend.resolve(run, which, 'bf16' if bf16 else precision, backend)
    dataset = run_dataset(run, data_dir)
    samples = dataset.samples('val')
    if not samples:
        raise InputError('no validation images in {}'.format(dataset.data_dir))
    model = Segmenter(run, which, threads=threads, backend=backend, precision=precision, flip=flip)
    out_dir = out_dir or os.path.join(run, 'evaluation_{}{}{}'.format(which, '_' + precision if precision else '',
                                                                      '_flip' if flip else ''))
    check_writable_dir(out_dir, 'evaluation folder')
    print('Evaluating {} ({}, {}: {}) on {} validation images of {}'.format(
        model.prefix, model.backend, model.precision, model.precision_reason, len(samples), dataset.data_dir))
    if len(samples) < 10:
        print('warning: only {} validation images: the numbers are noisy'.format(len(samples)))
    scores = scores_for(dataset)
    try:
        worst = score(samples, dataset, lambda images: (p for p, _ in model.predict_iter(images, batch_size)),
                      scores)
    finally:
        model.close()
    results = write_report(out_dir, scores, worst, {'checkpoint': model.prefix, 'images': len(samples),
                                                    'data_dir': dataset.data_dir, 'threshold': THRESHOLD,
                                                    'frozen_graph': model.frozen, 'bf16': model.precision == 'bf16',
                                                    'precision': model.precision, 'flip_tta': flip,
                                                    'backend': model.backend})
    print_results(results)
    print('Wrote {}'.format(out_dir))
    return results


def print_results(results):
    if 'overall' not in results:
        print_class_results(results)
        return
    print('{:8s} {:>7s} {:>7s} {:>7s} {:>7s} {:>6s} {:>10s} {:>13s} {}'.format(
        'category', 'MaxF1', 'AP', 'prec', 'recall', 'IoU', 'road->road', 'nonroad->road', 'rubric'))
    for cat in [c for c in sorted(results) if isinstance(results[c], dict)]:
        r = results[cat]
        print('{:8s} {:7.2f} {:7.2f} {:7.2f} {:7.2f} {:6.3f} {:10.3f} {:13.3f} {}'.format(
            cat, 100 * r['max_f1'], 100 * r['average_precision'], 100 * r['precision'], 100 * r['recall'],
            r['iou'], r['road_labeled_road'], r['nonroad_labeled_road'], 'pass' if r['rubric_passed'] else 'FAIL'))


def read_history(history_path):
    """The entries of history.jsonl; a line cut short by a crash is skipped."""
    entries = []
    with open(history_path) as f:
        for line in f:
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


def plot_history(path, history_path):
    """Training loss and validation IoU / MaxF1 per epoch from history.jsonl, as a PNG."""
    entries = read_history(history_path)
    fig, ax = _pyplot().subplots(figsize=(7, 4))
    epochs = [e['epoch'] for e in entries]
    ax.plot(epochs, [e['loss'] for e in entries], 'b-', label='training loss')
    ax.set(xlabel='epoch', ylabel='cross-entropy', yscale='log')
    validated = [e for e in entries if 'val_max_f1' in e]
    if validated:
        ax2 = ax.twinx()
        ax2.plot([e['epoch'] for e in validated], [100 * e['val_max_f1'] for e in validated], 'g.-',
                 label='validation MaxF1')
        if all('val_iou' in e for e in validated):
            ax2.plot([e['epoch'] for e in validated], [100 * e['val_iou'] for e in validated], 'm.-',
                     label='validation IoU at {:.2f}'.format(THRESHOLD))
        ax2.set_ylabel('validation (%)')
        ax2.legend(loc='lower right')
    ax.legend(loc='upper right')
    _save_figure(fig, path)


def png_summary(image):
    """A TensorBoard image summary of a uint8 RGB image."""
    import io
    from .tfcompat import tf
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format='PNG')
    return tf.Summary.Image(encoded_image_string=buf.getvalue(), height=image.shape[0], width=image.shape[1],
                            colorspace=3)


def print_class_results(results):
    print('{:16s} {:>6s} {:>8s}'.format('class', 'IoU', 'accuracy'))
    for name, iou, acc in zip(results['classes'], results['class_iou'], results['class_accuracy']):
        print('{:16s} {:>6s} {:>8s}'.format(name, _pct(iou), _pct(acc)))
    print('mean IoU {}, pixel accuracy {}, mean class accuracy {}'.format(
        _pct(results['mean_iou']), _pct(results['pixel_accuracy']), _pct(results['mean_class_accuracy'])))


def _pct(value):
    return '-' if value is None else '{:.1f}'.format(100 * value)


def plot_class_iou(path, results):
    """Per-class IoU as horizontal bars, mean IoU as a line."""
    names, ious = results['classes'], [0.0 if v is None else 100 * v for v in results['class_iou']]
    fig, ax = _pyplot().subplots(figsize=(6, 0.3 * len(names) + 1.2))
    ax.barh(range(len(names)), ious, color='tab:blue')
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    if results['mean_iou'] is not None:
        mean = 100 * results['mean_iou']
        ax.axvline(mean, color='tab:red', label='mean IoU {:.1f}'.format(mean))
        ax.legend(loc='lower right')
    ax.set(xlabel='IoU (%)', xlim=(0, 100), title='Per-class IoU, validation split')
    fig.tight_layout()
    _save_figure(fig, path)

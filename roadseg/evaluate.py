"""Evaluation on the validation split: metrics JSON, precision-recall curve and worst-case overlays."""
import json
import os

import numpy as np
from PIL import Image

from . import kitti
from .files import atomic_path, check_writable_dir, save_image_atomic, write_bytes_atomic
from .inference import Segmenter
from .metrics import RoadEvaluator, pr_curve
from .progress import bar

THRESHOLD = 0.5  # road where p(road) > 0.5 (the argmax of two classes), as training selects and outputs


def validation_pairs(data_dir, split_file=kitti.SPLIT_FILE):
    """(image, mask) pairs of data_dir/training that the fixed split holds out for validation."""
    pairs = kitti.list_training_pairs(os.path.join(data_dir, 'training'))
    return kitti.split_pairs(pairs, kitti.read_split(split_file))[1]


def score(pairs, predict, worst=3, desc='Validation'):
    """Run predict(list of uint8 images) -> probability maps over pairs (loaded in small chunks).

    Returns (metrics dict from RoadEvaluator.results(), worst list of (f1, name, image, prob, classes)).
    """
    evaluator = RoadEvaluator()
    worst_cases = []
    progress = bar(total=len(pairs), desc=desc, unit='image', leave=False, quiet_in_logs=True)
    for start in range(0, len(pairs), 8):
        chunk = pairs[start:start + 8]
        loaded = [kitti.load_pair(*p) for p in chunk]
        for (image_path, _), (image, classes), prob in zip(chunk, loaded, predict([im for im, _ in loaded])):
            f1 = evaluator.add(prob, classes, kitti.category(image_path))
            worst_cases.append((f1, os.path.basename(image_path), image, prob, classes))
            worst_cases = sorted(worst_cases, key=lambda c: c[0])[:worst]
            progress.update(1)
    progress.close()
    return evaluator, worst_cases


def error_overlay(image, prob, classes):
    """Green: road found, red: non-road called road, blue: road missed; don't-care left as is."""
    out = image.astype(np.float32)
    pred = prob > THRESHOLD
    for mask, color in (((pred & (classes == 1)), (0, 255, 0)), ((pred & (classes == 0)), (255, 0, 0)),
                        ((~pred & (classes == 1)), (0, 0, 255))):
        out[mask] = 0.5 * out[mask] + 0.5 * np.asarray(color, np.float32)
    return out.astype(np.uint8)


def write_report(out_dir, evaluator, worst_cases, extra=None):
    """metrics.json, pr_curve.png and worst_<n>_<name>.png into out_dir; returns the metrics dict."""
    check_writable_dir(out_dir, 'evaluation folder')
    results = evaluator.results()
    results.update(extra or {})
    write_bytes_atomic(os.path.join(out_dir, 'metrics.json'), json.dumps(results, indent=2).encode())
    plot_pr_curve(os.path.join(out_dir, 'pr_curve.png'), evaluator)
    written = set()
    for n, (f1, name, image, prob, classes) in enumerate(worst_cases, start=1):
        file_name = 'worst_{}_{}.png'.format(n, os.path.splitext(name)[0])
        save_image_atomic(os.path.join(out_dir, file_name), Image.fromarray(error_overlay(image, prob, classes)))
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


def run_data_dir(run, data_dir=None):
    """The data folder to evaluate a run on: data_dir when given, else the one in the run's config.json."""
    if data_dir is None:
        config = os.path.join(run, 'config.json')
        if not os.path.isfile(config):
            raise kitti.InputError('{} has no config.json to say which data it was trained on: pass --data-dir'
                                   .format(run))
        with open(config) as f:
            data_dir = json.load(f).get('data_dir')
    if not data_dir or not os.path.isdir(os.path.join(data_dir, 'training')):
        raise kitti.InputError('data for evaluation not found: {} has no training/ folder (pass --data-dir)'
                               .format(data_dir))
    return data_dir


def evaluate_run(run, data_dir=None, out_dir=None, which='best', batch_size=4, bf16=False):
    """Evaluate a training run's checkpoint on the validation split of its data (or data_dir); writes
    RUN/evaluation_<which>[_bf16]/ and returns the metrics."""
    data_dir = run_data_dir(run, data_dir)
    pairs = validation_pairs(data_dir)
    if not pairs:
        raise kitti.InputError('no validation images of {} in {}'.format(kitti.SPLIT_FILE, data_dir))
    model = Segmenter(run, which, bf16=bf16)
    out_dir = out_dir or os.path.join(run, 'evaluation_{}{}'.format(which, '_bf16' if bf16 else ''))
    check_writable_dir(out_dir, 'evaluation folder')
    print('Evaluating {} on {} validation images of {}'.format(model.prefix, len(pairs), data_dir))
    if len(pairs) < 10:
        print('warning: only {} validation images: the numbers are noisy'.format(len(pairs)))
    try:
        evaluator, worst = score(pairs, lambda images: (p[..., 1] for p, _ in model.predict_iter(images, batch_size)))
    finally:
        model.close()
    results = write_report(out_dir, evaluator, worst, {'checkpoint': model.prefix, 'images': len(pairs),
                                                       'data_dir': data_dir, 'threshold': THRESHOLD,
                                                       'frozen_graph': model.frozen, 'bf16': bf16})
    print_results(results)
    print('Wrote {}'.format(out_dir))
    return results


def print_results(results):
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

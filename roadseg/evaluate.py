"""Evaluation on the validation split: metrics JSON, precision-recall curve and worst-case overlays."""
import json
import os

import numpy as np
from PIL import Image
from tqdm import tqdm

from . import kitti
from .files import atomic_path, check_writable_dir, save_image_atomic, write_bytes_atomic
from .inference import TrainedModel
from .metrics import RoadEvaluator, pr_curve


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
    bar = tqdm(total=len(pairs), desc=desc, unit='image', leave=False)
    for start in range(0, len(pairs), 8):
        chunk = pairs[start:start + 8]
        loaded = [kitti.load_pair(*p) for p in chunk]
        for (image_path, _), (image, classes), prob in zip(chunk, loaded, predict([im for im, _ in loaded])):
            f1 = evaluator.add(prob, classes, kitti.category(image_path))
            worst_cases.append((f1, os.path.basename(image_path), image, prob, classes))
            worst_cases = sorted(worst_cases, key=lambda c: c[0])[:worst]
            bar.update(1)
    bar.close()
    return evaluator, worst_cases


def error_overlay(image, prob, classes):
    """Green: road found, red: non-road called road, blue: road missed; don't-care left as is."""
    out = image.astype(np.float32)
    pred = prob > 0.5
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


def evaluate_run(run, data_dir, out_dir=None, which='best', batch_size=4, bf16=False):
    """Evaluate a training run's checkpoint on the validation split; writes the report, returns metrics."""
    pairs = validation_pairs(data_dir)
    if not pairs:
        raise kitti.InputError('no validation images of {} in {}'.format(kitti.SPLIT_FILE, data_dir))
    model = TrainedModel(run, which, bf16=bf16)
    out_dir = out_dir or os.path.join(run, 'evaluation_bf16' if bf16 else 'evaluation')
    check_writable_dir(out_dir, 'evaluation folder')
    try:
        evaluator, worst = score(pairs, lambda images: model.predict(images, batch_size))
    finally:
        model.close()
    results = write_report(out_dir, evaluator, worst, {'checkpoint': model.prefix, 'images': len(pairs),
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


def plot_history(path, history_path):
    """Training loss and validation MaxF1 per epoch from history.jsonl, as a PNG."""
    with open(history_path) as f:
        entries = [json.loads(line) for line in f if line.strip()]
    fig, ax = _pyplot().subplots(figsize=(7, 4))
    epochs = [e['epoch'] for e in entries]
    ax.plot(epochs, [e['loss'] for e in entries], 'b-', label='training loss')
    ax.set(xlabel='epoch', ylabel='cross-entropy', yscale='log')
    if any('val_max_f1' in e for e in entries):
        ax2 = ax.twinx()
        ax2.plot([e['epoch'] for e in entries if 'val_max_f1' in e],
                 [100 * e['val_max_f1'] for e in entries if 'val_max_f1' in e], 'g.-', label='validation MaxF1')
        ax2.set_ylabel('validation MaxF1 (%)')
        ax2.legend(loc='lower right')
    ax.legend(loc='upper right')
    _save_figure(fig, path)

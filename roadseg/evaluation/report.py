"""Scoring predictions over samples and writing what they show: metrics JSON, the task's plot (a
precision-recall curve or per-class IoU bars), worst-case overlays, the training history's curve."""
import json
import os

from PIL import Image

from ..system.files import atomic_path, check_writable_dir, save_image_atomic, write_bytes_atomic
from ..system.progress import bar
from .metrics import pr_curve

def score(samples, dataset, predict, scores, worst=3, desc='Validation'):
    """Run predict(list of uint8 images) -> (H, W, C) probabilities over the samples (loaded in chunks of 8)
    into scores (a task's scores()). Returns the worst cases, (score, name, image, probs, classes)."""
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


def write_report(out_dir, task, scores, worst_cases, extra=None):
    """metrics.json, the task's plot (road: pr_curve.png; classes: class_iou.png) and worst_<n>_<name>.png
    into out_dir; returns the metrics dict."""
    check_writable_dir(out_dir, 'evaluation folder')
    results = scores.results()
    results.update(extra or {})
    write_bytes_atomic(os.path.join(out_dir, 'metrics.json'), json.dumps(results, indent=2).encode())
    task.plot(out_dir, scores, results)
    written = set()
    for n, (value, name, image, probs, classes) in enumerate(worst_cases, start=1):
        file_name = 'worst_{}_{}.png'.format(n, os.path.splitext(name)[0])
        save_image_atomic(os.path.join(out_dir, file_name), Image.fromarray(task.error_overlay(image, probs, classes)))
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


def plot_pr_curve(path, evaluator, positive='road'):
    fig, ax = _pyplot().subplots(figsize=(5, 5))
    cats = sorted(evaluator.pos)
    curves = [(c, evaluator.pos[c], evaluator.neg[c]) for c in cats]
    curves.append(('overall', sum(evaluator.pos.values()), sum(evaluator.neg.values())))
    for name, pos, neg in curves:
        _, precision, recall = pr_curve(pos, neg)
        ax.plot(recall, precision, label=name, linewidth=2 if name == 'overall' else 1)
    ax.set(xlabel='recall', ylabel='precision', xlim=(0, 1), ylim=(0, 1.01),
           title='{}, validation split'.format(positive.capitalize()))
    ax.grid(True, alpha=0.3)
    ax.legend(loc='lower left')
    _save_figure(fig, path)


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


def curve_series(entries, curves):
    """[(label, epochs, values in %)] of curves ((history key, label), ...: the task's history_curves) over
    history entries: the validation split's numbers, report_* where a selection split chose the kept epoch
    (KITTI, the shapes recipe), else val_*; entries without the key are left out."""
    series = []
    for key, label in curves:
        report = 'report_' + key[len('val_'):]
        key = report if any(report in e for e in entries) else key
        shown = [e for e in entries if key in e]
        series.append((label, [e['epoch'] for e in shown], [100 * e[key] for e in shown]))
    return series


def plot_history(path, history_path, curves):
    """Training loss per epoch from history.jsonl, and the task's curves (curve_series) where the entries have
    them, as a PNG."""
    entries = read_history(history_path)
    fig, ax = _pyplot().subplots(figsize=(7, 4))
    epochs = [e['epoch'] for e in entries]
    ax.plot(epochs, [e['loss'] for e in entries], 'b-', label='training loss')
    ax.set(xlabel='epoch', ylabel='cross-entropy', yscale='log')
    drawn = curve_series(entries, curves)
    if any(shown for _, shown, _ in drawn):
        ax2 = ax.twinx()
        for (label, shown, values), style in zip(drawn, ('g.-', 'm.-')):
            ax2.plot(shown, values, style, label=label)
        ax2.set_ylabel('validation (%)')
        ax2.legend(loc='lower right')
    ax.legend(loc='upper right')
    _save_figure(fig, path)


def png_summary(image):
    """A TensorBoard image summary of a uint8 RGB image."""
    import io
    from ..system.tfcompat import tf
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format='PNG')
    return tf.Summary.Image(encoded_image_string=buf.getvalue(), height=image.shape[0], width=image.shape[1],
                            colorspace=3)


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

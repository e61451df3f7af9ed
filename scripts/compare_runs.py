#!/usr/bin/env python
"""Compare training runs by the images they trained on: a table and a PNG of validation curves.

    python scripts/compare_runs.py runs/A runs/B --label fp32 --label bf16 --out curves.png

Reads each run's config.json and history.jsonl (a finished or a .partial run). x = training images processed
(step x batch size x processes), so recipes with other batch sizes or epoch lengths line up. KITTI runs show the
report split's MaxF1 (solid) and the selection split's (dashed); multi-class runs the validation mIoU (val_iou).
The run's task (roadseg/task/) says which metric compares runs. Needs no TensorFlow.
"""
import argparse
import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from roadseg import task  # noqa: E402
from roadseg.evaluation.report import read_history  # noqa: E402
from roadseg.runs import CONFIG, read_config  # noqa: E402
from roadseg.system.files import InputError  # noqa: E402

METRICS = ('max_f1', 'iou', 'ap', 'pixel_accuracy', 'mean_class_accuracy')


def curves(run):
    """(config, the run's task, [(images, {metric: value in %})]) of a run folder; metric names as in
    history.jsonl. InputError for a folder without a readable config.json or history.jsonl."""
    config = read_config(run)
    try:
        entries = read_history(os.path.join(run, 'history.jsonl'))
    except OSError as e:
        raise InputError('{}: not a readable run folder ({})'.format(run, e))
    per_step = config['batch_size'] * config.get('workers', 1)
    points = [(e['step'] * per_step, {k: 100 * v for k, v in e.items() if k.startswith(('val_', 'report_')) and
                                      k.split('_', 1)[1] in METRICS})
              for e in entries]
    return config, task.for_config(config, os.path.join(run, CONFIG)), points


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('runs', nargs='+', metavar='RUN')
    p.add_argument('--label', action='append', help='one per run, in order (default the folder names)')
    p.add_argument('--out', help='write the curves as this PNG')
    args = p.parse_args(argv)
    labels = args.label or [os.path.basename(r.rstrip('/')) for r in args.runs]
    if len(labels) != len(args.runs):
        print('error: {} --label for {} runs'.format(len(labels), len(args.runs)), file=sys.stderr)
        return 2
    try:
        data = [curves(r) for r in args.runs]
    except InputError as e:
        print('error: {}'.format(e), file=sys.stderr)
        return 2
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (config, kind, points) in zip(labels, data):
        keys = sorted({k for _, m in points for k in m})
        print('{} ({} {}): {}'.format(label, config.get('dataset'), config.get('precision', 'bf16' if config.get(
            'bf16') else 'fp32'), ' '.join(keys)))
        for images, metrics in points:
            print('  {:6d} images: {}'.format(images, ', '.join('{} {:.2f}'.format(k, metrics[k]) for k in keys)))
        metric = kind.curve_metric
        main_key = 'report_' + metric if 'report_' + metric in keys else 'val_' + metric
        line, = ax.plot([i for i, m in points], [m.get(main_key) for _, m in points], '.-',
                        label='{}: {}'.format(label, main_key))
        if main_key.startswith('report_'):
            ax.plot([i for i, m in points], [m.get('val_' + metric) for _, m in points], '--', color=line.get_color(),
                    label='{}: selection {}'.format(label, metric))
    ax.set(xlabel='training images', ylabel='%')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if args.out:
        tmp = '{}.tmp{}.png'.format(args.out, os.getpid())
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, args.out)
        print('Wrote {}'.format(args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())

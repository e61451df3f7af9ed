"""A finished run as one result record (docs/results/NAME.json): the command, the machine, the time, the curve
and the kept epoch's full evaluation, all read from what the run and `--evaluate` wrote.

    record = result_record('kitti', command, 'runs/reproduce/kitti/<timestamp>', {'': metrics, 'flip': metrics},
                           log='runs/reproduce/kitti/train.log', which='best')

The scored model is the run's best/ (the kept epoch) or last/ (the end of its budget) checkpoint, as the
evaluations were run (`--which`); its parameters (the model's weights, Adam's slots and the run's counters left
out) and epoch are read from that checkpoint's index.

Wall time: the sum of the epochs' `seconds` in history.jsonl (each epoch from the end of the previous one, steps,
validation and checkpoints included; roadseg/training/train.py), so a resumed run adds up its segments. Runs
written before that field existed get it from their TensorBoard event times (logs/, one file per segment): each
epoch's summary minus the event before it in the same file; the first epoch of a resumed segment, whose file
starts with that epoch's summary, takes its training seconds from the `Epoch N/M: ... (S s per epoch` line after
the `Resumed from` line of the training log, plus its validation seconds. Seconds per image: training, the wall
time less the validation seconds over the images trained (steps and checkpoints); validation, the validation
seconds over the images validated (prediction at the network's size, reading, resizing and scoring).
"""
import glob
import json
import os
import re
import subprocess
import time

import numpy as np

from ..data.datasets import SELECT
from ..model.names import WEIGHT_SUFFIXES, decoder_of
from ..runs import TrainedRun
from ..system.commit import git_commit
from ..system.cpu import cpu_class, describe
from ..system.files import InputError
from .report import read_history

CPU_CLASSES = {'amx': 'AMX-BF16', 'avx512_bf16': 'AVX512-BF16', 'avx512': 'AVX-512 without BF16', 'avx2': 'AVX2',
               'older': 'no AVX2', 'unknown': 'unknown instruction sets'}
SKIPPED = ('_seconds', '_images', '_threshold', '_road_fraction')  # history keys that are not scores
EVALUATION_NOISE = ('checkpoint', 'data_dir', 'frozen_graph')  # machine paths in metrics.json


def scores_of(entry, prefix):
    """{metric: value} of a history entry's scores with this prefix (val_, report_)."""
    return {k[len(prefix):]: v for k, v in entry.items() if k.startswith(prefix) and not k.endswith(SKIPPED)}


def _event_seconds(logs_dir):
    """{step: seconds} from the TensorBoard files: an epoch summary's time minus the event before it in its file;
    None for a summary that opens its file (the file of a resumed segment is created at its first write)."""
    from ..system.tfcompat import tf  # TensorFlow only for runs that predate history's seconds
    seconds = {}
    for path in sorted(glob.glob(os.path.join(logs_dir, 'events.out.tfevents.*'))):
        before, summaries = None, 0
        for event in sorted(tf.train.summary_iterator(path), key=lambda e: e.wall_time):
            if event.HasField('summary'):
                opens_file = before is None or (not summaries and event.wall_time - before < 1.0)
                seconds[event.step] = None if opens_file else round(event.wall_time - before, 1)
                summaries += 1
            before = event.wall_time
    return seconds


def _resumed_training_seconds(log):
    """{epoch: training seconds} of each epoch that follows a `Resumed from` line in a training log."""
    found, resumed = {}, False
    try:
        with open(log, errors='replace') as f:
            for line in f:
                if line.startswith('Resumed from '):
                    resumed = True
                match = re.match(r'Epoch (\d+)/\d+: loss \S+ \((\d+) s per epoch', line)
                if match and resumed:
                    found[int(match.group(1))] = float(match.group(2))
                    resumed = False
    except OSError:
        pass
    return found


def epoch_seconds(run_dir, entries, log=None):
    """(seconds per entry, source): history.jsonl's, else TensorBoard's event times (see the module docstring).
    InputError when an epoch's time cannot be found."""
    if all('seconds' in e for e in entries):
        return [e['seconds'] for e in entries], 'history.jsonl'
    events = _event_seconds(os.path.join(run_dir, 'logs'))
    resumed = _resumed_training_seconds(log) if log else {}
    out, from_log = [], 0
    for e in entries:
        value = e.get('seconds', events.get(e['step']))
        if value is None and e['epoch'] in resumed:
            value = resumed[e['epoch']] + e.get('val_seconds', 0) + e.get('report_seconds', 0)
            from_log += 1
        if value is None:
            raise InputError('{}: no time recorded for epoch {} (history.jsonl has no seconds, logs/ no event before '
                             'it{})'.format(run_dir, e['epoch'], ', {} no line for it'.format(log) if log else ''))
        out.append(value)
    return out, 'TensorBoard event times{}'.format(
        ' (and the training log for {} first epoch(s) after a resume)'.format(from_log) if from_log else '')


def lscpu():
    """{'model': ..., 'flags': [...]} from `lscpu`, or None where it is missing."""
    try:
        text = subprocess.run(['lscpu'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True,
                              env=dict(os.environ, LC_ALL='C')).stdout
    except OSError:
        return None
    fields = dict(line.split(':', 1) for line in text.splitlines() if ':' in line)
    return {'model': fields.get('Model name', '').strip(), 'flags': fields.get('Flags', '').split()}


def cpu_record(info, machine=None):
    """What trained the run (config.json's cpu) as a line and a class, with `lscpu` of the evaluating machine."""
    return {'line': describe(info)[len('CPU: '):], 'class': CPU_CLASSES[cpu_class(info)], 'model': info['model'],
            'cores': info['cores'], 'flags': sorted(k for k, v in (info['flags'] or {}).items() if v),
            'lscpu': machine}


def read_checkpoint(prefix):
    """(parameters, epoch) of a checkpoint: the number of the model's weights in it (variables named as weights,
    WEIGHT_SUFFIXES: not Adam's slots, not the run's counters), and the epochs it had trained (epochs_done)."""
    from ..system.tfcompat import tf  # reads the index and one scalar, builds no graph
    try:
        shapes = dict(tf.train.list_variables(prefix))
        epoch = int(tf.train.load_variable(prefix, 'epochs_done')) if 'epochs_done' in shapes else None
    except (tf.errors.OpError, ValueError) as e:
        raise InputError('checkpoint {} cannot be read: {}'.format(prefix, str(e).splitlines()[0]))
    if epoch is None:
        raise InputError('checkpoint {} records no epochs_done: not a checkpoint of a training run'.format(prefix))
    return sum(int(np.prod(shape)) for name, shape in shapes.items() if name.endswith(WEIGHT_SUFFIXES)), epoch


def seconds_per_image(entries, seconds, images_trained):
    """{'training': s/image (epoch seconds less validation, over the images trained), 'validation': s/image of
    the validation passes (None without validation images)}."""
    validated = sum(e.get(p + 'images', 0) for e in entries for p in ('val_', 'report_'))
    validating = sum(e.get(p + 'seconds', 0) for e in entries for p in ('val_', 'report_'))
    return {'training': round((sum(seconds) - validating) / images_trained, 4),
            'validation': round(validating / validated, 4) if validated else None}


def _evaluation(metrics):
    return {k: v for k, v in metrics.items() if k not in EVALUATION_NOISE}


def result_record(name, command, run_dir, evaluations, log=None, repo=None, machine=None, which='best'):
    """The JSON-ready record of a finished run. evaluations: {'': metrics.json of --evaluate, 'flip': that of
    --evaluate --flip, ...} of the run's `which` checkpoint ('best' or 'last'); log: the training log (for runs
    without per-epoch seconds); repo: the checkout writing the record, whose commit is `commit` (the run's
    config.json gives `trained_commit`, None for runs from before it, and `resumed_commits`); machine: lscpu()
    (default: read now)."""
    run = TrainedRun(run_dir, which)
    config = run.config
    if not isinstance(config.get('cpu'), dict):
        raise InputError('{}: config.json records no CPU (a run older than that record)'.format(run_dir))
    try:
        entries = read_history(os.path.join(run_dir, 'history.jsonl'))
    except OSError as e:
        raise InputError('{}: history.jsonl cannot be read ({})'.format(run_dir, e.strerror or e))
    if not entries:
        raise InputError('{}: history.jsonl has no epochs'.format(run_dir))
    dataset = run.dataset()
    per_epoch = len(dataset.samples('train')) * config.get('repeat', 1)
    seconds, source = epoch_seconds(run_dir, entries, log)
    has_report = any(k.startswith('report_') for k in entries[0])
    splits = (('selection', 'val_'), ('report', 'report_')) if has_report else (('validation', 'val_'),)
    curve = [dict({'epoch': e['epoch'], 'images': e['epoch'] * per_epoch, 'loss': e['loss'], 'seconds': s},
                  **{split: scores_of(e, prefix) for split, prefix in splits}) for e, s in zip(entries, seconds)]
    kept = [e for e in entries if e.get('best')]
    if not kept:
        raise InputError('{}: history.jsonl marks no kept epoch'.format(run_dir))
    segments = len(glob.glob(os.path.join(run_dir, 'logs', 'events.out.tfevents.*')))
    images_trained = entries[-1]['epoch'] * per_epoch
    parameters, scored_epoch = read_checkpoint(run.checkpoint)
    scored = os.path.basename(os.path.dirname(os.path.abspath(run.checkpoint)))  # best/, or last/ (asked or no best/)
    return {
        'name': name,
        'command': command,
        'evaluated_with': ['python main.py --evaluate RUN' + (' --which last' if which == 'last' else '')
                           + (' --' + key if key else '') for key in sorted(evaluations)],
        'run': os.path.basename(run_dir.rstrip('/')),
        'trained_commit': config.get('commit'),
        'resumed_commits': config.get('resumed_commits', []),
        'commit': git_commit(repo or os.getcwd()),
        'cpu': cpu_record(config['cpu'], lscpu() if machine is None else machine),
        'tensorflow': config['cpu'].get('tensorflow'),
        'precision': 'bf16' if config.get('bf16') else 'fp32',
        'dataset': config.get('dataset'),
        'image_shape': config['image_shape'],
        'epochs': entries[-1]['epoch'],
        'images_per_epoch': per_epoch,
        'images_trained': images_trained,
        'date': time.strftime('%Y-%m-%d', time.gmtime(os.path.getmtime(os.path.join(run_dir, 'history.jsonl')))),
        'decoder': decoder_of(config),
        'parameters': parameters,
        'seconds_per_image': seconds_per_image(entries, seconds, images_trained),
        'wall_time_seconds': round(sum(seconds), 1),
        'wall_time_source': source,
        'segments': max(segments, 1),
        'splits': {'chooses': 'selection' if has_report else 'validation',
                   'choose_images': len(dataset.samples(SELECT if has_report else 'val')),
                   'report_images': len(dataset.samples('val'))},
        'curve': curve,
        'kept_epoch': kept[-1]['epoch'],
        'scored': 'kept' if scored == 'best' else 'last',
        'scored_epoch': scored_epoch,
        'evaluation': {key or 'plain': _evaluation(m) for key, m in evaluations.items()},
    }


def write_record(path, record):
    """The record as indented JSON (atomically)."""
    from ..system.files import write_bytes_atomic
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_bytes_atomic(path, (json.dumps(record, indent=1, sort_keys=True) + '\n').encode())

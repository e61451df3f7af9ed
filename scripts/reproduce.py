#!/usr/bin/env python
"""Reproduce published results: train each named recipe, evaluate its model, write docs/results/NAME.json.

    python scripts/reproduce.py NAME [NAME ...] [--force]

Each recipe (scripts/recipes.py) is one fixed `python main.py` command run in runs/reproduce/NAME/ (its output
also appended to runs/reproduce/NAME/train.log); several names run one after the other, stopping at the first that
fails. Called again, it resumes the run left there as RUN.partial (`--resume`), or skips training when a finished
run is there; either must have been trained with the recipe's settings. Then `python main.py --evaluate RUN` (with
`--which last` where the recipe scores the last model, and `--flip` where it says so) scores the model, reused
while newer than it, and the record of the run (roadseg/evaluation/results.py) goes to docs/results/NAME.json, from
which scripts/results_doc.py regenerates docs/results.md, docs/decoders.md and README's headline (run at the end).

Recipes:
  kitti   the best full-budget KITTI recipe measured, poly decay from 3e-4 after a 5% warm-up, 40 epochs of batch 4
          (8,320 images; the defaults of `python main.py`), its kept epoch (chosen on the selection split) scored
          on the report split, plain and with --flip
  camvid  README's CamVid command: 352x480, 33 epochs of batch 4 (12,111 images), the kitti recipe's learning rate
          (poly decay from 3e-4 after a 5% warm-up), no class weights (median-frequency weights against none at
          1,835 images and Adam 1e-4 constant: camvid-fcn8-median below); its last model scored on the validation
          images (CamVid has no other split to choose an epoch on), plain and with --flip
  sample  the first run on the bundled sample (data/sample: 6 training, 3 validation images), as `python main.py`
          runs it on a fresh clone
  camvid-DECODER  the camvid recipe with --decoder DECODER for 5 epochs (1,835 images) at Adam 1e-4 constant, its
          last model scored
  kitti-DECODER   the kitti recipe with --decoder DECODER for 12 epochs (2,496 images), scored plain
          (DECODER: fcn8 fcn16 fcn32 segnet unet linknet psp; docs/decoders.md tabulates them)
  camvid-fcn8-median  camvid-fcn8 with median-frequency class weights (--class-weights median)
  camvid-fcn8-median-poly, camvid-unet-median-poly  camvid-fcn8-median with the kitti recipe's learning rate
          (poly from 3e-4, 5% warm-up), and the same for --decoder unet
Run it with nothing else computing beside it: the wall time it records is the machine's.
"""
import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]
from roadseg.evaluation.report import read_history  # noqa: E402
from roadseg.evaluation.results import result_record, write_record  # noqa: E402
from roadseg.runs import read_config  # noqa: E402
from roadseg.system.files import InputError  # noqa: E402

from roadseg import cli  # noqa: E402
from recipes import RECIPES, RESULTS_DIR, Recipe  # noqa: E402,F401 (Recipe: for callers that add a recipe)
QUIET_MINUTES = 30.0  # a .partial run whose history changed more recently may still be training (unless --force)


def runs_dir(name):
    return os.path.join('runs', 'reproduce', name)


def command(name):
    """The recipe's training command, as a user types it from the repository's root."""
    return 'python main.py {} --runs-dir {}'.format(RECIPES[name].flags, runs_dir(name))


def evaluate_commands(name, run):
    """The --evaluate commands of the recipe for a run folder: {key in the record: argv after main.py}."""
    plain = ['--evaluate', run] + (['--which', 'last'] if RECIPES[name].which == 'last' else [])
    return dict([('', plain)] + ([('flip', plain + ['--flip'])] if RECIPES[name].flip else []))


def check_settings(name, run):
    """InputError when the run in the recipe's folder was trained with other settings than the recipe's."""
    args = cli.build_parser().parse_args(shlex.split(RECIPES[name].flags))
    config = read_config(run)
    for key, value in sorted(vars(args).items()):
        if key in cli.RECORDED and value is not None and config.get(key) != value:
            raise InputError('{} was trained with {} {}, not the {} recipe\'s {}; move it out of {}'.format(
                run, '--' + key.replace('_', '-'), config.get(key), name, value, runs_dir(name)))


def find_run(name):
    """(finished run or None, newest .partial run or None) in the recipe's folder."""
    folders = sorted(p for p in glob.glob(os.path.join(runs_dir(name), '*')) if os.path.isfile(
        os.path.join(p, 'config.json')))
    finished = [p for p in folders if not p.endswith('.partial')]
    partial = [p for p in folders if p.endswith('.partial')]
    return (finished[-1] if finished else None), (partial[-1] if partial else None)


def check_quiet(partial):
    """InputError when a .partial run's history changed within QUIET_MINUTES (or 1.5 epochs): it may be training."""
    history = os.path.join(partial, 'history.jsonl')
    if not os.path.exists(history):
        return
    epochs = [e['seconds'] for e in read_history(history) if 'seconds' in e]
    quiet = 1.5 * max(epochs) if epochs else 60 * QUIET_MINUTES
    age = time.time() - os.path.getmtime(history)
    if age < quiet:
        raise InputError('{} recorded an epoch {:.0f} min ago: it may be training now; wait for it to end (or stop '
                         'it), or pass --force'.format(partial, age / 60))


def main_py(argv, log):
    """Run `python main.py argv` here (main() moves to the repository's root), its output echoed and appended to
    log; returns its exit code."""
    with open(log, 'a') as out:
        out.write('$ python main.py {}\n'.format(' '.join(shlex.quote(a) for a in argv)))
        out.flush()
        proc = subprocess.Popen([sys.executable, '-u', os.path.join(ROOT, 'main.py')] + argv,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        while True:
            try:
                for line in proc.stdout:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                    out.write(line)
                    out.flush()
                return proc.wait()
            except KeyboardInterrupt:  # main.py got it too: let it save its checkpoint and say so
                continue


def train(name, force):
    """The recipe's finished run, trained or resumed here if needed; InputError when training stops."""
    finished, partial = find_run(name)
    log = os.path.join(runs_dir(name), 'train.log')
    if finished:
        check_settings(name, finished)
        print('{}: finished run {}; training skipped'.format(name, finished), flush=True)
        return finished
    if partial:
        check_settings(name, partial)
        if not force:
            check_quiet(partial)
        print('{}: resuming {} (log: {})'.format(name, partial, log), flush=True)
        argv = ['--resume', partial]
    else:
        data_dir = RECIPES[name].data_dir
        if not os.path.isdir(data_dir):
            raise InputError('{} not found: the {} recipe trains on it (see data/README.md)'.format(data_dir, name))
        print('{}: training: {} (log: {})'.format(name, command(name), log), flush=True)
        argv = shlex.split(command(name))[2:]
    os.makedirs(runs_dir(name), exist_ok=True)
    code = main_py(argv, log)
    if code:
        raise InputError('training stopped (exit code {})'.format(code))
    finished, _ = find_run(name)
    if finished is None:
        raise InputError('training ended but left no finished run in {}'.format(runs_dir(name)))
    return finished


def evaluate(name, run):
    """{key: metrics} of the recipe's evaluations of run's scored model (its best/ or last/), each run unless a
    newer one is there."""
    log = os.path.join(runs_dir(name), 'train.log')
    which = RECIPES[name].which
    scored = os.path.getmtime(os.path.join(run, which, 'checkpoint'))
    results = {}
    for key, argv in evaluate_commands(name, run).items():
        path = os.path.join(run, 'evaluation_' + which + ('_' + key if key else ''), 'metrics.json')
        if not (os.path.exists(path) and os.path.getmtime(path) > scored):
            print('{}: python main.py {}'.format(name, ' '.join(argv)), flush=True)
            code = main_py(argv, log)
            if code:
                raise InputError('python main.py {} failed (exit code {})'.format(' '.join(argv), code))
        else:
            print('{}: {} is newer than the {} model; reused'.format(name, path, which), flush=True)
        with open(path) as f:
            try:
                results[key] = json.load(f)
            except ValueError as e:
                raise InputError('{} is damaged ({}); delete it and run again to evaluate anew'.format(path, e))
    return results


def reproduce(name, force=False):
    """Train (or resume, or skip), evaluate, write docs/results/NAME.json; returns its path."""
    run = train(name, force)
    evaluations = evaluate(name, run)
    record = result_record(name, command(name), run, evaluations, log=os.path.join(runs_dir(name), 'train.log'),
                           repo=ROOT, which=RECIPES[name].which)
    path = os.path.join(RESULTS_DIR, name + '.json')
    write_record(path, record)
    print('Wrote {} ({} images in {:.0f} min; {} epoch {} of {} scored)'.format(
        path, record['images_trained'], record['wall_time_seconds'] / 60, record['scored'], record['scored_epoch'],
        record['epochs']))
    return path


def regenerate_docs():
    import results_doc
    return results_doc.main([])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('names', nargs='+', metavar='NAME', choices=sorted(RECIPES),
                   help='recipes to run, one after the other: ' + ' '.join(RECIPES))
    p.add_argument('--force', action='store_true', help='resume a .partial run even if it recorded an epoch lately')
    args = p.parse_args(argv)
    os.chdir(ROOT)  # the recipes' paths are relative to the repository's root, as their commands are typed
    code, done = 0, []
    try:
        for name in args.names:
            reproduce(name, args.force)
            done.append(name)
    except KeyboardInterrupt:
        code, message = 130, '\nInterrupted'
    except InputError as e:
        code, message = 1, 'error: {}: {}'.format(args.names[len(done)], e)
    except OSError as e:  # docs/results/ or the run's folders not writable, disk full, a run's file gone
        code, message = 1, 'error: {}: {}: {}'.format(args.names[len(done)], e.filename or 'output', e.strerror or e)
    if code:
        print('{}; `python scripts/reproduce.py {}` continues'.format(message, ' '.join(args.names[len(done):])),
              file=sys.stderr)
    docs = regenerate_docs() if done else 0
    return code or docs


if __name__ == '__main__':
    sys.exit(main())

"""A newcomer's first run: flags that fit their mode, readable outputs and progress, honest summaries."""
import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SAMPLE, TINY_SHAPE, error_line, run_cli, run_main
from roadseg import cli, task
from roadseg.data import batches
from roadseg.system import files
from roadseg.system.tfcompat import tf
from roadseg.training import validation
import helper


@pytest.mark.parametrize('argv,message', [
    (['--checkpoint', 'runs/x'], '--checkpoint does not apply to training; it is for --video, --predict'),
    (['--output', 'o.mp4'], '--output does not apply to training; it is for --video, --predict'),
    (['--which', 'last'], '--which does not apply to training; it is for --evaluate, --video, --predict, --export'),
    (['--predict', 'in', '--checkpoint', 'r'], '--predict needs --output OUT_DIR and --checkpoint RUN'),
    (['--evaluate', 'runs/x', '--epochs', '3'], '--epochs does not apply to --evaluate; it is for training, --resume'),
    (['--video', 'in.mp4', '--output', 'o.mp4', '--checkpoint', 'r', '--data-dir', 'd'],
     '--data-dir does not apply to --video; it is for training, --resume, --evaluate'),
    (['--export', 'runs/x', '--bf16'], '--bf16 does not apply to --export'),
    (['--resume', 'runs/x', '--init-from', 'runs/y'], '--init-from does not apply to --resume; it is for training'),
    (['--evaluate', 'a', '--export', 'b'], '--evaluate and --export cannot be used together'),
    (['--video', 'in.mp4', '--output', 'o.mp4'], '--video needs --output OUT.mp4 and --checkpoint RUN'),
])
def test_flags_outside_their_mode_are_refused(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(*argv) == 2
    assert message in error_line(capsys)
    assert not os.path.exists(tmp_path / 'runs'), 'nothing is started'


def test_help_shows_each_default_once():
    text = cli.build_parser().format_help()
    assert '(default: None)' not in text and 'default: ' not in text
    for flag, default in (('--epochs', 'default 40'), ('--batch-size', 'default 4'), ('--which', 'default best'),
                          ('--learning-rate', 'default 0.0003'), ('--lr-schedule', 'default poly'),
                          ('--image-shape', 'default 160 576')):
        block = text[text.index('\n  ' + flag) + 3:] + '\n  -'  # the option's own entry, not the usage line
        assert default in ' '.join(block[:block.index('\n  -')].split()), flag
    assert text.count('default 40') == 1


def test_resume_of_a_completed_run_is_refused_untouched(tiny_run, capsys):
    before = {p: os.path.getmtime(os.path.join(tiny_run, p)) for p in os.listdir(tiny_run)}
    assert run_cli('--resume', tiny_run) == 2
    assert 'run {} is complete'.format(tiny_run) in error_line(capsys)
    assert {p: os.path.getmtime(os.path.join(tiny_run, p)) for p in os.listdir(tiny_run)} == before


def test_resume_refuses_flags_that_conflict_with_the_run(tiny_run, tmp_path, capsys):
    run = str(tmp_path / 'run.partial')
    shutil.copytree(tiny_run, run)
    assert run_cli('--resume', run, '--learning-rate', 0.5) == 2
    line = error_line(capsys)
    assert '--learning-rate 0.5 conflicts with the run\'s {}'.format(os.path.join(run, 'config.json')) in line


def test_evaluate_uses_the_runs_data_and_keeps_best_and_last_apart(tiny_run, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no data/data_road here: the run's config.json says where its data is
    assert run_cli('--evaluate', tiny_run) == 0
    assert run_cli('--evaluate', tiny_run, '--which', 'last') == 0
    out = capsys.readouterr().out
    assert 'bundled sample' not in out
    assert 'on 3 validation images of {}'.format(SAMPLE) in out
    assert 'warning: only 3 validation images' in out
    for which in ('best', 'last'):
        metrics = json.load(open(os.path.join(tiny_run, 'evaluation_' + which, 'metrics.json')))
        assert metrics['checkpoint'].split(os.sep)[-2] == which and metrics['threshold'] == 0.5


def test_evaluate_without_config_or_data_is_an_error(tiny_run, tmp_path, capsys):
    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run)
    config = os.path.join(run, 'config.json')
    moved = json.load(open(config))
    moved['data_dir'] = str(tmp_path / 'moved')
    assert run_cli('--evaluate', run, '--data-dir', tmp_path / 'nothing') == 2
    assert 'data for evaluation not found: {}'.format(tmp_path / 'nothing') in error_line(capsys)
    files.write_bytes_atomic(config, json.dumps(moved).encode())
    assert run_cli('--evaluate', run) == 2
    assert 'data for evaluation not found: {}'.format(tmp_path / 'moved') in error_line(capsys)
    os.remove(config)
    assert run_cli('--evaluate', run, '--data-dir', SAMPLE) == 2
    assert '{} has no config.json'.format(run) in error_line(capsys)


def test_outputs_are_readable_by_group_and_others(tiny_run):
    """Written under the tests' umask (022 unless changed): files 0644, as a plain open() makes them."""
    want = 0o666 & ~files.UMASK
    paths = ['config.json', 'loss_curve.png', 'history.jsonl', 'best/frozen_inference.pb',
             'best/evaluation/metrics.json', 'best/evaluation/pr_curve.png']
    paths += [os.path.join('test_images', n) for n in os.listdir(os.path.join(tiny_run, 'test_images'))]
    for path in paths:
        assert stat.S_IMODE(os.stat(os.path.join(tiny_run, path)).st_mode) == want, path


def test_atomic_write_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        files.UMASK = 0o027
        files.write_bytes_atomic(str(tmp_path / 'a.json'), b'{}')
    finally:
        os.umask(old)
        files.UMASK = old
    assert stat.S_IMODE(os.stat(str(tmp_path / 'a.json')).st_mode) == 0o640


def test_training_log_has_plain_lines_and_the_threshold(tmp_path, tiny_vgg_dir):
    """Off a terminal: no carriage returns, one line per epoch, the threshold and the kept epoch stated."""
    result = run_main('--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--runs-dir', tmp_path, '--epochs', 2,
                      '--batch-size', 3, *TINY_SHAPE)
    assert result.returncode == 0, result.stderr
    assert '\r' not in result.stdout
    assert [line.split(':')[0] for line in result.stdout.splitlines() if line.startswith('Epoch ')] == \
        ['Epoch 1/2', 'Epoch 2/2']
    assert 'at threshold 0.50' in result.stdout
    assert 'Kept epoch ' in result.stdout and 'too few for a reliable number' in result.stdout


def _history(path, entries):
    with open(path, 'w') as f:
        for e in entries:
            f.write(json.dumps(e) + '\n')
        f.write('{"epoch": 9, "lo')  # a line torn by a crash
    return path


@pytest.mark.parametrize('fraction,warned', [(0.0, 'almost nothing'), (0.3, None), (0.999, 'almost everything')])
def test_summary_warns_about_a_model_that_marks_nothing_or_everything(tmp_path, capsys, fraction, warned):
    entry = dict(epoch=1, loss=0.5, best=True, val_iou=0.1, val_max_f1=0.8, val_ap=0.7, val_road_fraction=fraction)
    validation.summarize(_history(str(tmp_path / 'h.jsonl'), [entry]), 3, task.kitti())
    out = capsys.readouterr().out
    assert 'Kept epoch 1 of 1: validation IoU 0.100 at threshold 0.50' in out
    assert ('warning: the kept model marks ' + warned in out) if warned else 'warning' not in out


def test_torn_history_line_does_not_break_the_plot(tmp_path):
    from roadseg.evaluation import report as evaluate
    history = _history(str(tmp_path / 'h.jsonl'), [dict(epoch=1, loss=0.5, val_max_f1=0.8, val_iou=0.5)])
    evaluate.plot_history(str(tmp_path / 'curve.png'), history, task.Binary.history_curves)
    assert os.path.getsize(str(tmp_path / 'curve.png')) > 1000


def test_curves_show_the_validation_split_where_a_selection_split_chose():
    """With a selection split (val_*) the curves labelled validation draw the validation split (report_*)."""
    from roadseg.evaluation import report as evaluate
    chosen = [dict(epoch=1, loss=0.5, val_iou=0.6, report_iou=0.5), dict(epoch=2, loss=0.4, val_iou=0.7)]
    assert evaluate.curve_series(chosen, task.Binary.history_curves) == [('validation MaxF1', [], []), (
        'validation IoU at 0.50', [1], [50.0])]
    alone = [dict(epoch=1, loss=0.5, val_iou=0.6, val_max_f1=0.8)]
    assert [values for _, _, values in evaluate.curve_series(alone, task.Binary.history_curves)] == [[80.0], [60.0]]


def test_checkpoints_are_written_once_at_the_end_of_a_short_run(tmp_path, tiny_vgg_dir, monkeypatch):
    saves = []
    real = tf.train.Saver.save
    monkeypatch.setattr(tf.train.Saver, 'save', lambda self, sess, path, *a, **k: (saves.append(path),
                                                                                    real(self, sess, path, *a, **k))[1])
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--runs-dir', tmp_path, '--epochs', 3,
                   '--batch-size', 3, *TINY_SHAPE) == 0
    assert sorted(os.path.basename(os.path.dirname(p)) for p in saves) == ['best', 'last']


def test_resumed_epochs_see_the_same_data_as_an_uninterrupted_run():
    get_batches = helper.gen_batch_function(os.path.join(SAMPLE, 'training'), (32, 96), exclude=set(), seed=3,
                                            repeat=2)
    sums = lambda epoch: [float(images.sum()) for images, _ in epoch]  # noqa: E731
    uninterrupted = [sums(get_batches(4)) for _ in range(3)]
    get_batches.resume_at(1, skip=2)
    assert get_batches.num_batches(4) == len(uninterrupted[1]) - 2
    assert [sums(get_batches(4)) for _ in range(2)] == [uninterrupted[1][2:], uninterrupted[2]]


def test_prefetch_thread_ends_when_the_consumer_stops():
    import threading
    produced = []

    def endless():
        while True:
            produced.append(1)
            yield np.zeros(3)

    stream = batches.prefetch(endless(), depth=1)
    next(stream)
    stream.close()  # the consumer stops while the worker waits on a full queue
    assert not [t for t in threading.enumerate() if t.name == 'prefetch' and t.is_alive()]


def test_project_tests_without_kitti_data_skip_in_one_line(tmp_path):
    for name in ('project_tests.py', 'main.py', 'helper.py', 'roadseg'):
        src = os.path.join(ROOT, name)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, str(tmp_path / name))
    result = subprocess.run([sys.executable, 'project_tests.py'], cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert 'Traceback' not in result.stdout + result.stderr
    assert 'SKIPPED: test_for_kitti_dataset: {} not found'.format(tmp_path / 'data' / 'data_road') in result.stdout
    assert result.stdout.count('Tests Passed') == 6

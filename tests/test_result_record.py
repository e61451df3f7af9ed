"""A run folder's result record (roadseg/evaluation/results.py): the command, the machine, the time, the curve, the
scored model, and the commits of the code that trained the run (config.json, roadseg/system/commit.py) and that
wrote the record."""
import json
import os
import subprocess

import pytest

from conftest import ROOT, SAMPLE
from roadseg import cli
from roadseg.evaluation import results
from roadseg.system.commit import git_commit
from roadseg.system.files import InputError


CPU = {'model': 'Test CPU', 'cores': 2, 'flags': {'avx2': True, 'fma': True, 'avx512f': True, 'avx512_bf16': False,
                                                  'amx_bf16': False}, 'tensorflow': '2.21.0', 'onednn': True,
       'onednn_reason': 'default for this CPU'}
ROAD = {'max_f1': 0.9, 'max_f1_threshold': 0.5, 'precision': 0.91, 'recall': 0.89, 'average_precision': 0.88,
        'iou': 0.8, 'road_labeled_road': 0.85, 'nonroad_labeled_road': 0.02, 'rubric_passed': True,
        'road_pixels': 10, 'nonroad_pixels': 30}


def _entry(epoch, best=False, seconds=None, **scores):
    e = dict({'epoch': epoch, 'step': 12 * epoch, 'loss': 0.5 / epoch, 'val_iou': 0.5 + epoch / 10,
              'val_max_f1': 0.6 + epoch / 10, 'val_ap': 0.7, 'val_max_f1_threshold': 0.5, 'val_seconds': 2.0,
              'val_images': 3, 'val_road_fraction': 0.2}, **scores)
    if best:
        e['best'] = True
    if seconds is not None:
        e['seconds'] = seconds
    return e


# A checkpoint's variables: the model's weights (122 numbers), Adam's slots and the run's counters
WEIGHTS = [('conv1_1/filter', [3, 3, 3, 4]), ('conv1_1/biases', [4]), ('decoder/score/kernel', [1, 1, 4, 2]),
           ('decoder/score/bias', [2])]
NOT_WEIGHTS = [('decoder/score/kernel/Adam', [1, 1, 4, 2]), ('decoder/score/kernel/Adam_1', [1, 1, 4, 2]),
               ('beta1_power', []), ('best_val_iou', [])]


def _checkpoint(folder, epoch, counters=True):
    """A training checkpoint in folder (best/ or last/) after `epoch` epochs: WEIGHTS and NOT_WEIGHTS."""
    from roadseg.system.tfcompat import tf
    with tf.Graph().as_default(), tf.Session() as sess:
        for name, shape in WEIGHTS + NOT_WEIGHTS:
            tf.get_variable(name, shape, initializer=tf.ones_initializer())
        if counters:
            tf.Variable(epoch, name='epochs_done')
            tf.train.get_or_create_global_step()
        sess.run(tf.global_variables_initializer())
        tf.train.Saver().save(sess, os.path.join(folder, 'model'), global_step=12 * epoch)


def _run(tmp_path, entries, bf16=False, decoder=None, **recorded):
    """A finished run folder of the bundled sample (6 training images, 4 passes per epoch), with its best/
    checkpoint at the kept epoch and its last/ at the last epoch; recorded: more of config.json."""
    run = tmp_path / '20261201-120000'
    (run / 'logs').mkdir(parents=True)
    config = {'dataset': 'kitti_road', 'data_dir': SAMPLE, 'repeat': 4, 'batch_size': 2, 'image_shape': [160, 576],
              'cpu': CPU, 'bf16': bf16, 'precision': 'auto', **recorded}
    if decoder:
        config['decoder'] = decoder
    (run / 'config.json').write_text(json.dumps(config))
    (run / 'history.jsonl').write_text(''.join(json.dumps(e) + '\n' for e in entries))
    kept = [e['epoch'] for e in entries if e.get('best')]
    if kept:
        _checkpoint(str(run / 'best'), kept[-1])
    _checkpoint(str(run / 'last'), entries[-1]['epoch'])
    return str(run)


def _metrics(**extra):
    return dict({'um': ROAD, 'overall': dict(ROAD, max_f1=0.95)}, checkpoint='/abs/run/best/model-36',
                data_dir='/abs/data', frozen_graph=True, images=3, precision='fp32', **extra)


def test_record_of_a_resumed_run(tmp_path):
    """Epoch seconds of every segment add up; images are epochs x training images x passes; machine paths go;
    the scored model's parameters count its weights alone; seconds per image leave validation out of training."""
    run = _run(tmp_path, [_entry(1, seconds=30.5), _entry(2, best=True, seconds=20.0), _entry(3, seconds=21.5)],
               bf16=True, decoder='unet', commit='a' * 40, resumed_commits=['b' * 40 + '-dirty'])
    os.utime(os.path.join(run, 'history.jsonl'), (1796150000, 1796150000))  # 2026-12-01 UTC
    record = results.result_record('sample', 'python main.py --epochs 3', run,
                                   {'': _metrics(), 'flip': _metrics(flip_tta=True)}, repo=ROOT,
                                   machine={'model': 'Test CPU', 'flags': ['avx2']})
    assert (record['wall_time_seconds'], record['wall_time_source'], record['segments']) == (72.0, 'history.jsonl', 1)
    assert (record['epochs'], record['images_per_epoch'], record['images_trained']) == (3, 24, 72)
    assert record['kept_epoch'] == 2 and record['precision'] == 'bf16' and record['tensorflow'] == '2.21.0'
    assert (record['scored'], record['scored_epoch'], record['parameters']) == ('kept', 2, 122)
    assert record['decoder'] == 'unet' and record['date'] == '2026-12-01'
    assert record['seconds_per_image'] == {'training': round((72.0 - 3 * 2.0) / 72, 4), 'validation': round(6.0 / 9, 4)}
    assert record['cpu']['class'] == 'AVX-512 without BF16' and record['cpu']['flags'] == ['avx2', 'avx512f', 'fma']
    assert record['cpu']['line'].startswith('Test CPU, 2 cores (avx2 fma avx512; no avx512_bf16, no amx)')
    assert [c['images'] for c in record['curve']] == [24, 48, 72]
    assert record['curve'][1]['validation'] == {'iou': 0.7, 'max_f1': 0.8, 'ap': 0.7}
    assert record['splits'] == {'chooses': 'validation', 'choose_images': 3, 'report_images': 3}
    assert record['evaluation']['plain']['overall']['max_f1'] == 0.95 and record['evaluation']['flip']['flip_tta']
    assert not {'checkpoint', 'data_dir', 'frozen_graph'} & set(record['evaluation']['plain'])
    assert record['evaluated_with'] == ['python main.py --evaluate RUN', 'python main.py --evaluate RUN --flip']
    assert (record['trained_commit'], record['resumed_commits']) == ('a' * 40, ['b' * 40 + '-dirty'])
    assert record['commit'] == git_commit(ROOT) and 'git_commit' not in record  # the code writing the record
    path = str(tmp_path / 'docs' / 'results' / 'sample.json')
    results.write_record(path, record)
    with open(path) as f:
        assert json.load(f) == record


def test_report_split_curve_and_missing_time(tmp_path):
    report = dict(report_iou=0.81, report_max_f1=0.91, report_ap=0.9, report_seconds=5.0, report_images=57)
    run = _run(tmp_path, [_entry(1, best=True, seconds=10, **report), _entry(2, **report)])
    with pytest.raises(InputError, match='no time recorded for epoch 2'):
        results.result_record('kitti', 'python main.py', run, {'': _metrics()}, repo=ROOT, machine={})
    entries = [_entry(1, best=True, seconds=10, **report), _entry(2, seconds=12, **report)]
    run = _run(tmp_path / 'b', entries)
    config = json.loads(open(os.path.join(run, 'config.json')).read())
    with open(os.path.join(run, 'config.json'), 'w') as f:
        json.dump(dict(config, cpu=None), f)
    with pytest.raises(InputError, match='config.json records no CPU'):
        results.result_record('kitti', 'python main.py', run, {'': _metrics()}, repo=ROOT, machine={})
    with open(os.path.join(run, 'config.json'), 'w') as f:
        json.dump(config, f)
    record = results.result_record('kitti', 'python main.py', run, {'': _metrics()}, repo=ROOT, machine={})
    assert record['curve'][0]['selection']['max_f1'] == pytest.approx(0.7)
    assert record['curve'][0]['report'] == {'iou': 0.81, 'max_f1': 0.91, 'ap': 0.9}
    assert record['splits']['chooses'] == 'selection'


def test_record_of_the_last_model_and_unreadable_checkpoints(tmp_path):
    """which='last' scores last/ (the record says so, with its epoch read from the checkpoint); a checkpoint
    that is missing, without the run's counters, or corrupt stops the record with one line naming it."""
    import shutil
    run = _run(tmp_path, [_entry(1, best=True, seconds=10), _entry(2, seconds=12), _entry(3, seconds=12)])
    record = results.result_record('camvid-fcn8', 'python main.py', run, {'': _metrics()}, repo=ROOT, machine={},
                                   which='last')
    assert (record['scored'], record['scored_epoch'], record['kept_epoch'], record['epochs']) == ('last', 3, 1, 3)
    assert record['parameters'] == 122 and record['decoder'] == 'fcn8'
    assert record['evaluated_with'] == ['python main.py --evaluate RUN --which last']
    last = os.path.join(run, 'last')
    shutil.rmtree(last)
    _checkpoint(last, 3, counters=False)
    with pytest.raises(InputError, match=r'checkpoint .*last/model-36 records no epochs_done'):
        results.result_record('x', 'python main.py', run, {'': _metrics()}, repo=ROOT, machine={}, which='last')
    with open(os.path.join(last, 'model-36.index'), 'wb') as f:
        f.write(b'not a checkpoint index')
    with pytest.raises(InputError, match=r'checkpoint .*last/model-36 cannot be read'):
        results.result_record('x', 'python main.py', run, {'': _metrics()}, repo=ROOT, machine={}, which='last')
    shutil.rmtree(last)
    shutil.rmtree(os.path.join(run, 'best'))
    with pytest.raises(InputError, match='no checkpoint found at'):
        results.result_record('x', 'python main.py', run, {'': _metrics()}, repo=ROOT, machine={}, which='last')


def test_seconds_of_an_older_run_from_its_event_files(tmp_path):
    """Without seconds in history.jsonl: TensorBoard's times; a resumed segment's first epoch from the log."""
    import time
    from roadseg.system.tfcompat import tf
    run = _run(tmp_path, [_entry(1, best=True), _entry(2, report_seconds=3.0), _entry(3)])
    logs = os.path.join(run, 'logs')

    def summary(step, wall_time):
        return tf.Event(wall_time=wall_time, step=step, summary=tf.Summary(value=[tf.Summary.Value(
            tag='loss/train', simple_value=0.1)]))

    with tf.Graph().as_default():
        first = tf.summary.FileWriter(logs, filename_suffix='.a')  # the first segment's file opens at its start
        first.add_event(summary(12, time.time() + 100.0))
        first.close()
        second = tf.summary.FileWriter(logs, filename_suffix='.b')  # a resumed segment's opens at its first write
        start = time.time()
        second.add_event(summary(24, start - 0.5))
        second.add_event(summary(36, start + 40.0))
        second.close()
    log = tmp_path / 'train.log'
    log.write_text('Epoch 1/3: loss 0.5 (90 s per epoch, about 3 min left)\n'
                   'Resumed from x/last/model-12: epoch 1 of 3\n'
                   'Epoch 2/3: loss 0.2 (30 s per epoch, about 1 min left)\nEpoch 3/3: loss 0.1 (31 s per epoch)\n')
    seconds, source = results.epoch_seconds(run, results.read_history(os.path.join(run, 'history.jsonl')), str(log))
    assert seconds[0] == pytest.approx(100.0, abs=1.0)
    assert seconds[1] == 30 + 2.0 + 3.0  # training seconds from the log, validation from history.jsonl
    assert seconds[2] == pytest.approx(40.0, abs=0.5)
    assert source == 'TensorBoard event times (and the training log for 1 first epoch(s) after a resume)'


def test_training_records_each_epochs_seconds(tiny_run):
    """history.jsonl's seconds: the epoch's wall time, validation included."""
    entries = results.read_history(os.path.join(tiny_run, 'history.jsonl'))
    assert entries and all(e['seconds'] >= e['val_seconds'] > 0 for e in entries)


def _git(repo, *args):
    return subprocess.run(['git', '-C', str(repo), '-c', 'user.name=t', '-c', 'user.email=t@example.com'] + list(args),
                          stdout=subprocess.PIPE, universal_newlines=True, check=True, timeout=60).stdout.strip()


def test_the_commit_of_the_code(tmp_path, monkeypatch):
    """code_commit: the commit of the checkout roadseg/ is part of, '-dirty' with changed tracked files (not with
    untracked ones); None for a roadseg/ outside git, for one installed in a virtual environment inside a checkout,
    and when git is missing or hangs."""
    from roadseg.system import commit
    checkout, installed = tmp_path / 'checkout', tmp_path / 'checkout' / 'venv' / 'site-packages'
    (checkout / 'roadseg').mkdir(parents=True)
    (checkout / 'roadseg' / '__init__.py').write_text('')
    _git(checkout, 'init', '-q')
    _git(checkout, 'add', 'roadseg')
    _git(checkout, 'commit', '-q', '-m', 'code')
    head = _git(checkout, 'rev-parse', 'HEAD')
    assert len(head) == 40 and commit.code_commit(str(checkout)) == head
    (checkout / 'untracked.txt').write_text('x')
    assert commit.code_commit(str(checkout)) == head
    (checkout / 'roadseg' / '__init__.py').write_text('# changed')
    assert commit.code_commit(str(checkout)) == head + '-dirty'
    (installed / 'roadseg').mkdir(parents=True)
    assert commit.code_commit(str(installed)) is None
    assert commit.code_commit(str(tmp_path)) is None and commit.git_commit(str(tmp_path)) is None
    monkeypatch.setenv('PATH', str(tmp_path / 'no-git-here'))
    assert commit.code_commit(str(checkout)) is None
    monkeypatch.undo()

    def hangs(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs.get('timeout'))

    monkeypatch.setattr(commit.subprocess, 'run', hangs)
    assert commit.code_commit(str(checkout)) is None


def test_a_training_records_its_commit(tmp_path, monkeypatch):
    """A new run's config.json gets the commit of the code training it; a resume by other code adds that to
    resumed_commits (once), by the same code nothing; git failing leaves commit null and the training going."""
    from roadseg.runs import read_config
    from roadseg.system import commit
    from roadseg.training import distributed, train
    config = dict(cli.RECORDED, data_dir=SAMPLE)
    monkeypatch.setattr(train, 'code_commit', lambda: 'a' * 40)
    run = train.open_run(dict(config), distributed.Solo())
    assert run.config['commit'] == 'a' * 40 and 'resumed_commits' not in run.config
    run.create(str(tmp_path))
    assert read_config(run.partial)['commit'] == 'a' * 40
    for now, resumed in (('a' * 40, None), ('b' * 40, ['b' * 40]), ('b' * 40, ['b' * 40]), (None, ['b' * 40, None])):
        monkeypatch.setattr(train, 'code_commit', lambda: now)
        again = train.open_run({}, distributed.Solo(), resume=run.partial, given={})
        again.create(str(tmp_path))
        assert (read_config(run.partial)['commit'], read_config(run.partial).get('resumed_commits')) == (
            'a' * 40, resumed)
    monkeypatch.setattr(train, 'code_commit', commit.code_commit)

    def fails(*args, **kwargs):
        raise OSError('git: not found')

    monkeypatch.setattr(commit.subprocess, 'run', fails)
    assert train.open_run(dict(config), distributed.Solo()).config['commit'] is None


def test_tiny_run_records_the_commit_that_trained_it(tiny_run):
    import re
    from roadseg.runs import read_config
    from roadseg.system.commit import code_commit
    recorded = read_config(tiny_run)['commit']
    try:
        head = subprocess.run(['git', '-C', ROOT, 'rev-parse', 'HEAD'], stdout=subprocess.PIPE,
                              universal_newlines=True, timeout=30)
    except OSError:  # no git
        head = None
    if head is None or head.returncode or code_commit() is None:  # not a checkout of its own: nothing recorded
        assert recorded is None
        return
    assert re.match(r'^[0-9a-f]{40}(-dirty)?$', recorded) and recorded[:40] == head.stdout.strip()

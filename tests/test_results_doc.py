"""The results pipeline: a run folder's record (roadseg/evaluation/results.py), the recipes of
scripts/reproduce.py, and docs/results.md and README's headline being what docs/results/*.json generate."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SAMPLE
from roadseg import cli
from roadseg.evaluation import results
from roadseg.system.files import InputError

sys.path.insert(0, os.path.join(ROOT, 'scripts'))
import reproduce  # noqa: E402
import results_doc  # noqa: E402

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


def _run(tmp_path, entries, bf16=False):
    """A finished run folder of the bundled sample (6 training images, 4 passes per epoch)."""
    run = tmp_path / '20261201-120000'
    (run / 'logs').mkdir(parents=True)
    config = {'dataset': 'kitti_road', 'data_dir': SAMPLE, 'repeat': 4, 'batch_size': 2, 'image_shape': [160, 576],
              'cpu': CPU, 'bf16': bf16, 'precision': 'auto'}
    (run / 'config.json').write_text(json.dumps(config))
    (run / 'history.jsonl').write_text(''.join(json.dumps(e) + '\n' for e in entries))
    return str(run)


def _metrics(**extra):
    return dict({'um': ROAD, 'overall': dict(ROAD, max_f1=0.95)}, checkpoint='/abs/run/best/model-36',
                data_dir='/abs/data', frozen_graph=True, images=3, precision='fp32', **extra)


def test_record_of_a_resumed_run(tmp_path):
    """Epoch seconds of every segment add up; images are epochs x training images x passes; machine paths go."""
    run = _run(tmp_path, [_entry(1, seconds=30.5), _entry(2, best=True, seconds=20.0), _entry(3, seconds=21.5)],
               bf16=True)
    record = results.result_record('sample', 'python main.py --epochs 3', run,
                                   {'': _metrics(), 'flip': _metrics(flip_tta=True)}, repo=ROOT,
                                   machine={'model': 'Test CPU', 'flags': ['avx2']})
    assert (record['wall_time_seconds'], record['wall_time_source'], record['segments']) == (72.0, 'history.jsonl', 1)
    assert (record['epochs'], record['images_per_epoch'], record['images_trained']) == (3, 24, 72)
    assert record['kept_epoch'] == 2 and record['precision'] == 'bf16' and record['tensorflow'] == '2.21.0'
    assert record['cpu']['class'] == 'AVX-512 without BF16' and record['cpu']['flags'] == ['avx2', 'avx512f', 'fma']
    assert record['cpu']['line'].startswith('Test CPU, 2 cores (avx2 fma avx512; no avx512_bf16, no amx)')
    assert [c['images'] for c in record['curve']] == [24, 48, 72]
    assert record['curve'][1]['validation'] == {'iou': 0.7, 'max_f1': 0.8, 'ap': 0.7}
    assert record['splits'] == {'chooses': 'validation', 'choose_images': 3, 'report_images': 3}
    assert record['evaluation']['plain']['overall']['max_f1'] == 0.95 and record['evaluation']['flip']['flip_tta']
    assert not {'checkpoint', 'data_dir', 'frozen_graph'} & set(record['evaluation']['plain'])
    assert record['evaluated_with'] == ['python main.py --evaluate RUN', 'python main.py --evaluate RUN --flip']
    assert len(record['git_commit']) >= 40
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


def test_recipes():
    """The KITTI recipe is the default of main.py on the full data; each recipe's flags parse; a run trained
    otherwise is refused by name."""
    assert reproduce.command('kitti') == ('python main.py --epochs 40 --batch-size 4 --learning-rate 3e-4 '
                                          '--lr-schedule poly --warmup 0.05 --runs-dir runs/reproduce/kitti')
    kitti = vars(cli.build_parser().parse_args(reproduce.RECIPES['kitti'].flags.split()))
    assert all(cli.RECORDED[k] == v for k, v in kitti.items() if v is not None)
    sample = vars(cli.build_parser().parse_args(reproduce.RECIPES['sample'].flags.split()))
    assert all(cli.SAMPLE_RECIPE[k] == sample[k] for k in cli.SAMPLE_RECIPE)
    assert reproduce.RECIPES['kitti'].flip and not reproduce.RECIPES['camvid'].flip
    assert '--class-weights' not in reproduce.RECIPES['camvid'].flags


def test_a_run_of_other_settings_is_refused(tmp_path):
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'config.json').write_text(json.dumps(dict(cli.RECORDED, learning_rate=1e-4)))
    with pytest.raises(InputError, match='trained with --learning-rate 0.0001, not the kitti recipe\'s 0.0003'):
        reproduce.check_settings('kitti', str(run))
    (run / 'config.json').write_text(json.dumps(dict(cli.RECORDED)))
    reproduce.check_settings('kitti', str(run))


def test_sections_from_a_record_and_without_one(tmp_path):
    run = _run(tmp_path, [_entry(1, seconds=60), _entry(2, best=True, seconds=3600)])
    record = results.result_record('kitti', 'python main.py --epochs 2', run,
                                   {'': _metrics(), 'flip': _metrics()}, repo=ROOT, machine={})
    text = results_doc.results_text({'kitti': record})
    assert 'MaxF1 **95.00**, AP 88.00, road IoU **0.800** (`--flip`: 95.00 / 88.00 / 0.800)' in text
    assert '| um | 90.00 | 88.00 | 91.00 | 89.00 | 0.800 | 0.850 | 0.020 | pass |' in text
    assert '| **2** (kept) | 48 | 0.2500 | 80.00 | 70.00 | 0.700 | 3600 |' in text
    assert '48 images (2 epochs of 24, 160x576) in 1 h 01 min of training (each epoch\'s steps, validation and ' \
        'checkpoints summed over 1 training segment, from history.jsonl)' in text
    assert 'Not yet run: `python scripts/reproduce.py camvid`' in text
    headline = results_doc.headline_text({'kitti': record})
    assert '| KITTI Road | MaxF1 **95.00**' in headline and '| 2-core Test CPU (AVX-512 without BF16), ' \
        'TensorFlow 2.21.0, fp32 | 48 | 1 h 01 min |' in headline
    assert '| CamVid | not yet run: `python scripts/reproduce.py camvid` |' in headline
    with pytest.raises(ValueError, match='needs one'):
        results_doc.replace_between('no markers', results_doc.MARKERS['README.md'], '', 'README.md')


def test_docs_are_what_the_records_generate():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'results_doc.py'), '--check'],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, '', '')


def test_training_records_each_epochs_seconds(tiny_run):
    """history.jsonl's seconds: the epoch's wall time, validation included."""
    entries = results.read_history(os.path.join(tiny_run, 'history.jsonl'))
    assert entries and all(e['seconds'] >= e['val_seconds'] > 0 for e in entries)


def test_reproduce_a_finished_run(tiny_run, tmp_path, monkeypatch, capsys):
    """A finished run of the recipe is not trained again: its kept model is evaluated (plain and --flip, then
    reused) and recorded; a run of other settings in the recipe's folder is refused, by name."""
    import shutil
    flags = '--data-dir {} --epochs 1 --batch-size 3 --image-shape 64 192'.format(SAMPLE)
    monkeypatch.setitem(reproduce.RECIPES, 'tiny', reproduce.Recipe(flags, True, SAMPLE))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_run, os.path.join('runs', 'reproduce', 'tiny', os.path.basename(tiny_run)),
                    ignore=shutil.ignore_patterns('evaluation*'))  # evaluated here, not by the fixture
    assert reproduce.reproduce('tiny', docs=False) == 0
    out = capsys.readouterr().out
    assert 'tiny: finished run runs/reproduce/tiny/{}; training skipped'.format(os.path.basename(tiny_run)) in out
    with open(os.path.join('docs', 'results', 'tiny.json')) as f:
        record = json.load(f)
    assert record['command'] == 'python main.py {} --runs-dir runs/reproduce/tiny'.format(flags)
    assert set(record['evaluation']) == {'plain', 'flip'} and record['evaluation']['flip']['flip_tta']
    assert record['images_trained'] == 6 and record['kept_epoch'] == 1
    assert 'Evaluating' in open(os.path.join('runs', 'reproduce', 'tiny', 'train.log')).read()
    assert reproduce.reproduce('tiny', docs=False) == 0
    assert capsys.readouterr().out.count('is newer than the kept model; reused') == 2
    monkeypatch.setitem(reproduce.RECIPES, 'tiny', reproduce.Recipe(flags.replace('--epochs 1', '--epochs 2'),
                                                                    True, SAMPLE))
    with pytest.raises(InputError, match='was trained with --epochs 1, not the tiny recipe\'s 2; move it out'):
        reproduce.reproduce('tiny', docs=False)

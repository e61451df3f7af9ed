"""The results pipeline: a run folder's record (roadseg/evaluation/results.py), the recipes of
scripts/reproduce.py, and docs/results.md, docs/decoders.md's tables and README's headline being what
docs/results/*.json generate."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SAMPLE
from roadseg import cli
from roadseg.evaluation import results
from roadseg.system.commit import git_commit
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


def _git(repo, *args):
    return subprocess.run(['git', '-C', str(repo), '-c', 'user.name=t', '-c', 'user.email=t@example.com'] + list(args),
                          stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout.strip()


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
    from roadseg.runs import read_config
    from roadseg.system.commit import code_commit
    assert read_config(tiny_run)['commit'] == code_commit()


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
    assert reproduce.evaluate_commands('kitti', 'RUN') == {'': ['--evaluate', 'RUN'],
                                                           'flip': ['--evaluate', 'RUN', '--flip']}
    assert reproduce.evaluate_commands('camvid', 'RUN') == {'': ['--evaluate', 'RUN', '--which', 'last']}


@pytest.mark.parametrize('dataset,epochs', [('camvid', 5), ('kitti', 12)])
def test_decoder_recipes(dataset, epochs):
    """A recipe per decoder: its data set's recipe with --epochs (5 x 367 CamVid images, 12 x 208 KITTI ones) and
    --decoder changed, and nothing else; CamVid's score the last model, KITTI's the kept one, plain."""
    base = dataset
    from roadseg.model.names import DECODER_NAMES
    parser = cli.build_parser()
    settings = vars(parser.parse_args(reproduce.RECIPES[base].flags.split()))
    for decoder in DECODER_NAMES:
        name = '{}-{}'.format(dataset, decoder)
        recipe = reproduce.RECIPES[name]
        assert vars(parser.parse_args(recipe.flags.split())) == dict(settings, epochs=epochs, decoder=decoder)
        assert (recipe.which, recipe.flip, recipe.data_dir) == (reproduce.RECIPES[base].which, False,
                                                                 reproduce.RECIPES[base].data_dir)
        assert reproduce.command(name).endswith('--decoder {} --runs-dir runs/reproduce/{}'.format(decoder, name))
    assert reproduce.RECIPES[base].which == {'camvid': 'last', 'kitti': 'best'}[dataset]
    assert len([n for n in reproduce.RECIPES if n.startswith(dataset + '-')]) == len(DECODER_NAMES)


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
    record.update(trained_commit='a' * 40, commit='c' * 40 + '-dirty')
    text = results_doc.results_text({'kitti': record})
    assert 'pixels excluded. Trained at commit `aaaaaaaaaaaa`, recorded at `cccccccccccc-dirty`.\n' in text
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


def test_the_commits_a_record_names():
    """The commit that trained the run and the one that wrote the record, shortened, '-dirty' kept; records from
    before trained_commit (their writer's commit named git_commit) say the training's is not recorded."""
    from record_text import commits_phrase
    assert commits_phrase({'git_commit': '0123456789abcdef'}) == \
        'Recorded at commit `0123456789ab` (the training\'s commit not recorded)'
    assert commits_phrase({'trained_commit': 'a' * 40, 'resumed_commits': [], 'commit': 'a' * 40}) == \
        'Trained and recorded at commit `aaaaaaaaaaaa`'
    assert commits_phrase({'trained_commit': 'a' * 40 + '-dirty', 'resumed_commits': ['b' * 40, None],
                           'commit': None}) == \
        'Trained at commit `aaaaaaaaaaaa-dirty` (resumed at `bbbbbbbbbbbb`, unknown), recorded at unknown'


def test_the_curve_legend_covers_no_curve():
    """One legend naming every curve of both axes, inside the figure and outside both axes."""
    record = {'name': 'kitti', 'epochs': 3, 'kept_epoch': 2, 'evaluation': {'plain': {'overall': ROAD}},
              'curve': [{'epoch': e, 'images': 208 * e, 'loss': 0.3 / e, 'selection': {'max_f1': 0.9 + e / 100},
                         'report': {'max_f1': 0.91 + e / 100}} for e in (1, 2, 3)]}
    fig = results_doc.curve_figure(record)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1
    assert [t.get_text() for t in legends[0].get_texts()] == ['training loss', 'report MaxF1', 'selection MaxF1']
    box = legends[0].get_window_extent(renderer)
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1
    for ax in fig.axes:
        assert not box.overlaps(ax.get_tightbbox(renderer))  # the plot, its ticks and labels


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
    reused) and recorded, with the parameters its frozen graph has; a recipe scoring the last model evaluates
    last/ (--which last) and says so; a run of other settings in the recipe's folder is refused, by name."""
    import shutil
    from roadseg.system.tfcompat import tf
    sys.path.insert(0, os.path.join(ROOT, 'bench'))
    import graph_cost
    flags = '--data-dir {} --epochs 1 --batch-size 3 --image-shape 64 192'.format(SAMPLE)
    monkeypatch.setitem(reproduce.RECIPES, 'tiny', reproduce.Recipe(flags, True, SAMPLE, 'best'))
    monkeypatch.setitem(reproduce.RECIPES, 'tiny-last', reproduce.Recipe(flags, False, SAMPLE, 'last'))
    monkeypatch.chdir(tmp_path)
    for name in ('tiny', 'tiny-last'):
        shutil.copytree(tiny_run, os.path.join('runs', 'reproduce', name, os.path.basename(tiny_run)),
                        ignore=shutil.ignore_patterns('evaluation*'))  # evaluated here, not by the fixture
    assert reproduce.reproduce('tiny', docs=False) == 0
    out = capsys.readouterr().out
    assert 'tiny: finished run runs/reproduce/tiny/{}; training skipped'.format(os.path.basename(tiny_run)) in out
    with open(os.path.join('docs', 'results', 'tiny.json')) as f:
        record = json.load(f)
    assert record['command'] == 'python main.py {} --runs-dir runs/reproduce/tiny'.format(flags)
    assert set(record['evaluation']) == {'plain', 'flip'} and record['evaluation']['flip']['flip_tta']
    assert record['images_trained'] == 6 and record['kept_epoch'] == 1
    assert (record['scored'], record['scored_epoch'], record['decoder']) == ('kept', 1, 'fcn8')
    frozen = tf.GraphDef()
    with open(os.path.join(tiny_run, 'best', 'frozen_inference.pb'), 'rb') as f:
        frozen.ParseFromString(f.read())
    assert record['parameters'] == graph_cost.parameters(frozen) > 0
    assert record['seconds_per_image']['training'] > 0 and record['seconds_per_image']['validation'] > 0
    assert 'Evaluating' in open(os.path.join('runs', 'reproduce', 'tiny', 'train.log')).read()
    assert reproduce.reproduce('tiny', docs=False) == 0
    assert capsys.readouterr().out.count('is newer than the best model; reused') == 2
    assert reproduce.reproduce('tiny-last', docs=False) == 0
    with open(os.path.join('docs', 'results', 'tiny-last.json')) as f:
        last = json.load(f)
    assert (last['scored'], last['scored_epoch'], set(last['evaluation'])) == ('last', 1, {'plain'})
    assert last['parameters'] == record['parameters']
    assert os.path.exists(os.path.join('runs', 'reproduce', 'tiny-last', os.path.basename(tiny_run),
                                       'evaluation_last', 'metrics.json'))
    assert '--which last' in open(os.path.join('runs', 'reproduce', 'tiny-last', 'train.log')).read()
    monkeypatch.setitem(reproduce.RECIPES, 'tiny', reproduce.Recipe(flags.replace('--epochs 1', '--epochs 2'),
                                                                    True, SAMPLE, 'best'))
    with pytest.raises(InputError, match='was trained with --epochs 1, not the tiny recipe\'s 2; move it out'):
        reproduce.reproduce('tiny', docs=False)


def test_several_recipes_run_in_turn(tmp_path, monkeypatch, capsys):
    """reproduce.py NAME NAME ...: each in turn, the docs regenerated once; at the first failure the rest wait,
    one line saying what failed and the command that continues; the docs still get the records written."""
    calls, docs = [], []

    def fake_reproduce(name, force=False, docs=True):
        calls.append((name, force, docs))
        if name == 'camvid-unet':
            raise InputError('data/CamVid not found')

    monkeypatch.setattr(reproduce, 'reproduce', fake_reproduce)
    monkeypatch.setattr(reproduce, 'regenerate_docs', lambda: docs.append(1) or 0)
    monkeypatch.chdir(tmp_path)  # main() moves to the repository's root; this puts the test's directory back
    assert reproduce.main(['kitti-fcn8', 'camvid-fcn8', '--force']) == 0
    assert calls == [('kitti-fcn8', True, False), ('camvid-fcn8', True, False)] and docs == [1]
    del calls[:], docs[:]
    assert reproduce.main(['camvid-fcn8', 'camvid-unet', 'camvid-psp']) == 1
    assert [c[0] for c in calls] == ['camvid-fcn8', 'camvid-unet'] and docs == [1]
    assert capsys.readouterr().err == ('error: camvid-unet: data/CamVid not found; `python scripts/reproduce.py '
                                       'camvid-unet camvid-psp` continues\n')
    del calls[:], docs[:]
    assert reproduce.main(['camvid-unet']) == 1 and docs == []
    with pytest.raises(SystemExit):
        reproduce.main(['camvid-unet', 'camvid-nonet'])
    assert 'invalid choice' in capsys.readouterr().err and calls == [('camvid-unet', False, False)]


CAMVID_CLASSES = ['Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol', 'Fence', 'Car', 'Pedestrian',
                  'Bicyclist']


def _comparison(name, train_seconds, parameters, tensorflow='2.21.0', **scores):
    """A fabricated record of a decoder recipe (camvid-DECODER: the last model of 5 epochs of 367 images scored on
    101; kitti-DECODER: the kept epoch of 12 epochs of 208 on the report split); scores: the evaluation's."""
    dataset, decoder = name.split('-')
    camvid = dataset == 'camvid'
    epochs, per_epoch = (5, 367) if camvid else (12, 208)
    if camvid:
        iou = [0.9, 0.8, scores['pole'], 0.95, 0.7, 0.75, scores['sign'], 0.3, 0.8, scores['pedestrian'], None]
        evaluation = {'classes': CAMVID_CLASSES, 'class_iou': iou, 'class_accuracy': [0.9] * 10 + [None],
                      'class_pixels': [100] * 10 + [0], 'pixels': 1000, 'mean_iou': scores['miou'],
                      'pixel_accuracy': 0.88, 'mean_class_accuracy': 0.6}
    else:
        evaluation = {'overall': dict(ROAD, max_f1=scores['max_f1'], iou=scores['iou'])}
    return {
        'name': name, 'command': 'python main.py --epochs {} --decoder {} --runs-dir runs/reproduce/{}'.format(
            epochs, decoder, name),
        'git_commit': '0123456789abcdef', 'cpu': {'cores': 2, 'model': 'Test CPU', 'class': 'AVX-512 without BF16'},
        'tensorflow': tensorflow, 'precision': 'fp32', 'epochs': epochs, 'images_per_epoch': per_epoch,
        'images_trained': epochs * per_epoch, 'kept_epoch': 3 if camvid else 9, 'scored': 'last' if camvid else 'kept',
        'scored_epoch': epochs if camvid else 9, 'date': '2026-12-02', 'decoder': decoder, 'parameters': parameters,
        'seconds_per_image': {'training': train_seconds, 'validation': 0.25 if camvid else None},
        'wall_time_seconds': 3660.0, 'image_shape': [352, 480] if camvid else [160, 576],
        'splits': {'chooses': 'validation', 'choose_images': 101, 'report_images': 101} if camvid else
        {'chooses': 'selection', 'choose_images': 24, 'report_images': 57},
        'evaluation': {'plain': evaluation}}


def _docs_tree(root):
    """README.md, docs/results.md and docs/decoders.md holding their markers, and docs/results/."""
    os.makedirs(os.path.join(root, 'docs', 'results'))
    for path in results_doc.MARKERS:
        with open(os.path.join(root, path), 'w') as f:
            f.write('# {}\n\nBefore.\n\n{}\nstale\n{}\n\nAfter.\n'.format(path, *results_doc.MARKERS[path]))


def _write(root, record):
    results.write_record(os.path.join(root, 'docs', 'results', record['name'] + '.json'), record)


def test_decoder_tables_from_records(tmp_path, monkeypatch, capsys):
    """docs/decoders.md's tables are what the decoder recipes' records generate: a row per record in --decoder's
    order, training cost as a multiple of fcn8's (marked where fcn8 ran on another machine), the runs' commands,
    machines and dates; --check fails on a record changed since, and passes once regenerated."""
    root = str(tmp_path)
    _docs_tree(root)
    monkeypatch.setattr(results_doc, 'ROOT', root)
    monkeypatch.chdir(tmp_path)
    camvid = dict(pole=0.01, sign=0.2, pedestrian=0.3)
    for record in (_comparison('camvid-psp', 2.5, 20.1e6, tensorflow='1.15.5', miou=0.58, **camvid),
                   _comparison('camvid-unet', 3.0, 18.5e6, miou=0.61, **dict(camvid, pole=0.3)),
                   _comparison('camvid-fcn8', 2.0, 134.27e6, miou=0.55, **camvid),
                   _comparison('kitti-unet', 1.2, 18.5e6, max_f1=0.95, iou=0.91)):
        _write(root, record)
    assert results_doc.main([]) == 0
    text = open(os.path.join('docs', 'decoders.md')).read()
    assert text.startswith('# docs/decoders.md\n\nBefore.\n\n<!-- decoders:begin -->\n') and 'stale' not in text
    assert text.endswith('<!-- decoders:end -->\n\nAfter.\n')
    rows = [line for line in text.splitlines() if line.startswith('| `')]
    assert rows[:3] == [
        '| `fcn8` | 1,835 | 55.0 | 1.0 | 20.0 | 30.0 | - | 88.0 | 60.0 | 2.000 | 1.00x | 0.250 | 134.27 |',
        '| `unet` | 1,835 | 61.0 | 30.0 | 20.0 | 30.0 | - | 88.0 | 60.0 | 3.000 | 1.50x | 0.250 | 18.50 |',
        '| `psp` | 1,835 | 58.0 | 1.0 | 20.0 | 30.0 | - | 88.0 | 60.0 | 2.500 | 1.25x * | 0.250 | 20.10 |']
    assert '| `unet` | 90.0 | 80.0 | 30.0 | 95.0 | 70.0 | 75.0 | 20.0 | 30.0 | 80.0 | 30.0 | - | 61.0 |' in rows
    assert '| decoder | Sky | Building | Pole | Road | Pavement | Tree | SignSymbol | Fence | Car | Pedestrian | ' \
        'Bicyclist | mean |' in text
    assert ('| `psp` | `python main.py --epochs 5 --decoder psp --runs-dir runs/reproduce/camvid-psp` | last epoch 5 '
            'of 5 | 1 h 01 min | 2-core Test CPU (AVX-512 without BF16), TensorFlow 1.15.5, fp32 | 2026-12-02 | '
            'Recorded at commit `0123456789ab` (the training\'s commit not recorded) |') in rows
    assert 'last model, the end of the fixed budget, scored on the 101 validation images' in text
    assert 'Not yet run: `python scripts/reproduce.py camvid-fcn16 camvid-fcn32 camvid-segnet camvid-linknet`.' in text
    assert '| `unet` | 2,496 | 95.00 | 88.00 | 0.910 | 9 of 12 | 1.200 | - | - | 18.50 |' in rows  # no fcn8 row
    assert 'chosen on the 24 selection images (`splits/select.txt`), scored on the 57 report-split images' in text
    assert 'Not yet run: `python scripts/reproduce.py kitti-fcn8 kitti-fcn16 kitti-fcn32 kitti-segnet ' \
        'kitti-linknet kitti-psp`.' in text
    capsys.readouterr()
    assert results_doc.main(['--check']) == 0 and capsys.readouterr().out == ''
    _write(root, _comparison('kitti-fcn8', 1.0, 134.27e6, max_f1=0.94, iou=0.9))
    assert results_doc.main(['--check']) == 1
    assert capsys.readouterr().out == ('docs/decoders.md is not what docs/results/*.json generate; run python '
                                       'scripts/results_doc.py\n')
    assert results_doc.main([]) == 0 and results_doc.main(['--check']) == 0
    assert '| `unet` | 2,496 | 95.00 | 88.00 | 0.910 | 9 of 12 | 1.200 | 1.20x | - | 18.50 |' in \
        open(os.path.join('docs', 'decoders.md')).read()
    for name in os.listdir(os.path.join('docs', 'results')):
        os.remove(os.path.join('docs', 'results', name))
    assert results_doc.main([]) == 0
    text = open(os.path.join('docs', 'decoders.md')).read()
    assert '| `' not in text and 'Not yet run: `python scripts/reproduce.py camvid-fcn8 camvid-fcn16' in text


def test_a_published_record_of_the_last_model(tmp_path):
    """The CamVid recipe scores its last model: its section and headline say so, and mark that epoch."""
    record = _comparison('camvid-fcn8', 2.0, 134.27e6, miou=0.55, pole=0.01, sign=0.2, pedestrian=0.3)
    record.update(name='camvid', curve=[
        {'epoch': e, 'images': 367 * e, 'loss': 1.0 / e, 'seconds': 700.0,
         'validation': {'iou': 0.5 + e / 100, 'pixel_accuracy': 0.8, 'mean_class_accuracy': 0.5}}
        for e in range(1, 6)], segments=1, wall_time_source='history.jsonl',
        evaluated_with=['python main.py --evaluate RUN --which last'])
    text = results_doc.results_text({'camvid': record})
    assert 'mIoU **55.0**, pixel accuracy 88.0, mean class accuracy 60.0; the last epoch 5 of 5 (1,835 images, the ' \
        'end of the budget) scored on the 101 validation images, which chose nothing.' in text
    assert '| **5** (last) | 1,835 |' in text and '| 3 | 1,101 |' in text
    assert 'Evaluated with `python main.py --evaluate RUN --which last` at the images\' original size' in text
    assert '| Pole | 1.0 | 90.0 | 100 |' in text
    assert '| CamVid | mIoU **55.0**, pixel accuracy 88.0, mean class accuracy 60.0; last epoch 5 of 5 |' in \
        results_doc.headline_text({'camvid': record})

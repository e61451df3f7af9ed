"""scripts/reproduce.py: the recipes (scripts/recipes.py), training or resuming the recipe's run, evaluating its
scored model and writing its record; several recipes in turn."""
import json
import os
import sys

import pytest

from conftest import ROOT, SAMPLE
from roadseg import cli
from roadseg.system.files import InputError

sys.path.insert(0, os.path.join(ROOT, 'scripts'))
import reproduce  # noqa: E402
import recipes  # noqa: E402


def test_recipes():
    """The KITTI recipe is the default of main.py on the full data; each recipe's flags parse; a run trained
    otherwise is refused by name."""
    assert reproduce.command('kitti') == ('python main.py --epochs 40 --batch-size 4 --learning-rate 3e-4 '
                                          '--lr-schedule poly --warmup 0.05 --runs-dir runs/reproduce/kitti')
    kitti = vars(cli.build_parser().parse_args(reproduce.RECIPES['kitti'].flags.split()))
    assert all(cli.RECORDED[k] == v for k, v in kitti.items() if v is not None)
    sample = vars(cli.build_parser().parse_args(reproduce.RECIPES['sample'].flags.split()))
    assert all(cli.SAMPLE_RECIPE[k] == sample[k] for k in cli.SAMPLE_RECIPE)
    assert '--class-weights' not in reproduce.RECIPES['camvid'].flags
    assert reproduce.evaluate_commands('kitti', 'RUN') == {'': ['--evaluate', 'RUN'],
                                                           'flip': ['--evaluate', 'RUN', '--flip']}
    assert reproduce.evaluate_commands('camvid', 'RUN') == {'': ['--evaluate', 'RUN', '--which', 'last'],
                                                            'flip': ['--evaluate', 'RUN', '--which', 'last', '--flip']}
    assert reproduce.evaluate_commands('sample', 'RUN') == {'': ['--evaluate', 'RUN', '--which', 'last']}


@pytest.mark.parametrize('dataset,epochs', [('camvid', 5), ('kitti', 12)])
def test_decoder_recipes(dataset, epochs):
    """A recipe per decoder: its data set's compared recipe (recipes.COMPARISONS: KITTI's published one, CamVid's at
    Adam 1e-4 constant) with --epochs (5 x 367 CamVid images, 12 x 208 KITTI ones) and --decoder changed, and
    nothing else; CamVid's score the last model, KITTI's the kept one, plain. Each variant (recipes.VARIANTS) is
    that with its flags set, none given twice."""
    base = dataset
    from roadseg.model.names import DECODER_NAMES
    parser = cli.build_parser()
    settings = vars(parser.parse_args(recipes.COMPARISONS[dataset].recipe.flags.split()))
    assert {k: settings[k] for k in ('epochs', 'batch_size', 'learning_rate', 'lr_schedule', 'warmup')} == {
        'camvid': dict(epochs=33, batch_size=4, learning_rate=1e-4, lr_schedule='constant', warmup=0.0),
        'kitti': dict(epochs=40, batch_size=4, learning_rate=3e-4, lr_schedule='poly', warmup=0.05)}[dataset]
    published = vars(parser.parse_args(reproduce.RECIPES[base].flags.split()))
    assert published == dict(settings, **({'learning_rate': 3e-4, 'lr_schedule': 'poly', 'warmup': 0.05}
                                          if dataset == 'camvid' else {}))
    for decoder in DECODER_NAMES:
        name = '{}-{}'.format(dataset, decoder)
        recipe = reproduce.RECIPES[name]
        assert vars(parser.parse_args(recipe.flags.split())) == dict(settings, epochs=epochs, decoder=decoder)
        assert (recipe.which, recipe.flip, recipe.data_dir) == (reproduce.RECIPES[base].which, False,
                                                                 reproduce.RECIPES[base].data_dir)
        assert reproduce.command(name).endswith('--decoder {} --runs-dir runs/reproduce/{}'.format(decoder, name))
    assert reproduce.RECIPES[base].which == {'camvid': 'last', 'kitti': 'best'}[dataset]
    variants = recipes.VARIANTS[dataset]
    for _, name, decoder, flags in variants:  # the same with the variant's flags set, each once
        recipe = reproduce.RECIPES[name]
        changed = vars(parser.parse_args(list(flags)))
        changed = {k: v for k, v in changed.items() if v is not None}
        assert vars(parser.parse_args(recipe.flags.split())) == dict(settings, epochs=epochs, decoder=decoder,
                                                                     **changed)
        assert all(recipe.flags.split().count(flag) == 1 for flag in flags[::2])
    assert len([n for n in reproduce.RECIPES if n.startswith(dataset + '-')]) == len(DECODER_NAMES) + len(variants)


def test_a_run_of_other_settings_is_refused(tmp_path):
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'config.json').write_text(json.dumps(dict(cli.RECORDED, learning_rate=1e-4)))
    with pytest.raises(InputError, match='trained with --learning-rate 0.0001, not the kitti recipe\'s 0.0003'):
        reproduce.check_settings('kitti', str(run))
    (run / 'config.json').write_text(json.dumps(dict(cli.RECORDED)))
    reproduce.check_settings('kitti', str(run))


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
    assert reproduce.reproduce('tiny') == os.path.join('docs', 'results', 'tiny.json')
    out = capsys.readouterr().out
    assert 'tiny: finished run runs/reproduce/tiny/{}; training skipped'.format(os.path.basename(tiny_run)) in out
    with open(os.path.join('docs', 'results', 'tiny.json')) as f:
        record = json.load(f)
    assert record['command'] == 'python main.py {} --runs-dir runs/reproduce/tiny'.format(flags)
    assert set(record['evaluation']) == {'plain', 'flip'} and record['evaluation']['flip']['flip_tta']
    run_dir = os.path.join('runs', 'reproduce', 'tiny', os.path.basename(tiny_run))
    for kind, folder in (('plain', 'evaluation_best'), ('flip', 'evaluation_best_flip')):
        with open(os.path.join(run_dir, folder, 'metrics.json')) as f:  # the numbers recorded are --evaluate's
            assert record['evaluation'][kind]['overall'] == json.load(f)['overall']
    assert record['images_trained'] == 6 and record['kept_epoch'] == 1
    assert (record['scored'], record['scored_epoch'], record['decoder']) == ('kept', 1, 'fcn8')
    frozen = tf.GraphDef()
    with open(os.path.join(tiny_run, 'best', 'frozen_inference.pb'), 'rb') as f:
        frozen.ParseFromString(f.read())
    assert record['parameters'] == graph_cost.parameters(frozen) > 0
    assert record['seconds_per_image']['training'] > 0 and record['seconds_per_image']['validation'] > 0
    assert 'Evaluating' in open(os.path.join('runs', 'reproduce', 'tiny', 'train.log')).read()
    assert reproduce.reproduce('tiny') == os.path.join('docs', 'results', 'tiny.json')
    assert capsys.readouterr().out.count('is newer than the best model; reused') == 2
    metrics = os.path.join('runs', 'reproduce', 'tiny', os.path.basename(tiny_run), 'evaluation_best',
                           'metrics.json')
    kept = open(metrics).read()
    with open(metrics, 'w') as f:
        f.write(kept[:len(kept) // 2])  # cut short
    with pytest.raises(InputError, match=r'evaluation_best/metrics.json is damaged \(.*\); delete it'):
        reproduce.reproduce('tiny')
    with open(metrics, 'w') as f:
        f.write(kept)
    assert reproduce.reproduce('tiny-last') == os.path.join('docs', 'results', 'tiny-last.json')
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
        reproduce.reproduce('tiny')


def test_several_recipes_run_in_turn(tmp_path, monkeypatch, capsys):
    """reproduce.py NAME NAME ...: each in turn, the docs regenerated once; at the first failure the rest wait,
    one line saying what failed and the command that continues; the docs still get the records written."""
    calls, docs = [], []

    def fake_reproduce(name, force=False):
        calls.append((name, force))
        if name == 'camvid-unet':
            raise InputError('data/CamVid not found')
        if name == 'kitti-psp':
            raise FileNotFoundError(2, 'No such file or directory', 'runs/reproduce/kitti-psp/RUN/best/checkpoint')

    monkeypatch.setattr(reproduce, 'reproduce', fake_reproduce)
    monkeypatch.setattr(reproduce, 'regenerate_docs', lambda: docs.append(1) or 0)
    monkeypatch.chdir(tmp_path)  # main() moves to the repository's root; this puts the test's directory back
    assert reproduce.main(['kitti-fcn8', 'camvid-fcn8', '--force']) == 0
    assert calls == [('kitti-fcn8', True), ('camvid-fcn8', True)] and docs == [1]
    del calls[:], docs[:]
    assert reproduce.main(['camvid-fcn8', 'camvid-unet', 'camvid-psp']) == 1
    assert [c[0] for c in calls] == ['camvid-fcn8', 'camvid-unet'] and docs == [1]
    assert capsys.readouterr().err == ('error: camvid-unet: data/CamVid not found; `python scripts/reproduce.py '
                                       'camvid-unet camvid-psp` continues\n')
    del calls[:], docs[:]
    assert reproduce.main(['camvid-unet']) == 1 and docs == []
    capsys.readouterr()
    assert reproduce.main(['kitti-psp']) == 1 and capsys.readouterr().err == (
        'error: kitti-psp: runs/reproduce/kitti-psp/RUN/best/checkpoint: No such file or directory; '
        '`python scripts/reproduce.py kitti-psp` continues\n')
    del calls[:]
    with pytest.raises(SystemExit):
        reproduce.main(['camvid-unet', 'camvid-nonet'])
    assert 'invalid choice' in capsys.readouterr().err and calls == []

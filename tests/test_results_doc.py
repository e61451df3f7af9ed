"""docs/results.md, docs/decoders.md's tables and README's headline being what docs/results/*.json generate
(scripts/results_doc.py, scripts/decoder_tables.py, scripts/record_text.py), and the curves they draw."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from roadseg.evaluation import results
from test_result_record import ROAD, _entry, _metrics, _run

sys.path.insert(0, os.path.join(ROOT, 'scripts'))
import results_doc  # noqa: E402


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


CAMVID_CLASSES = ['Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol', 'Fence', 'Car', 'Pedestrian',
                  'Bicyclist']


def _comparison(name, train_seconds, parameters, tensorflow='2.21.0', **scores):
    """A fabricated record of a decoder recipe (camvid-DECODER: the last model of 5 epochs of 367 images scored on
    101; kitti-DECODER: the kept epoch of 12 epochs of 208 on the report split); scores: the evaluation's."""
    dataset, decoder = name.split('-')[:2]
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
    order, then the variants' (recipes.VARIANTS), training cost as a multiple of fcn8's (marked where fcn8 ran on
    another machine), the runs' commands, machines and dates; --check fails on a record changed since, and passes once regenerated."""
    root = str(tmp_path)
    _docs_tree(root)
    monkeypatch.setattr(results_doc, 'ROOT', root)
    monkeypatch.chdir(tmp_path)
    camvid = dict(pole=0.01, sign=0.2, pedestrian=0.3)
    for record in (_comparison('camvid-psp', 2.5, 20.1e6, tensorflow='1.15.5', miou=0.58, **camvid),
                   _comparison('camvid-unet', 3.0, 18.5e6, miou=0.61, **dict(camvid, pole=0.3)),
                   _comparison('camvid-fcn8', 2.0, 134.27e6, miou=0.55, **camvid),
                   _comparison('camvid-fcn8-median', 2.2, 134.27e6, miou=0.57, **dict(camvid, pole=0.26)),
                   _comparison('kitti-unet', 1.2, 18.5e6, max_f1=0.95, iou=0.91)):
        _write(root, record)
    assert results_doc.main([]) == 0
    text = open(os.path.join('docs', 'decoders.md')).read()
    assert text.startswith('# docs/decoders.md\n\nBefore.\n\n<!-- decoders:begin -->\n') and 'stale' not in text
    assert text.endswith('<!-- decoders:end -->\n\nAfter.\n')
    rows = [line for line in text.splitlines() if line.startswith('| `')]
    assert rows[:4] == [
        '| `fcn8` | 1,835 | 55.0 | 1.0 | 20.0 | 30.0 | - | 88.0 | 60.0 | 2.000 | 1.00x | 0.250 | 134.27 |',
        '| `unet` | 1,835 | 61.0 | 30.0 | 20.0 | 30.0 | - | 88.0 | 60.0 | 3.000 | 1.50x | 0.250 | 18.50 |',
        '| `psp` | 1,835 | 58.0 | 1.0 | 20.0 | 30.0 | - | 88.0 | 60.0 | 2.500 | 1.25x * | 0.250 | 20.10 |',
        '| `fcn8 --class-weights median` | 1,835 | 57.0 | 26.0 | 20.0 | 30.0 | - | 88.0 | 60.0 | 2.200 | 1.10x | '
        '0.250 | 134.27 |']
    assert '| `unet` | 90.0 | 80.0 | 30.0 | 95.0 | 70.0 | 75.0 | 20.0 | 30.0 | 80.0 | 30.0 | - | 61.0 |' in rows
    assert '| decoder | Sky | Building | Pole | Road | Pavement | Tree | SignSymbol | Fence | Car | Pedestrian | ' \
        'Bicyclist | mean |' in text
    assert ('| `psp` | `python main.py --epochs 5 --decoder psp --runs-dir runs/reproduce/camvid-psp` | last epoch 5 '
            'of 5 | 1 h 01 min | 2-core Test CPU (AVX-512 without BF16), TensorFlow 1.15.5, fp32 | 2026-12-02 | '
            'Recorded at commit `0123456789ab` (the training\'s commit not recorded) |') in rows
    assert 'last model, the end of the fixed budget, scored on the 101 validation images' in text
    assert ('Not yet run: `python scripts/reproduce.py camvid-fcn16 camvid-fcn32 camvid-segnet camvid-linknet '
            'camvid-fcn8-median-poly camvid-unet-median-poly`.') in text
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


def _camvid_record():
    """A fabricated record of the published CamVid recipe: the last model of 5 epochs."""
    record = _comparison('camvid-fcn8', 2.0, 134.27e6, miou=0.55, pole=0.01, sign=0.2, pedestrian=0.3)
    record.update(name='camvid', curve=[
        {'epoch': e, 'images': 367 * e, 'loss': 1.0 / e, 'seconds': 700.0,
         'validation': {'iou': 0.5 + e / 100, 'pixel_accuracy': 0.8, 'mean_class_accuracy': 0.5}}
        for e in range(1, 6)], segments=1, wall_time_source='history.jsonl',
        evaluated_with=['python main.py --evaluate RUN --which last'])
    return record


def test_a_published_record_of_the_last_model(tmp_path):
    """The CamVid recipe scores its last model: its section and headline say so, and mark that epoch."""
    record = _camvid_record()
    text = results_doc.results_text({'camvid': record})
    assert 'mIoU **55.0**, pixel accuracy 88.0, mean class accuracy 60.0; the last epoch 5 of 5 (1,835 images, the ' \
        'end of the budget) scored on the 101 validation images, which chose nothing.' in text
    assert '| **5** (last) | 1,835 |' in text and '| 3 | 1,101 |' in text
    assert 'Evaluated with `python main.py --evaluate RUN --which last` at the images\' original size' in text
    assert '| Pole | 1.0 | 90.0 | 100 |' in text
    assert '| CamVid | mIoU **55.0**, pixel accuracy 88.0, mean class accuracy 60.0; last epoch 5 of 5 |' in \
        results_doc.headline_text({'camvid': record})
    flipped = dict(record['evaluation']['plain'], mean_iou=0.56, pixel_accuracy=0.885, mean_class_accuracy=0.61,
                   class_iou=[0.91] + record['evaluation']['plain']['class_iou'][1:])
    record['evaluation']['flip'] = flipped  # scored again with --flip: a column of its own, and in the headline
    text = results_doc.results_text({'camvid': record})
    assert '| class | IoU | accuracy | labelled pixels | IoU, `--flip` |' in text
    assert '| Sky | 90.0 | 90.0 | 100 | 91.0 |' in text and '| **mean** | **55.0** | 60.0 | 1,000 | **56.0** |' in text
    assert ('| CamVid | mIoU **55.0**, pixel accuracy 88.0, mean class accuracy 60.0 (`--flip`: 56.0 / 88.5 / 61.0); '
            'last epoch 5 of 5 |') in results_doc.headline_text({'camvid': record})


def test_a_damaged_record_is_one_error_line(tmp_path, monkeypatch, capsys):
    """A record cut short or not a JSON object: one `error:` line naming it, exit 2 (bad input), and no file
    rewritten."""
    root = str(tmp_path)
    _docs_tree(root)
    monkeypatch.setattr(results_doc, 'ROOT', root)
    monkeypatch.chdir(tmp_path)
    before = {path: open(path).read() for path in results_doc.MARKERS}
    path = os.path.join('docs', 'results', 'kitti-unet.json')
    for text, why in (('{"name": "kitti-unet", "comm', 'Unterminated string'), ('[1, 2]', 'not a JSON object')):
        with open(path, 'w') as f:
            f.write(text)
        assert results_doc.main([]) == 2
        err = capsys.readouterr().err
        assert err.startswith('error: {} is not a result record: {}'.format(path, why)) and err.count('\n') == 1
        assert {p: open(p).read() for p in results_doc.MARKERS} == before


@pytest.mark.parametrize('name,field', [('kitti-unet', ('seconds_per_image',)), ('kitti-unet', ('cpu', 'cores')),
                                        ('kitti-unet', ('splits', 'report_images')),
                                        ('camvid', ('curve', 2, 'validation', 'iou'))])  # read by the curve only
def test_a_record_missing_a_field_is_one_error_line(tmp_path, monkeypatch, capsys, name, field):
    """A record edited by hand that lost a field (at any depth): one `error:` line naming the file and the field,
    exit 2 (bad input), and no file written."""
    root = str(tmp_path)
    _docs_tree(root)
    monkeypatch.setattr(results_doc, 'ROOT', root)
    monkeypatch.chdir(tmp_path)
    before = {path: open(path).read() for path in results_doc.MARKERS}
    record = _camvid_record() if name == 'camvid' else _comparison(name, 1.2, 18.5e6, max_f1=0.95, iou=0.91)
    owner = record
    for key in field[:-1]:
        owner = owner[key]
    del owner[field[-1]]
    _write(root, record)
    assert results_doc.main([]) == 2
    path = os.path.join('docs', 'results', name + '.json')
    dotted = '.'.join(str(k) for k in field).replace('.2.', '[2].')
    assert capsys.readouterr().err == 'error: {}: the field {} is missing\n'.format(path, dotted)
    assert {p: open(p).read() for p in results_doc.MARKERS} == before
    assert sorted(os.listdir(os.path.join('docs', 'results'))) == [name + '.json']

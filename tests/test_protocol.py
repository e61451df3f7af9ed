"""The unbiased protocol in a training run: the selection split chooses the kept epoch, the report split is only
measured, config.json records the split files' checksums, and --resume / --init-from refuse a changed split."""
import json
import os
import shutil

import pytest

from conftest import TINY_SHAPE, error_line, kitti_tree, run_cli
from roadseg.data.datasets.kitti_road import KittiRoad


@pytest.fixture
def split_files(tmp_path, monkeypatch):
    """A 6-image KITTI tree whose val.txt holds um_000001-2 and select.txt um_000003 (files in tmp_path)."""
    val, select = tmp_path / 'val.txt', tmp_path / 'select.txt'
    val.write_text('# report split\num_000001.png\num_000002.png\n')
    select.write_text('# selection split\num_000003.png\n')
    monkeypatch.setattr(KittiRoad.__init__, '__defaults__', (str(val), str(select)))
    return kitti_tree(str(tmp_path / 'data'), n=6), val, select


def train(data, vgg_dir, runs, *flags):
    return run_cli('--data-dir', data, '--vgg-dir', vgg_dir, '--runs-dir', runs, '--batch-size', 3,
                   '--checkpoint-minutes', 0, *(TINY_SHAPE + list(flags)))


def interrupted_copy(run, tmp_path):
    """A copy of a finished run as an interrupted one (a .partial folder elsewhere, so it can finish too)."""
    partial = str(tmp_path / 'interrupted' / (run.name + '.partial'))
    shutil.copytree(str(run), partial)
    return partial


def test_selection_chooses_and_the_report_split_is_only_measured(split_files, tiny_vgg_dir, tmp_path, capsys):
    data, val, select = split_files
    runs = tmp_path / 'runs'
    assert train(data, tiny_vgg_dir, runs, '--epochs', 2) == 0
    out = capsys.readouterr().out
    assert '1 selection images choose the kept epoch, 2 report-split images are only measured' in out
    assert '  selection IoU' in out and '  report split IoU' in out
    assert 'report split, kept epoch' in out and 'report split, last epoch 2:' in out
    (run,) = runs.iterdir()
    with open(str(run / 'history.jsonl')) as f:
        entries = [json.loads(line) for line in f]
    assert [(e['val_images'], e['report_images']) for e in entries] == [(1, 2), (1, 2)]
    with open(str(run / 'config.json')) as f:
        recorded = json.load(f)['splits']
    assert sorted(recorded) == sorted([str(val), str(select)]) and all(len(v) == 64 for v in recorded.values())
    with open(str(run / 'best' / 'evaluation' / 'metrics.json')) as f:
        report = json.load(f)
    assert report['overall']['road_pixels'] == 2 * 32 * 96, \
        'best/evaluation/ holds the report split (2 images, 32x96 road pixels each), not the selection split'


def test_resume_and_init_from_refuse_a_changed_split(split_files, tiny_vgg_dir, tmp_path, capsys):
    data, val, select = split_files
    runs = tmp_path / 'runs'
    assert train(data, tiny_vgg_dir, runs, '--epochs', 1) == 0
    (run,) = runs.iterdir()
    partial = interrupted_copy(run, tmp_path)
    before = sorted(os.listdir(partial))
    capsys.readouterr()

    select.write_text('# selection split\num_000004.png\n')
    assert run_cli('--resume', partial, '--vgg-dir', tiny_vgg_dir, '--epochs', 2) == 2
    line = error_line(capsys)
    assert line.startswith('error: --resume {}: {} changed since {} was trained (sha256 '.format(
        partial, select, partial)), line
    assert sorted(os.listdir(partial)) == before, 'the run is untouched'
    assert train(data, tiny_vgg_dir, runs, '--epochs', 1, '--init-from', run) == 2
    assert '{} changed since {} was trained'.format(select, run) in error_line(capsys)
    assert len(list(runs.iterdir())) == 1, 'no new run folder'

    select.write_text('# selection split\num_000003.png\n')
    assert run_cli('--resume', partial, '--vgg-dir', tiny_vgg_dir, '--epochs', 2) == 0
    assert train(data, tiny_vgg_dir, runs, '--epochs', 1, '--init-from', run) == 0


def test_older_runs_without_checksums_resume(split_files, tiny_vgg_dir, tmp_path):
    data, val, select = split_files
    runs = tmp_path / 'runs'
    assert train(data, tiny_vgg_dir, runs, '--epochs', 1) == 0
    (run,) = runs.iterdir()
    partial = interrupted_copy(run, tmp_path)
    config = os.path.join(partial, 'config.json')
    with open(config) as f:
        settings = json.load(f)
    del settings['splits']
    with open(config, 'w') as f:
        json.dump(settings, f)
    select.write_text('# selection split\num_000004.png\n')
    assert run_cli('--resume', partial, '--vgg-dir', tiny_vgg_dir, '--epochs', 2) == 0

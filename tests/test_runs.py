"""The run folder's one reader (roadseg/runs.py): a damaged config.json is one `error:` line in every mode."""
import os
import shutil

import pytest

from conftest import SAMPLE, error_line, run_cli
from roadseg import runs
from roadseg.system.files import InputError


@pytest.fixture
def damaged_run(tiny_run, tmp_path):
    """A copy of the tiny run whose config.json was cut short (a crash or a full disk while copying)."""
    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run)
    path = os.path.join(run, 'config.json')
    with open(path, 'rb') as f:
        text = f.read()
    with open(path, 'wb') as f:
        f.write(text[:len(text) // 2])
    return run


def test_damaged_config_is_one_error_line(damaged_run, tmp_path, capsys):
    path = os.path.join(damaged_run, 'config.json')
    assert run_cli('--evaluate', damaged_run, '--data-dir', SAMPLE) == 2
    assert error_line(capsys).startswith('error: {} is damaged ('.format(path))
    assert run_cli('--predict', os.path.join(SAMPLE, 'testing', 'image_2'), '--checkpoint', damaged_run,
                   '--output', tmp_path / 'out') == 2
    assert error_line(capsys).startswith('error: {} is damaged ('.format(path))
    partial = damaged_run + '.partial'
    os.rename(damaged_run, partial)
    assert run_cli('--resume', partial, '--epochs', 2) == 2
    assert 'config.json is damaged (' in error_line(capsys)


def test_config_that_is_not_an_object(tmp_path):
    with open(str(tmp_path / 'config.json'), 'w') as f:
        f.write('[1, 2]')
    with pytest.raises(InputError, match='config.json is damaged \\(not a JSON object\\)'):
        runs.read_config(str(tmp_path))
    with pytest.raises(InputError, match='^nothing here$'):
        runs.read_config(str(tmp_path / 'absent'), 'nothing here')


def test_trained_run_is_parsed_from_any_of_its_paths(tiny_run):
    """The run folder, its best/ or last/ folder (which then follows the folder) and a checkpoint prefix name
    the same run; config.json is read once, on first use."""
    best = runs.find_checkpoint(tiny_run, 'best')
    last = runs.find_checkpoint(tiny_run, 'last')
    assert os.path.dirname(best) != os.path.dirname(last)
    for path, which, prefix in ((tiny_run, 'best', best), (tiny_run + os.sep, 'best', best),
                                (os.path.join(tiny_run, 'best'), 'best', best),
                                (os.path.join(tiny_run, 'last'), 'last', last), (last, 'last', last)):
        run = runs.TrainedRun(path)  # which='best' unless the path names another checkpoint
        assert (run.path, run.which, run.checkpoint) == (tiny_run, which, prefix), path
        assert run.export_dir == os.path.join(tiny_run, 'export' if which == 'best' else 'export_last')
        assert run.config_path == os.path.join(tiny_run, 'config.json')
        assert run.image_shape == tuple(run.config['image_shape']) and run.dataset_name == 'kitti_road'
        assert run.num_classes == 2 and run.task(2).class_names == ('background', 'road')
        assert runs.TrainedRun.of(run) is run
    assert runs.TrainedRun(tiny_run, 'last').checkpoint == last


def test_trained_run_reads_config_once(tiny_run, tmp_path, monkeypatch):
    run = runs.TrainedRun(str(tmp_path / 'absent'))  # nothing is read until it is needed
    with pytest.raises(InputError, match='absent/config.json not found: .* has no config.json'):
        run.image_shape
    reads = []
    monkeypatch.setattr(runs, 'read_config', lambda *a: reads.append(a) or {'image_shape': [32, 64]})
    run = runs.TrainedRun(tiny_run)
    assert (run.image_shape, run.dataset_name, run.num_classes, run.image_shape) == ((32, 64), 'kitti_road', None,
                                                                                    (32, 64))
    assert len(reads) == 1


@pytest.mark.parametrize('which', ['best', 'last'])
def test_evaluate_a_checkpoint_folder(tiny_run, tmp_path, capsys, which):
    """--evaluate RUN/best (or RUN/last) evaluates that checkpoint of RUN, as Segmenter('RUN/best') loads it."""
    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns('evaluation*', 'export*'))
    assert run_cli('--evaluate', os.path.join(run, which), '--data-dir', SAMPLE) == 0
    assert 'Evaluating {}'.format(runs.find_checkpoint(run, which)) in capsys.readouterr().out
    assert os.listdir(run).count('evaluation_' + which) == 1 and not os.path.exists(os.path.join(run, which, 'config.json'))

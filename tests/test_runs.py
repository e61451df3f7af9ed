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

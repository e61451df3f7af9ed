"""pyproject.toml: the wheel `pip install .` builds gives `import roadseg` and the `roadseg` command from any folder.

The wheel is built from a copy of the project's files (the checkout stays clean) without dependencies, installed
with `pip install --no-deps --target`, and used from another folder with that target on PYTHONPATH (this
interpreter's own packages, TensorFlow included, still load).
"""
import glob
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT

SHIPPED = ('pyproject.toml', 'README.md', 'LICENSE', 'requirements.txt', 'main.py', 'roadseg', 'splits',
           os.path.join('data', 'sample'))


def pip(*args, **kwargs):
    proc = subprocess.run([sys.executable, '-m', 'pip'] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=600, **kwargs)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc


def has_setuptools(version):
    """True when this interpreter's setuptools is at least version (the build can then skip isolation)."""
    try:
        import setuptools
    except ImportError:
        return False
    return tuple(int(p) for p in setuptools.__version__.split('.')[:2]) >= version


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """(the wheel's path, the --target folder it is installed in)."""
    tmp = tmp_path_factory.mktemp('packaging')
    source = tmp / 'source'
    for name in SHIPPED:
        src, dst = os.path.join(ROOT, name), str(source / name)
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(src, dst)
    # setuptools 62.6+ reads the dependencies from requirements.txt; an older one (Python 3.7's venv has 47)
    # builds in pip's isolated environment, with a setuptools pip fetches
    isolation = [] if has_setuptools((62, 6)) else ['--use-pep517']
    pip('wheel', '--no-deps', '-w', str(tmp / 'dist'), str(source),
        *(['--no-build-isolation'] if not isolation else isolation))
    (wheel,) = glob.glob(str(tmp / 'dist' / 'roadseg-*.whl'))
    target = tmp / 'site'
    pip('install', '--no-deps', '--no-compile', '--target', str(target), wheel)
    return wheel, str(target)


def run_from_elsewhere(cwd, target, *argv):
    env = dict(os.environ, PYTHONPATH=target)
    return subprocess.run(list(argv), cwd=str(cwd), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)


def test_wheel_holds_every_module(installed):
    """Every .py under roadseg/ (the package list in pyproject.toml is explicit), main.py, the split files and
    the bundled sample."""
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {os.path.relpath(p, ROOT).replace(os.sep, '/')
               for p in glob.glob(os.path.join(ROOT, 'roadseg', '**', '*.py'), recursive=True)}
    assert modules - names == set()
    assert 'main.py' in names
    for name in ('splits/val.txt', 'splits/select.txt', 'data/sample/training/image_2/um_000000.png',
                 'data/sample/training/gt_image_2/um_road_000000.png', 'data/sample/testing/image_2/um_000000.png'):
        assert 'roadseg/_bundled/' + name in names


def test_import_from_another_folder(installed, tmp_path):
    """`import roadseg` and its model module from a folder without the checkout: the installed copies, which
    find the bundled split files and sample under the recorded names."""
    _, target = installed
    code = ('import main, roadseg; from roadseg.data import splits; from roadseg.cli import SAMPLE_DIR; '
            'from roadseg.data.datasets.kitti_road import SPLIT_FILE; '
            'print(main.__file__, roadseg.__file__, SAMPLE_DIR, SPLIT_FILE, splits.file_name(SPLIT_FILE), sep="\\n")')
    proc = run_from_elsewhere(tmp_path, target, sys.executable, '-c', code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    main_file, package, sample, split_file, recorded = proc.stdout.split()
    for path in (main_file, package, sample, split_file):
        assert os.path.realpath(path).startswith(os.path.realpath(target)), path
    assert os.path.isdir(os.path.join(sample, 'training', 'image_2')) and os.path.isfile(split_file)
    assert recorded == 'splits/val.txt'  # as a checkout records it in a run's config.json


def test_console_command_is_main_py(installed, tmp_path):
    """The installed `roadseg` command answers as `python main.py` does: help, and a bad run folder."""
    _, target = installed
    command = os.path.join(target, 'bin', 'roadseg')
    assert os.path.isfile(command)
    for argv in (['--help'], ['--evaluate', 'no-such-run']):
        ours = run_from_elsewhere(tmp_path, target, command, *argv)
        want = subprocess.run([sys.executable, os.path.join(ROOT, 'main.py')] + argv, cwd=str(tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
        assert ours.returncode == want.returncode, ours.stderr[-2000:]
        assert ours.stdout.replace('usage: roadseg', 'usage: main.py') == want.stdout
        assert ours.stderr == want.stderr
    assert want.returncode != 0 and 'no-such-run' in want.stderr

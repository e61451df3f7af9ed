"""CI's limits on the tests themselves: every subprocess a test starts has a time limit, a timed-out subprocess
fails in one line, and only the skips tests/allowed_skips.txt lists for a stack pass CI."""
import ast
import os
import subprocess
import sys
import types

import pytest

import conftest
from conftest import ROOT, allowed_skips, run_process, unexpected_skips

SOURCES = [os.path.join(ROOT, 'project_tests.py')] + [
    os.path.join(ROOT, 'tests', n) for n in sorted(os.listdir(os.path.join(ROOT, 'tests'))) if n.endswith('.py')]
STARTS = {'run', 'call', 'check_call', 'check_output'}  # subprocess functions that wait for the process
WAITS = {'communicate', 'wait'}                          # Popen methods that wait for it


def calls_without_timeout(path):
    """[(line, call)] of subprocess.run/call/check_call/check_output and .communicate()/.wait() calls in path
    without a timeout argument."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    missing = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        starts = name in STARTS and isinstance(node.func.value, ast.Name) and node.func.value.id == 'subprocess'
        if (starts or name in WAITS) and not any(k.arg in ('timeout', '**') or k.arg is None for k in node.keywords) \
                and not (name == 'wait' and node.args):
            missing.append((node.lineno, name))
    return missing


def test_every_subprocess_has_a_time_limit():
    missing = ['{}:{}: {}() without timeout='.format(os.path.relpath(p, ROOT), line, name)
               for p in SOURCES for line, name in calls_without_timeout(p)]
    assert not missing, '\n'.join(missing)


def test_a_subprocess_past_its_limit_fails_in_one_line():
    with pytest.raises(pytest.fail.Exception, match=r'^subprocess timed out after 0.5 s: .* -c import time'):
        run_process([sys.executable, '-c', 'import time; time.sleep(30)'], timeout=0.5)


def test_allowed_skips_name_tests_that_exist():
    for stack in ('tf1', 'tf2'):
        for pattern in allowed_skips(stack):
            path, _, name = pattern.partition('::')
            with open(os.path.join(ROOT, path)) as f:
                assert 'def {}('.format(name.split('[')[0]) in f.read(), pattern


def test_a_skip_not_listed_for_the_stack_is_unexpected(tmp_path):
    listed = tmp_path / 'allowed.txt'
    listed.write_text('tf1  tests/test_a.py::test_eager   # why\ntf1,tf2  tests/test_b.py::test_data[[]x[]]\n')

    def skipped(nodeid):
        return types.SimpleNamespace(nodeid=nodeid, longrepr=('f.py', 1, 'Skipped: because'))

    reports = [skipped('tests/test_a.py::test_eager'), skipped('tests/test_b.py::test_data[x]'),
               skipped('tests/test_quantize.py::test_int8_close_to_fp32')]
    assert unexpected_skips(reports, allowed_skips('tf1', str(listed))) == [
        ('tests/test_quantize.py::test_int8_close_to_fp32', 'Skipped: because')]
    assert [n for n, _ in unexpected_skips(reports, allowed_skips('tf2', str(listed)))] == [
        'tests/test_a.py::test_eager', 'tests/test_quantize.py::test_int8_close_to_fp32']


def test_ci_runs_with_the_limits():
    import configparser
    import re
    ini = configparser.ConfigParser()
    ini.read(os.path.join(ROOT, 'pytest.ini'))
    assert int(ini['pytest']['timeout']) > 0
    with open(os.path.join(ROOT, '.ci', 'run')) as f:
        ci = f.read()
    commands = re.sub(r'\\\n\s*', ' ', ci).splitlines()  # continued lines joined
    pytest_lines = [line for line in commands if 'python -m pytest' in line and 'echo' not in line]
    assert pytest_lines and all('ROADSEG_STRICT_SKIPS=1' in line and 'ROADSEG_SAMPLE_RUN=1' in line
                                for line in pytest_lines)
    assert conftest.STACK in ('tf1', 'tf2')

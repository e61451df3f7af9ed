"""bench/benchmark.py: its help, the peer it compares each TensorFlow row with (bench/speed_tables.py), and a
short run's JSON."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, 'bench'))
import benchmark  # noqa: E402
import speed_tables as tables  # noqa: E402
import peers  # noqa: E402


def test_help_states_each_default_once(capsys):
    with pytest.raises(SystemExit):
        benchmark.parse_args(['--help'])
    out = capsys.readouterr().out
    assert '(default: ' not in out
    options = out.split('\n  --')[1:]
    assert len(options) > 10
    for option in options:
        assert ' '.join(option.split()).count('default') <= 1, option


def row(what, engine, precision, seconds, part='infer', rounds=None):
    return {'what': what, 'engine': engine, 'precision': precision, 'part': part, 'batch': 4,
            's_per_image': seconds, 'rounds_s_per_image': rounds or [seconds * 0.9, seconds * 1.1]}


def test_ratios_take_the_fastest_peer_per_precision():
    rows = [row('TF infer (live graph)', 'TensorFlow', 'fp32', 0.20),
            row('TF infer (frozen)', 'TensorFlow', 'fp32', 0.18),
            row('TF infer bf16 (frozen)', 'TensorFlow', 'bf16', 0.033, rounds=[0.030, 0.036]),
            row('PyTorch infer fp32 (NCHW)', 'PyTorch', 'fp32', 0.223),
            row('ONNX Runtime infer fp32 (project export)', 'ONNX Runtime', 'fp32', 0.171),
            row('PyTorch infer bf16 (channels_last)', 'PyTorch', 'bf16', 0.045),
            row('ONNX Runtime infer int8 (project export)', 'ONNX Runtime', 'int8', 0.030,
                rounds=[0.033, 0.027]),
            row('TF train', 'TensorFlow', 'fp32', 0.631, 'train'),
            row('PyTorch train fp32 (channels_last)', 'PyTorch', 'fp32', 0.674, 'train')]
    found = {(r['part'], r['precision']): r for r in tables.ratios(rows)}
    assert sorted(found) == [('infer', 'any'), ('infer', 'bf16'), ('infer', 'fp32'), ('train', 'any'),
                             ('train', 'fp32')]  # int8: no TensorFlow row of its own
    fp32 = found[('infer', 'fp32')]
    assert (fp32['tf'], fp32['peer']) == ('TF infer (frozen)', 'ONNX Runtime infer fp32 (project export)')
    assert fp32['speed'] == pytest.approx(0.171 / 0.18)
    assert found[('infer', 'bf16')]['speed'] == pytest.approx(0.045 / 0.033)
    best = found[('infer', 'any')]
    assert (best['tf'], best['peer']) == ('TF infer bf16 (frozen)', 'ONNX Runtime infer int8 (project export)')
    assert (best['rounds_min'], best['rounds_max']) == pytest.approx((0.027 / 0.036, 0.033 / 0.030))  # per round
    assert found[('train', 'fp32')]['speed'] == pytest.approx(0.674 / 0.631)


def test_export_ratios_pair_the_two_exports_per_precision():
    """ONNX Runtime on the project's export over the PyTorch peer's, per precision and per round."""
    rows = [row('ONNX Runtime infer fp32 (project export)', 'ONNX Runtime', 'fp32', 0.070, rounds=[0.069, 0.071]),
            row('ONNX Runtime infer fp32 (PyTorch export)', 'ONNX Runtime', 'fp32', 0.077, rounds=[0.078, 0.076]),
            row('ONNX Runtime infer int8 (project export)', 'ONNX Runtime', 'int8', 0.040),
            row('ONNX Runtime infer int8 (PyTorch export)', 'ONNX Runtime', 'int8', 0.036),
            row('TF infer (frozen)', 'TensorFlow', 'fp32', 0.060)]
    found = {r['precision']: r for r in tables.export_ratios(rows)}
    assert sorted(found) == ['fp32', 'int8']
    assert found['fp32']['speed'] == pytest.approx(0.077 / 0.070)
    assert (found['fp32']['rounds_min'], found['fp32']['rounds_max']) == pytest.approx((0.076 / 0.071, 0.078 / 0.069))
    assert found['int8']['speed'] == pytest.approx(0.036 / 0.040)
    assert tables.export_ratios(rows[:1]) == []


def test_short_run_json(tmp_path):
    """One round at tiny shapes: every row in the JSON with its engine and precision, the CPU line, the
    settings; the peers that are installed are there, int8 included."""
    out = str(tmp_path / 'bench.json')
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'bench', 'benchmark.py'), '--short', '--batches', '1',
                           '--part', 'infer', '--runs', '1', '--calibration', '1', '--json', out],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out) as f:
        result = json.load(f)
    assert result['cpu_line'].startswith('CPU: ') and result['cpu_line'] in proc.stdout
    assert result['settings']['argv'][:2] == ['--short', '--batches'] and result['versions']['tensorflow']
    rows = {r['what']: r for r in result['rows']}
    want = {'TF infer (live graph)', 'TF infer (frozen)'}
    if peers.installed('onnxruntime'):
        want |= {'ONNX Runtime infer fp32 (project export)', 'ONNX Runtime infer int8 (project export)'}
    if peers.installed('torch'):
        want |= {'PyTorch infer fp32 (NCHW)', 'PyTorch infer fp32 (channels_last)'}
    assert want <= set(rows)
    assert all(r['s_per_image'] > 0 and r['precision'] in tables.PRECISIONS for r in rows.values())
    if len(want) > 2:
        assert [r['precision'] for r in result['ratios'] if r['part'] == 'infer'][0] == 'fp32'
        assert 'TensorFlow against the fastest peer' in proc.stdout

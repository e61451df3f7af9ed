"""scripts/compare_runs.py: images on the x axis from step x batch size x processes; a PNG; one error line."""
import json
import os
import subprocess
import sys

from PIL import Image

from conftest import ROOT

SCRIPT = os.path.join(ROOT, 'scripts', 'compare_runs.py')


def _run(folder, batch_size, workers, history):
    os.makedirs(folder)
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump({'batch_size': batch_size, 'workers': workers, 'dataset': 'kitti_road', 'precision': 'fp32'}, f)
    with open(os.path.join(folder, 'history.jsonl'), 'w') as f:
        f.write(''.join(json.dumps(e) + '\n' for e in history) + '{"epoch": 3, "st')  # a line cut short
    return folder


def test_table_and_png(tmp_path):
    a = _run(str(tmp_path / 'a'), 4, 1, [{'epoch': 1, 'step': 52, 'loss': 0.2, 'val_max_f1': 0.9,
                                          'report_max_f1': 0.91, 'report_iou': 0.8, 'report_seconds': 3}])
    b = _run(str(tmp_path / 'b'), 2, 2, [{'epoch': 1, 'step': 10, 'loss': 0.3, 'val_max_f1': 0.5,
                                          'report_max_f1': 0.6}, {'epoch': 2, 'step': 20, 'loss': 0.2,
                                                                  'val_max_f1': 0.7, 'report_max_f1': 0.75}])
    out = str(tmp_path / 'c.png')
    proc = subprocess.run([sys.executable, SCRIPT, a, b, '--label', 'A', '--label', 'B', '--out', out],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert '     208 images: report_iou 80.00, report_max_f1 91.00, val_max_f1 90.00' in proc.stdout
    assert '      80 images: report_max_f1 75.00, val_max_f1 70.00' in proc.stdout
    assert Image.open(out).size == (700, 400)


def test_missing_run_is_one_error(tmp_path):
    proc = subprocess.run([sys.executable, SCRIPT, str(tmp_path / 'nope')], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith('error: ') and len(proc.stderr.splitlines()) == 1

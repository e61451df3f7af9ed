"""Shared fixtures: the tiny VGG SavedModel, a tiny training run, synthetic KITTI trees, running main."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# The suite's expectations (ONNX Runtime agreeing within 1e-4, losses reproducible to the digit) are float32's;
# --precision auto would pick bf16 on a CPU with AVX512-BF16. Tests of auto and the first-run check override it.
os.environ.setdefault('ROADSEG_PRECISION', 'fp32')

import project_tests  # noqa: E402
from roadseg import cli  # noqa: E402
from roadseg.model import vgg_weights  # noqa: E402
import main  # noqa: E402

vgg_weights.KERAS_URLS = ()  # tests never fetch the 550 MB ImageNet file, online or not

SAMPLE = os.path.join(ROOT, 'data', 'sample')
TINY_SHAPE = ['--image-shape', '64', '192']


@pytest.fixture(scope='session')
def tiny_vgg_dir():
    """A folder holding vgg/, the tiny VGG-shaped SavedModel (pass it as --vgg-dir)."""
    return os.path.dirname(project_tests.tiny_vgg_path())


def run_cli(*argv):
    """main.py's entry point in-process; returns its exit code."""
    return cli.main([str(a) for a in argv], main)


@pytest.fixture(scope='session')
def tiny_run(tiny_vgg_dir, tmp_path_factory):
    """A finished one-epoch training run of the tiny model on the bundled sample."""
    runs = tmp_path_factory.mktemp('runs')
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--runs-dir', runs, '--epochs', 1,
                   '--batch-size', 3, *TINY_SHAPE) == 0
    (run,) = [p for p in runs.iterdir()]
    return str(run)


def run_main(*argv, **kwargs):
    """main.py in a subprocess (unbuffered); returns the CompletedProcess."""
    return subprocess.run([sys.executable, '-u', os.path.join(ROOT, 'main.py')] + [str(a) for a in argv],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=kwargs.pop('timeout', 300), **kwargs)


def kitti_tree(root, n=3, size=(96, 64)):
    """A synthetic data_road tree: n training pairs (road in the lower half) and n testing images."""
    rng = np.random.RandomState(0)
    for sub in ('training/image_2', 'training/gt_image_2', 'testing/image_2'):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for i in range(n):
        image = rng.randint(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        mask = np.zeros_like(image)
        mask[...] = (255, 0, 0)
        mask[size[1] // 2:] = (255, 0, 255)
        Image.fromarray(image).save(os.path.join(root, 'training/image_2/um_{:06d}.png'.format(i)))
        Image.fromarray(mask).save(os.path.join(root, 'training/gt_image_2/um_road_{:06d}.png'.format(i)))
        Image.fromarray(image).save(os.path.join(root, 'testing/image_2/um_{:06d}.png'.format(i)))
    return str(root)


def error_line(capsys):
    """The one `error: ...` line main printed on stderr (progress bars aside), asserting no traceback."""
    err = capsys.readouterr().err
    assert 'Traceback' not in err, err
    lines = [line for line in err.splitlines() if line.startswith('error: ')]
    assert len(lines) == 1, err
    return lines[0]

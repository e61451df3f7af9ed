"""--encoder-width: VGG16 narrowed, random, built once in VGG_DIR/vgg_x<width>, trained from scratch, recorded."""
import json
import os

import pytest

from conftest import error_line, run_cli
from roadseg.cli import settings
from roadseg.model import vgg

ARGS = ('--dataset', 'shapes', '--multi-label', '--image-shape', 32, 32, '--epochs', 1, '--encoder-width', 0.0625)


@pytest.fixture(autouse=True)
def few_shapes(monkeypatch):
    """16 training shapes images instead of the recipe's thousands."""
    monkeypatch.setattr(settings, 'SHAPES_IMAGES', (16, 4, 2))


def test_narrow_encoder_is_built_once_and_recorded(tmp_path):
    vgg_dir, runs = tmp_path / 'data', tmp_path / 'runs'
    assert run_cli(*ARGS, '--dice', '--vgg-dir', vgg_dir, '--runs-dir', runs) == 0
    built = vgg_dir / 'vgg_x0.0625'
    found = vgg.validate_vgg_savedmodel(str(built))
    assert found['fc_width'] == 64 and 'trained from scratch' in found['source'] and '4-8-16-32-32' in found['source']
    assert not (vgg_dir / 'vgg').exists(), 'the pretrained VGG16 is neither needed nor built'
    (run,) = runs.iterdir()
    config = json.load(open(str(run / 'config.json')))
    assert (config['encoder_width'], config['dice'], config['vgg_source']) == (0.0625, True, found['source'])
    stamp = os.stat(str(built / 'saved_model.pb')).st_mtime_ns
    assert run_cli(*ARGS, '--vgg-dir', vgg_dir, '--runs-dir', runs) == 0
    assert os.stat(str(built / 'saved_model.pb')).st_mtime_ns == stamp, 'built once, then reused'


def test_pretrained_weights_do_not_fit_a_narrow_encoder(tmp_path, capsys):
    assert run_cli(*ARGS, '--vgg-weights', 'vgg_16.ckpt', '--runs-dir', tmp_path) == 2
    assert 'an --encoder-width 0.0625 encoder has no pretrained weights' in error_line(capsys)
    assert not os.listdir(str(tmp_path))


def test_dice_needs_a_multi_label_run(tmp_path, capsys):
    assert run_cli('--dataset', 'shapes', '--image-shape', 32, 32, '--epochs', 1, '--dice', '--runs-dir', tmp_path,
                   '--vgg-dir', tmp_path / 'data', '--encoder-width', 0.0625) == 2
    assert '--dice is for multi-label runs' in error_line(capsys)

"""Seeded runs repeat: two trainings with the same --seed record the same losses and validation scores to the last
digit on this stack (dropout and augmentation on); another seed does not."""
import json
import os

from conftest import TINY_SHAPE, run_cli

RECIPE = ['--epochs', 3, '--batch-size', 5, '--learning-rate', 3e-3, '--keep-prob', 0.5] + TINY_SHAPE


def history(tmp_path, name, vgg_dir, data, seed):
    runs = tmp_path / name
    assert run_cli('--data-dir', data, '--vgg-dir', vgg_dir, '--runs-dir', runs, '--seed', seed, *RECIPE) == 0
    (run,) = [str(p) for p in runs.iterdir()]
    with open(os.path.join(run, 'history.jsonl')) as f:
        return [json.loads(line) for line in f]


def test_same_seed_same_losses(tiny_vgg_dir, road_data, tmp_path):
    first, again, other = (history(tmp_path, name, tiny_vgg_dir, road_data, seed)
                           for name, seed in (('a', 0), ('b', 0), ('c', 1)))
    keys = ('epoch', 'step', 'loss', 'val_iou', 'val_max_f1')
    assert [[e[k] for k in keys] for e in first] == [[e[k] for k in keys] for e in again]
    assert [e['loss'] for e in first] != [e['loss'] for e in other], 'the seed decides the run'

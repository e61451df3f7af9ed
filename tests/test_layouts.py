"""End to end on each data layout and decoder: train on synthetic road scenes written here as a folder dataset, as
Cityscapes and (KITTI) with --fcn 16 and 32; then --evaluate and --predict, each checked against the true parts."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import GRASS, LEARNED_RECIPE, ROAD, SKY, iou, road_scene, run_cli
from roadseg.runs import find_checkpoint
from roadseg.system.tfcompat import tf

SIZE = (64, 192)
# Cityscapes labelIds of the scene's parts (sky 23, terrain 22, road 7) and their train IDs (10, 9, 0)
LABEL_IDS = {SKY: 23, GRASS: 22, ROAD: 7}
TRAIN_IDS = {SKY: 10, GRASS: 9, ROAD: 0}


def scenes(n, seed):
    rng = np.random.RandomState(seed)
    return [road_scene(rng, SIZE) for _ in range(n)]


def save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def folder_tree(root):
    """images/ + masks/ (RGB colours) + classes.json; 15 pairs, of which p04, p09, p14 are the validation split
    (every 5th of the sorted names).
    Returns (root, {part: class index}, {validation image name: (image, parts)})."""
    colors = {SKY: (0, 0, 255), GRASS: (0, 128, 0), ROAD: (128, 64, 128)}
    os.makedirs(root)
    with open(os.path.join(root, 'classes.json'), 'w') as f:
        json.dump({'names': ['sky', 'grass', 'road'], 'colors': [list(colors[k]) for k in (SKY, GRASS, ROAD)]}, f)
    frames = scenes(15, 1)
    for i, (image, parts) in enumerate(frames):
        mask = np.zeros(parts.shape + (3,), np.uint8)
        for part, color in colors.items():
            mask[parts == part] = color
        save(os.path.join(root, 'images', 'p{:02d}.png'.format(i)), image)
        save(os.path.join(root, 'masks', 'p{:02d}.png'.format(i)), mask)
    return root, {SKY: 0, GRASS: 1, ROAD: 2}, {'p{:02d}.png'.format(i): frames[i] for i in (4, 9, 14)}


def cityscapes_tree(root):
    """leftImg8bit/ + gtFine/ *_labelIds.png: 12 training frames in two cities, 3 validation frames in a third.
    Returns (root, {part: train ID}, {validation image name: (image, parts)})."""
    frames, val = scenes(15, 2), {}
    for i, (image, parts) in enumerate(frames):
        split, city = ('val', 'lindau') if i >= 12 else ('train', ('aachen', 'bremen')[i % 2])
        stem = '{}_000000_{:06d}'.format(city, i)
        label_ids = np.zeros(parts.shape, np.uint8)
        for part, label_id in LABEL_IDS.items():
            label_ids[parts == part] = label_id
        save(os.path.join(root, 'leftImg8bit', split, city, stem + '_leftImg8bit.png'), image)
        save(os.path.join(root, 'gtFine', split, city, stem + '_gtFine_labelIds.png'), label_ids)
        if split == 'val':
            val[stem + '_leftImg8bit.png'] = (image, parts)
    return root, TRAIN_IDS, val


def predict_scenes(run, frames, folder):
    """--predict of the run on frames {name: (image, parts)}, written to folder/in; [(class map, true parts)]."""
    for name, (image, _) in frames.items():
        save(os.path.join(folder, 'in', name), image)
    out = os.path.join(folder, 'out')
    assert run_cli('--predict', os.path.join(folder, 'in'), '--checkpoint', run, '--output', out) == 0
    return [(np.asarray(Image.open(os.path.join(out, name))), parts) for name, (_, parts) in frames.items()]


def train_evaluate_predict(tmp_path, vgg_dir, data, flags):
    """Train with the learned recipe and flags, --evaluate, --predict two new scenes; returns (run, metrics,
    [(predicted class map, true parts)])."""
    runs = tmp_path / 'runs'
    assert run_cli('--data-dir', data, '--vgg-dir', vgg_dir, '--runs-dir', runs,
                   *(LEARNED_RECIPE + flags)) == 0
    (run,) = [str(p) for p in runs.iterdir()]
    assert run_cli('--evaluate', run) == 0
    with open(os.path.join(run, 'evaluation_best', 'metrics.json')) as f:
        metrics = json.load(f)
    new = {'s{}.png'.format(i): frame for i, frame in enumerate(scenes(2, 3))}
    return run, metrics, predict_scenes(run, new, str(tmp_path / 'new'))


@pytest.mark.parametrize('layout', ['folder', 'cityscapes'])
def test_layout_end_to_end(layout, tiny_vgg_dir, tmp_path):
    """The layout is detected, its labels read as the parts they are: each part found with IoU > 0.7 by
    --evaluate (over the 3 validation images) and > 0.5 in --predict's class maps of two new scenes; --evaluate's
    IoU is the one computed here from --predict's maps of the validation images and the parts they were drawn from
    (each image scored against its own labels)."""
    data, index, val = (folder_tree if layout == 'folder' else cityscapes_tree)(str(tmp_path / layout))
    run, metrics, predictions = train_evaluate_predict(tmp_path, tiny_vgg_dir, data, [])
    config = json.load(open(os.path.join(run, 'config.json')))
    assert config['dataset'] == layout and config['num_classes'] == (3 if layout == 'folder' else 19)
    class_iou = metrics['class_iou']
    print(layout, {part: class_iou[i] for part, i in index.items()})
    val_maps = predict_scenes(run, val, str(tmp_path / 'val'))
    for part, i in index.items():
        assert class_iou[i] > 0.7, (part, class_iou)
        by_hand = iou([p == i for p, _ in val_maps], [t == part for _, t in val_maps])
        assert abs(class_iou[i] - by_hand) < 1e-6, (part, class_iou[i], by_hand)
    for predicted, parts in predictions:
        for part, i in index.items():
            assert iou(predicted == i, parts == part) > 0.5, (part, iou(predicted == i, parts == part))


@pytest.mark.parametrize('variant,min_iou,epochs', [(16, 0.8, 12), (32, 0.6, 30)])  # FCN-32s learns slower
def test_fcn_variant_end_to_end(variant, min_iou, epochs, tiny_vgg_dir, road_data, tmp_path):
    """--fcn 16 and 32 train the decoder they name (its kernels only in the checkpoint), learn the road, evaluate
    and predict; the coarser FCN-32s is held to a lower IoU."""
    run, metrics, predictions = train_evaluate_predict(tmp_path, tiny_vgg_dir, road_data,
                                                       ['--fcn', variant, '--epochs', epochs])
    assert json.load(open(os.path.join(run, 'config.json')))['decoder'] == 'fcn{}'.format(variant)
    names = {name.split('/')[1] for name, _ in tf.train.list_variables(find_checkpoint(run))
             if name.startswith('decoder/') and '/Adam' not in name}
    assert names == ({'score4', 'score7', 'up4x16', 'up7'} if variant == 16 else {'score7', 'up7x32'})
    print('--fcn {}: validation IoU {:.3f}'.format(variant, metrics['overall']['iou']))
    assert metrics['overall']['iou'] > min_iou
    for predicted, parts in predictions:
        assert iou(predicted == 1, parts == ROAD) > min_iou - 0.1

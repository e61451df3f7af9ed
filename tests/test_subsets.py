"""--classes: some classes of a multi-class dataset as classes 1..k, the rest background, ignored pixels ignored;
one class trains, evaluates and predicts as a binary (non-KITTI) run."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import ROAD, error_line, iou, kitti_tree, run_cli
from roadseg import task as tasks
from roadseg.data.datasets import IGNORE, Subset, get_dataset
from roadseg.data.datasets.subset import subset_table
from roadseg.runs import TrainedRun
from roadseg.serving.inference import Segmenter
from roadseg.system.files import InputError
from test_layouts import cityscapes_tree, save, train_evaluate_predict

# Cityscapes labelIds (road 7, sidewalk 8, car 26, sky 23; 0 unlabeled and 1 ego vehicle are ignored)
LABEL_IDS = np.array([[7, 26, 0, 23], [8, 7, 26, 1]], np.uint8)


def one_frame_cityscapes(root):
    """A Cityscapes tree of one 4x2 training frame labelled LABEL_IDS."""
    for split in ('train', 'val'):
        save(os.path.join(root, 'leftImg8bit', split, 'ulm', 'ulm_000000_000000_leftImg8bit.png'),
             np.zeros((2, 4, 3), np.uint8))
        save(os.path.join(root, 'gtFine', split, 'ulm', 'ulm_000000_000000_gtFine_labelIds.png'), LABEL_IDS)
    return root


def test_subset_table_by_hand():
    """Of 5 classes, picking 3 then 1: 3 -> 1, 1 -> 2, the others -> 0, IGNORE stays IGNORE."""
    label = np.array([[0, 1, 2], [3, 4, IGNORE]], np.uint8)
    remapped = subset_table(5, [3, 1])[label]
    assert remapped.dtype == np.uint8
    np.testing.assert_array_equal(remapped, [[0, 2, 0], [1, 0, IGNORE]])


def test_cityscapes_subset_labels(tmp_path):
    """--classes car ROAD: car 1, road 2 (names matched without case, in the order given), sidewalk and sky
    background, unlabeled and ego vehicle still ignored; by load and load_label alike."""
    ds = get_dataset(None, one_frame_cityscapes(str(tmp_path)), classes=['car', 'ROAD'])
    assert isinstance(ds, Subset) and ds.name == 'cityscapes'
    assert ds.class_names == ['background', 'car', 'road']
    assert ds.colors == [(0, 0, 0), (0, 0, 142), (128, 64, 128)]
    (sample,) = ds.samples('train')
    expected = [[2, 1, IGNORE, 0], [0, 2, 1, IGNORE]]
    np.testing.assert_array_equal(ds.load_label(sample), expected)
    np.testing.assert_array_equal(ds.load(sample)[1], expected)
    assert tasks.for_dataset(ds).name == 'classes'
    binary = tasks.for_dataset(get_dataset('cityscapes', str(tmp_path), classes=['road']))
    assert binary.name == 'binary' and not binary.kitti and binary.class_names == ['background', 'road']


def test_background_named(tmp_path):
    """A folder dataset whose named class is called background: the rest is "other"."""
    root = str(tmp_path)
    with open(os.path.join(root, 'classes.json'), 'w') as f:
        json.dump({'names': ['background', 'road', 'car'], 'indices': [0, 1, 2]}, f)
    save(os.path.join(root, 'images', 'a.png'), np.zeros((2, 3, 3), np.uint8))
    save(os.path.join(root, 'masks', 'a.png'), np.array([[0, 1, 2], [2, 1, 255]], np.uint8))
    ds = get_dataset(None, root, classes=['Background'])
    assert ds.class_names == ['other', 'background']
    np.testing.assert_array_equal(ds.load_label(ds.samples('train')[0]), [[1, 0, 0], [0, 0, IGNORE]])


@pytest.mark.parametrize('names,message', [
    (['road', 'roda'], "cityscapes ({}) has no class 'roda'; its classes: road, sidewalk, building"),
    (['road', 'Road'], 'names road twice'),
])
def test_subset_bad_names(tmp_path, names, message):
    root = one_frame_cityscapes(str(tmp_path))
    with pytest.raises(InputError) as e:
        get_dataset('cityscapes', root, classes=names)
    assert message.format(root) in str(e.value)


def test_all_classes_named(tmp_path):
    root = str(tmp_path)
    with open(os.path.join(root, 'classes.json'), 'w') as f:
        json.dump({'names': ['road', 'car'], 'indices': [0, 1]}, f)
    os.makedirs(os.path.join(root, 'images'))
    os.makedirs(os.path.join(root, 'masks'))
    with pytest.raises(InputError, match='names all 2 classes of folder .*leave out at least one'):
        get_dataset('folder', root, classes=['car', 'road'])


def test_classes_flag_errors(tmp_path, tiny_vgg_dir, capsys):
    """One error line, exit 2, no run folder: an unknown class (listing the valid ones), data --classes does not
    apply to (KITTI road, shapes, a multi-label folder), and --classes given to --evaluate or --resume."""
    runs = tmp_path / 'runs'
    city = one_frame_cityscapes(str(tmp_path / 'city'))
    kitti = kitti_tree(str(tmp_path / 'kitti'))
    labels = tmp_path / 'labels'
    for sub in ('images', 'masks'):
        (labels / sub).mkdir(parents=True)
    (labels / 'classes.json').write_text(json.dumps({'multi_label': True, 'names': ['car', 'road']}))
    cases = [
        (['--data-dir', city, '--classes', 'roda'], "has no class 'roda'; its classes: road, sidewalk, building"),
        (['--data-dir', kitti, '--classes', 'road'], '--classes does not apply to kitti_road data: it picks classes '
                                                     'of camvid, cityscapes, folder data'),
        (['--dataset', 'shapes', '--classes', 'circle'], '--classes does not apply to shapes data'),
        (['--data-dir', labels, '--classes', 'road'], '--classes does not apply to multi-label folder data'),
        (['--evaluate', str(tmp_path), '--classes', 'road'], '--classes does not apply to --evaluate'),
        (['--resume', str(tmp_path), '--classes', 'road'], '--classes does not apply to --resume'),
    ]
    for flags, message in cases:
        assert run_cli('--vgg-dir', tiny_vgg_dir, '--runs-dir', runs, *flags) == 2, flags
        assert message in error_line(capsys), flags
        assert not runs.exists() or not os.listdir(str(runs)), flags


def test_one_class_end_to_end(tmp_path, tiny_vgg_dir):
    """--classes road on Cityscapes: config.json records it and a binary task; the run rebuilds the same two-class
    dataset; --evaluate scores MaxF1, AP and road IoU; --predict writes class maps of road, overlays and a legend,
    no KITTI submission files."""
    data, _, _ = cityscapes_tree(str(tmp_path / 'cityscapes'))
    run, metrics, predictions = train_evaluate_predict(tmp_path, tiny_vgg_dir, data, ['--classes', 'road'])
    with open(os.path.join(run, 'config.json')) as f:
        config = json.load(f)
    assert config['dataset'] == 'cityscapes' and config['dataset_options'] == {'classes': ['road']}
    assert (config['task'], config['class_names']) == ('binary', ['background', 'road'])
    assert TrainedRun(run).dataset().class_names == ['background', 'road']
    model = Segmenter(run)
    try:
        assert model.task.name == 'binary' and not model.task.kitti
    finally:
        model.close()
    overall = metrics['overall']
    print('--classes road: validation MaxF1 {:.3f}, AP {:.3f}, IoU {:.3f}'.format(
        overall['max_f1'], overall['average_precision'], overall['iou']))
    assert overall['max_f1'] > 0.8 and overall['average_precision'] > 0.8 and overall['iou'] > 0.7
    assert os.path.isfile(os.path.join(run, 'evaluation_best', 'pr_curve.png'))
    out = tmp_path / 'new' / 'out'  # where train_evaluate_predict's --predict wrote
    assert sorted(os.listdir(str(out))) == ['legend.png', 's0.png', 's0_overlay.png', 's1.png', 's1_overlay.png']
    for predicted, parts in predictions:
        assert set(np.unique(predicted)) <= {0, 1}
        assert iou(predicted == 1, parts == ROAD) > 0.5
    image = np.asarray(Image.open(str(tmp_path / 'new' / 'in' / 's0.png'))).astype(np.float32)
    overlay = np.asarray(Image.open(str(out / 's0_overlay.png')))
    road = predictions[0][0] == 1
    np.testing.assert_array_equal(overlay[~road], image[~road])  # only road is painted, in Cityscapes' road colour
    np.testing.assert_array_equal(overlay[road], ((image[road] + (128, 64, 128)) / 2).astype(np.uint8))

"""The dataset layer on small trees the tests write (and the bundled KITTI sample), palettes, detection."""
import functools
import json
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SAMPLE
from roadseg.data.batches import TrainingSet, drawing_processes
from roadseg.data.datasets import kitti_road as kitti
from roadseg.evaluation import palette
from roadseg.data.datasets import (IGNORE, SELECT, SPLITS, CamVid, Cityscapes, Folder, KittiRoad, Shapes, detect,
                              get_dataset, median_frequency_weights)
from roadseg.data.datasets.cityscapes import LABELS
from roadseg.data.datasets.base import default_colors
from roadseg.system.files import InputError

CAMVID = os.path.join(ROOT, 'data', 'CamVid')


def save(path, array, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8), mode).save(path)
    return path


def frame(h=4, w=6, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (h, w, 3))


def camvid_tree(root, masks):
    """train/ + trainannot/ (one frame per mask) and val/ + valannot/ (the first mask again)."""
    for split, split_masks in (('train', masks), ('val', masks[:1])):
        for i, mask in enumerate(split_masks):
            save(os.path.join(root, split, 'f{}.png'.format(i)), frame(*np.shape(mask)))
            save(os.path.join(root, split + 'annot', 'f{}.png'.format(i)), mask)
    return CamVid(str(root))


def test_camvid_classes_and_unlabelled(tmp_path):
    ds = camvid_tree(tmp_path, [[[0, 3, 11], [10, 8, 8]]])
    assert ds.num_classes == 11 and len(ds.colors) == 11 and ds.class_names[3] == 'Road'
    (sample,) = ds.samples('train')
    assert sample.stem == 'f0' and ds.category(sample) is None
    image, classes = ds.load(sample)
    assert image.shape == (2, 3, 3) and image.dtype == np.uint8
    assert classes.tolist() == [[0, 3, IGNORE], [10, 8, 8]] and classes.dtype == np.uint8
    assert len(ds.samples('val')) == 1 and ds.samples('test') == []


def test_camvid_median_frequency_by_hand(tmp_path):
    ds = camvid_tree(tmp_path, [[[0, 0], [0, 1]], [[1, 1], [2, 11]]])
    # f0 = 3/4 (image 1), f1 = (1 + 2) / (4 + 3) (both images, labelled pixels), f2 = 1/3 (image 2)
    freq = np.array([3 / 4, 3 / 7, 1 / 3])
    expected = np.zeros(11)
    expected[:3] = np.median(freq) / freq
    assert np.allclose(median_frequency_weights(ds), expected)


@pytest.mark.skipif(not os.path.isdir(CAMVID), reason='python ../shared/camvid/materialize.py data/CamVid')
def test_camvid_real_data():
    ds = get_dataset(None, CAMVID)
    assert ds.name == 'camvid'
    assert [len(ds.samples(s)) for s in SPLITS] == [367, 101, 0]
    image, classes = ds.load(ds.samples('val')[0])
    assert image.shape == (360, 480, 3) and classes.shape == (360, 480)
    assert set(np.unique(classes)) <= set(range(11)) | {IGNORE}


def test_value_mask_errors(tmp_path):
    ds = camvid_tree(tmp_path, [[[0, 12], [1, 1]]])
    with pytest.raises(InputError, match=r'trainannot.f0\.png: mask value 12 \(at x=1, y=0\).*classes: 0-10; '
                                         r'ignored: 11, 255'):
        ds.load(ds.samples('train')[0])
    save(str(tmp_path / 'trainannot' / 'f0.png'), np.zeros((2, 2, 3)))
    with pytest.raises(InputError, match=r'f0\.png: mask is RGB'):
        ds.load(ds.samples('train')[0])
    save(str(tmp_path / 'trainannot' / 'f0.png'), np.zeros((3, 2)))
    with pytest.raises(InputError, match=r'image .*train.f0\.png is 2x2 but its mask .*f0\.png is 2x3'):
        ds.load(ds.samples('train')[0])
    (tmp_path / 'train' / 'f0.png').write_bytes(b'not a png')
    with pytest.raises(InputError, match=r'train.f0\.png: not a readable image'):
        ds.load(ds.samples('train')[0])


def test_pairing_errors(tmp_path):
    ds = camvid_tree(tmp_path, [[[0]], [[1]]])
    os.remove(str(tmp_path / 'trainannot' / 'f1.png'))
    with pytest.raises(InputError, match=r'image .*f1\.png has no mask .*trainannot.f1\.png'):
        ds.samples('train')
    os.remove(str(tmp_path / 'train' / 'f1.png'))
    save(str(tmp_path / 'valannot' / 'extra.png'), [[0]])
    with pytest.raises(InputError, match=r'mask .*valannot.extra\.png has no matching image'):
        ds.samples('val')
    save(str(tmp_path / 'train' / 'f0.jpg'), frame(1, 1))
    with pytest.raises(InputError, match=r'two images .*f0\.(png|jpg) and .*f0\.(png|jpg)'):
        ds.samples('train')


def test_cityscapes_tree(tmp_path):
    # labelIds: 7 road -> 0, 26 car -> 13, 33 bicycle -> 18, 0 unlabeled and 9 parking -> ignored
    label_ids = [[7, 26, 33], [0, 9, 23]]
    for split, city in (('train', 'aachen'), ('train', 'bremen'), ('val', 'lindau')):
        stem = '{}_000000_000019'.format(city)
        save(str(tmp_path / 'leftImg8bit' / split / city / (stem + '_leftImg8bit.png')), frame(2, 3))
        save(str(tmp_path / 'gtFine' / split / city / (stem + '_gtFine_labelIds.png')), label_ids)
        save(str(tmp_path / 'gtFine' / split / city / (stem + '_gtFine_color.png')), frame(2, 3))
        (tmp_path / 'gtFine' / split / city / (stem + '_gtFine_polygons.json')).write_text('{}')
    save(str(tmp_path / 'leftImg8bit' / 'test' / 'berlin' / 'berlin_000000_000019_leftImg8bit.png'), frame(2, 3))
    assert detect(str(tmp_path)) == 'cityscapes'
    ds = get_dataset(None, str(tmp_path))
    assert ds.num_classes == 19 and ds.class_names[:2] == ['road', 'sidewalk'] and ds.class_names[18] == 'bicycle'
    assert ds.colors[0] == (128, 64, 128) and ds.colors[13] == (0, 0, 142)
    train = ds.samples('train')
    assert [s.stem for s in train] == ['aachen_000000_000019_leftImg8bit', 'bremen_000000_000019_leftImg8bit']
    assert train[0].label.endswith(os.path.join('aachen', 'aachen_000000_000019_gtFine_labelIds.png'))
    assert ds.load(train[0])[1].tolist() == [[0, 13, 18], [IGNORE, IGNORE, 10]]
    assert len(ds.samples('val')) == 1
    (test,) = ds.samples('test')
    assert test.label is None and ds.load(test)[1] is None
    save(train[1].label, [[7, 34, 7], [7, 7, 7]])
    with pytest.raises(InputError, match=r'bremen_000000_000019_gtFine_labelIds\.png: mask value 34'):
        ds.load(train[1])
    os.remove(train[1].label)
    with pytest.raises(InputError, match=r'bremen_000000_000019_leftImg8bit\.png has no mask .*'
                                         r'bremen.bremen_000000_000019_gtFine_labelIds\.png'):
        ds.samples('train')


def test_cityscapes_table():
    assert len(LABELS) == 34 and [row[1] for row in LABELS] == list(range(34))
    assert sorted(row[2] for row in LABELS if row[2] != IGNORE) == list(range(19))
    assert Cityscapes.table[[7, 8, 11, 23, 24, 26, 31, 33, 9, 14, 29]].tolist() == [
        0, 1, 2, 10, 11, 13, 16, 18, IGNORE, IGNORE, IGNORE]


def folder_tree(root, spec, masks, images=None):
    """images/ + masks/ (p0.png, p1.png, ...) + classes.json (spec: dict, or raw text)."""
    os.makedirs(str(root), exist_ok=True)
    with open(os.path.join(str(root), 'classes.json'), 'w') as f:
        f.write(spec if isinstance(spec, str) else json.dumps(spec))
    for i, mask in enumerate(masks):
        save(os.path.join(str(root), 'masks', 'p{}.png'.format(i)), mask)
        image = frame(*np.shape(mask)[:2]) if images is None else images[i]
        save(os.path.join(str(root), 'images', 'p{}.jpg'.format(i)), image)
    return str(root)


def test_folder_colours(tmp_path):
    mask = [[(0, 0, 0), (200, 0, 0)], [(0, 0, 255), (9, 9, 9)]]
    root = folder_tree(tmp_path, {'names': ['bg', 'thing', 'sky'],
                                  'colors': [[0, 0, 0], [200, 0, 0], [0, 0, 255]], 'ignore': [[9, 9, 9]]},
                       [mask] * 7)
    assert detect(root) == 'folder'
    ds = get_dataset('folder', root)
    assert ds.class_names == ['bg', 'thing', 'sky'] and ds.colors == [(0, 0, 0), (200, 0, 0), (0, 0, 255)]
    assert [s.stem for s in ds.samples('val')] == ['p4']                       # every 5th, from index 4
    assert [s.stem for s in ds.samples('train')] == ['p0', 'p1', 'p2', 'p3', 'p5', 'p6']
    assert ds.samples('test') == []
    image, classes = ds.load(ds.samples('train')[0])
    assert image.shape == (2, 2, 3) and classes.tolist() == [[0, 1], [2, IGNORE]]
    save(os.path.join(root, 'masks', 'p1.png'), [[(0, 0, 0), (1, 2, 3)], [(0, 0, 0)] * 2])
    with pytest.raises(InputError, match=r'p1\.png: mask colour \(1, 2, 3\) \(at x=1, y=0\).*classes\.json'):
        ds.load(ds.samples('train')[1])


def test_folder_indices_and_val_subfolders(tmp_path):
    root = folder_tree(tmp_path, {'names': ['bg', 'road'], 'indices': [0, 7], 'ignore': [3]}, [[[0, 7, 3, 255]]] * 2)
    palette_mask = Image.fromarray(np.array([[7, 0, 0, 7]], np.uint8), 'P')
    palette_mask.putpalette([0, 0, 0] * 7 + [255, 255, 255] + [0, 0, 0] * 248)  # index 7 shows white
    os.makedirs(os.path.join(root, 'images', 'val'))
    os.makedirs(os.path.join(root, 'masks', 'val'))
    palette_mask.save(os.path.join(root, 'masks', 'val', 'v0.png'))
    save(os.path.join(root, 'images', 'val', 'v0.png'), frame(1, 4))
    ds = Folder(root)
    assert ds.colors == default_colors(2)
    assert [s.stem for s in ds.samples('train')] == ['p0', 'p1'] and [s.stem for s in ds.samples('val')] == ['v0']
    assert ds.load(ds.samples('train')[0])[1].tolist() == [[0, 1, IGNORE, IGNORE]]
    assert ds.load(ds.samples('val')[0])[1].tolist() == [[1, 0, 0, 1]]  # palette indices, not colours
    os.makedirs(os.path.join(root, 'images', 'test'))
    save(os.path.join(root, 'images', 'test', 't0.png'), frame(1, 4))
    assert [(s.stem, s.label) for s in ds.samples('test')] == [('t0', None)]


@pytest.mark.parametrize('spec, message', [
    ('{"names": ["a", "b"], ', 'not valid JSON'),
    ('[1, 2]', 'expected an object'),
    ({'colors': [[0, 0, 0]]}, '"names" must be a non-empty list'),
    ({'names': ['a', 'a'], 'indices': [0, 1]}, 'name twice'),
    ({'names': ['a', 'b']}, 'exactly one of "colors"'),
    ({'names': ['a'], 'colors': [[0, 0, 0]], 'indices': [0]}, 'exactly one of "colors"'),
    ({'names': ['a', 'b'], 'colors': [[0, 0, 0]]}, '"colors" must be 2'),
    ({'names': ['a', 'b'], 'colors': [[0, 0, 0], [0, 0, 256]]}, '"colors" must be 2'),
    ({'names': ['a', 'b'], 'indices': [0, 1.5]}, '"indices" must be 2'),
    ({'names': ['a', 'b'], 'indices': [0, 0]}, 'value twice'),
    ({'names': ['a', 'b'], 'indices': [0, 255]}, 'cannot be a class value'),
    ({'names': ['a'], 'indices': [0], 'ignore': 4}, '"ignore" must be a list'),
    ({'names': ['a'], 'colors': [[1, 2, 3]], 'ignore': [[1, 2, 3]]}, 'both a class and ignored'),
])
def test_bad_classes_json(tmp_path, spec, message):
    root = folder_tree(tmp_path, spec, [[[0]]])
    with pytest.raises(InputError) as e:
        Folder(root)
    assert str(e.value).startswith(os.path.join(root, 'classes.json') + ': ') and message in str(e.value)


def test_folder_without_classes_json(tmp_path):
    save(str(tmp_path / 'images' / 'a.png'), frame())
    save(str(tmp_path / 'masks' / 'a.png'), np.zeros((4, 6)))
    with pytest.raises(InputError, match=r'classes\.json not found'):
        get_dataset(None, str(tmp_path))


def test_kitti_road_on_the_sample():
    ds = get_dataset(None, SAMPLE)
    assert isinstance(ds, KittiRoad) and ds.num_classes == 2 and ds.colors == [kitti.BACKGROUND, kitti.ROAD]
    train, val = ds.samples('train'), ds.samples('val')
    pairs = kitti.list_training_pairs(os.path.join(SAMPLE, 'training'))
    assert sorted(train + val) == sorted(pairs)
    assert sorted(os.path.basename(s.image) for s in val) == ['um_000004.png', 'umm_000004.png', 'uu_000004.png']
    assert all(s.label is None for s in ds.samples('test')) and len(ds.samples('test')) == 6
    image, classes = ds.load(train[0])
    # the class map as the mask's colours say: (255, 0, 255) road, (255, 0, 0) background, any other don't care
    mask = np.asarray(Image.open(train[0].label).convert('RGB'))
    road, background = (mask == (255, 0, 255)).all(-1), (mask == (255, 0, 0)).all(-1)
    assert image.shape[:2] == classes.shape == mask.shape[:2] and road.any() and background.any()
    assert (classes[road] == 1).all() and (classes[background] == 0).all()
    assert (classes[~road & ~background] == IGNORE).all()
    assert [ds.category(s) for s in sorted(val)] == ['um', 'umm', 'uu']


def test_shapes():
    ds = get_dataset('shapes', None, size=(37, 53), counts=(5, 2, 1), seed=3)
    assert [len(ds.samples(s)) for s in SPLITS] == [5, 2, 1] and ds.num_classes == 5 == len(ds.colors)
    samples = ds.samples('train')
    image, classes = ds.load(samples[1])
    assert image.shape == (37, 53, 3) and image.dtype == np.uint8 and classes.dtype == np.uint8
    assert set(np.unique(classes)) <= set(range(5)) and (classes > 0).any()
    again = ds.load(samples[1])
    assert np.array_equal(again[0], image) and np.array_equal(again[1], classes)
    assert not np.array_equal(ds.load(samples[2])[1], classes)
    assert not np.array_equal(Shapes(size=(37, 53), seed=4).load(samples[1])[1], classes)
    assert np.array_equal(ds.load_label(samples[1]), classes)


def test_shapes_selection_split():
    """A fourth count lists a selection split of its own images (chooses the kept epoch, val is then only
    reported); without it there is none."""
    ds = get_dataset('shapes', None, size=(32, 32), counts=(3, 2, 1, 4), multi_label=True)
    assert [len(ds.samples(s)) for s in SPLITS + (SELECT,)] == [3, 2, 1, 4]
    val, select = (np.stack([ds.load(s)[0] for s in ds.samples(split)]) for split in ('val', 'select'))
    assert not any(np.array_equal(v, s) for v in val for s in select)
    assert np.array_equal(ds.load(ds.samples('select')[1])[0], select[1])
    assert get_dataset('shapes', None, size=(32, 32), counts=(3, 2, 1)).samples(SELECT) == []


def test_shapes_train_shapes_crowd_the_training_images_only():
    """train_shapes sets how many shapes a training image holds; the other splits keep 2-4, image for image."""
    options = dict(size=(48, 48), counts=(24, 4, 2, 2), multi_label=True)
    usual, crowded = Shapes(**options), Shapes(train_shapes=(5, 6), **options)
    for split in ('val', 'test', 'select'):
        for sample in usual.samples(split):
            assert all(np.array_equal(a, b) for a, b in zip(usual.load(sample), crowded.load(sample)))

    def covered(ds):  # labelled pixels (any label, counted once per label) per training image
        return np.mean([ds.load(s)[1].sum() for s in ds.samples('train')])
    assert covered(crowded) > 1.5 * covered(usual)
    same = Shapes(train_shapes=(2, 4), **options)  # the default, drawn from the same random stream
    assert all(np.array_equal(usual.load(s)[1], same.load(s)[1]) for s in usual.samples('train'))


def test_shapes_labels_fit_the_image():
    """A shape is one solid colour under noise: inside its label the image varies far less than on noise."""
    ds = Shapes(size=(96, 96), counts=(20, 0, 0))
    inside, outside = [], []
    for sample in ds.samples('train'):
        image, classes = ds.load(sample)
        img = image.astype(np.float64)
        for c in np.unique(classes[classes > 0]):
            region = img[classes == c]
            if len(region) > 50:
                inside.append(np.median(np.abs(region - np.median(region, axis=0))))
        outside.append(np.median(np.abs(img[classes == 0] - np.median(img[classes == 0], axis=0))))
    assert len(inside) >= 20 and np.median(inside) < 15 < np.min(outside)


def test_detect_and_names(tmp_path):
    assert detect(SAMPLE) == 'kitti_road'
    assert detect(str(tmp_path)) is None and detect(str(tmp_path / 'missing')) is None
    with pytest.raises(InputError, match='not a known dataset layout'):
        get_dataset(None, str(tmp_path))
    with pytest.raises(InputError, match="unknown dataset 'voc'"):
        get_dataset('voc', str(tmp_path))
    with pytest.raises(InputError, match='dataset folder not found'):
        get_dataset('camvid', str(tmp_path / 'missing'))
    with pytest.raises(InputError, match=r'val not found: a CamVid folder'):
        camvid_tree(tmp_path, []).samples('val')
    with pytest.raises(ValueError):
        Shapes().samples('training')


def test_overlay_and_colorize():
    colors = [(0, 0, 0), (200, 100, 0)]
    image = np.full((2, 2, 3), 100, np.uint8)
    classes = np.array([[0, 1], [IGNORE, 1]], np.uint8)
    out = palette.overlay(image, classes, colors, alpha=0.5)
    assert out[0, 0].tolist() == [50, 50, 50] and out[0, 1].tolist() == [150, 100, 50]
    assert out[1, 0].tolist() == [100, 100, 100]  # ignore: untouched
    assert palette.colorize(classes, colors)[1].tolist() == [[0, 0, 0], [200, 100, 0]]
    with pytest.raises(ValueError, match='class index 2 has no colour'):
        palette.colorize(np.array([[2]], np.uint8), colors)


def test_legend():
    colors = default_colors(3)
    assert len(set(colors)) == 3 and (0, 0, 0) not in colors
    small = np.asarray(palette.legend(['a', 'b'], colors[:2], swatch=10, pad=4))
    img = np.asarray(palette.legend(['a', 'b', 'a longer class name'], colors, swatch=10, pad=4))
    assert img.shape[0] > small.shape[0] and img.shape[1] > small.shape[1]
    for i, color in enumerate(colors):
        row = img[img.shape[0] * (2 * i + 1) // 6]  # the middle of row i
        assert (row == color).all(axis=-1).any()
    with pytest.raises(ValueError):
        palette.legend(['a'], colors)


def test_shapes_are_drawn_at_the_training_size():
    """load_for(sample, shape): shapes drawn at that size (as --image-shape would draw them), not resized."""
    big = get_dataset('shapes', None, size=(64, 64), counts=(2, 1, 1), multi_label=True)
    small = get_dataset('shapes', None, size=(32, 32), counts=(2, 1, 1), multi_label=True)
    (sample, _) = big.samples('train')
    image, labels = big.load_for(sample, (32, 32))
    assert image.shape == (32, 32, 3) and labels.shape == (32, 32, 5)
    assert all(np.array_equal(a, b) for a, b in zip((image, labels), small.load(sample)))
    assert all(np.array_equal(a, b) for a, b in zip(big.load(sample), big.load_for(sample, (64, 64))))


def test_shapes_training_set_is_drawn_in_processes_and_validation_samples_once():
    """A generated dataset's training set is drawn in processes, the same arrays as in threads; a validation
    sample (scored every epoch) is drawn once and kept read-only, a training one is not kept."""
    ds = Shapes(size=(32, 32), counts=(9, 2, 1), multi_label=True)
    cores = len(os.sched_getaffinity(0))  # the cores this process may use, as drawing_processes counts them
    assert drawing_processes(ds) == (cores if cores > 1 else 0)
    assert drawing_processes(ds, alone=False) == drawing_processes(get_dataset(None, SAMPLE)) == 0
    load = functools.partial(ds.load_for, image_shape=(16, 16))
    forked = TrainingSet(ds.samples('train'), load, (16, 16), processes=2, encode=lambda c: c)
    threaded = TrainingSet(ds.samples('train'), load, (16, 16), encode=lambda c: c)
    assert forked.images.shape == (9, 16, 16, 3) and forked.classes.shape == (9, 16, 16, 5)
    assert np.array_equal(forked.images, threaded.images) and np.array_equal(forked.classes, threaded.classes)
    (val, _), (test,), train = ds.samples('val'), ds.samples('test'), ds.samples('train')[0]
    assert ds.load(val)[0] is ds.load(val)[0] and not ds.load(val)[1].flags.writeable
    for once in (train, test):  # drawn once into the training set, or painted once at the end
        assert ds.load(once)[0] is not ds.load(once)[0] and ds.load(once)[0].flags.writeable
    assert pickle.loads(pickle.dumps(ds))._kept == {}  # a drawing process gets no kept samples

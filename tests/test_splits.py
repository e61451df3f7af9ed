"""The KITTI split files (val.txt reports, select.txt picks the checkpoint), the splits they make, and the
checksums that refuse --resume / --init-from across a changed split."""
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SAMPLE
from roadseg.data import splits
from roadseg.data.datasets import kitti_road as kitti
from roadseg.data.datasets import SELECT, KittiRoad, Shapes
from roadseg.system.files import InputError

COUNTS = {'um': 95, 'umm': 96, 'uu': 98}  # KITTI Road's training images per category, numbered from 000000
NAMES = ['{}_{:06d}.png'.format(cat, i) for cat, n in sorted(COUNTS.items()) for i in range(n)]
VAL_SHA256 = 'c7580e226fc52dcecfe13b726c1783b7eac39a16870189b3aac72a471dbdb70d'  # the report split, fixed
REAL = [os.path.join(ROOT, 'data', 'data_road', 'training', 'image_2'),
        os.path.join(ROOT, '..', 'shared', 'kitti_road', 'training', 'image_2')]


def test_val_split_is_fixed_and_made_by_make_split():
    assert splits.sha256(kitti.SPLIT_FILE) == VAL_SHA256
    assert set(kitti.make_split(NAMES)) == kitti.read_split()


def test_select_split():
    val, select = kitti.read_split(), kitti.read_split(kitti.SELECT_FILE)
    assert select <= set(NAMES) and not select & val
    for cat, n in COUNTS.items():
        left = [name for name in NAMES if kitti.category(name) == cat and name not in val]
        chosen = [name for name in left if name in select]
        assert chosen and abs(len(chosen) - len(left) / 10.0) <= 1, (cat, len(chosen), len(left))
    assert not {'{}_00000{}.png'.format(cat, i) for cat in COUNTS for i in (0, 1)} & select  # the sample's train
    with open(kitti.SELECT_FILE, 'rb') as f:
        assert f.read() == kitti.select_split_text(NAMES, val).encode('ascii')
    assert kitti.select_split_text(NAMES[::-1], val) == kitti.select_split_text(NAMES, val)


def test_names_are_kitti_training_images():
    folder = next((path for path in REAL if os.path.isdir(path)), None)
    if folder is None:
        pytest.skip('no KITTI training images: neither data/data_road nor ../shared/kitti_road')
    assert sorted(os.path.splitext(name)[0] + '.png' for name in os.listdir(folder)) == NAMES


def kitti_layout(root, names):
    """training/image_2 + gt_image_2 with a 2x3 image and a road/background mask per name; returns root."""
    for sub in ('image_2', 'gt_image_2'):
        os.makedirs(os.path.join(str(root), 'training', sub))
    mask = np.zeros((2, 3, 3), np.uint8)
    mask[...] = kitti.BACKGROUND
    mask[1] = kitti.ROAD
    for name in names:
        Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(os.path.join(str(root), 'training', 'image_2', name))
        Image.fromarray(mask).save(os.path.join(str(root), 'training', 'gt_image_2', kitti.mask_name(name) + '.png'))
    return str(root)


def stems(samples):
    return [s.stem for s in samples]


def test_kitti_train_select_val_partition(tmp_path):
    names = [n for n in NAMES if int(n[-10:-4]) < 12]
    ds = KittiRoad(kitti_layout(tmp_path, names))
    train, select, val = (stems(ds.samples(split)) for split in ('train', SELECT, 'val'))
    assert select == ['um_000006', 'umm_000006', 'uu_000006']
    assert val == ['{}_{:06d}'.format(cat, i) for cat in sorted(COUNTS) for i in (4, 9)]
    assert len(train) == len(set(train)) == 36 - 3 - 6
    assert sorted(train + select + val) == sorted(os.path.splitext(n)[0] for n in names)


def test_sample_has_no_select_images():
    ds = KittiRoad(SAMPLE)
    assert stems(ds.samples('train')) == ['{}_00000{}'.format(cat, i) for cat in sorted(COUNTS) for i in (0, 1)]
    assert stems(ds.samples('val')) == ['{}_000004'.format(cat) for cat in sorted(COUNTS)]
    assert ds.samples(SELECT) == []


def test_overlapping_or_missing_split_files(tmp_path):
    data = kitti_layout(tmp_path / 'd', ['um_000000.png', 'um_000001.png'])
    val, select = str(tmp_path / 'val.txt'), str(tmp_path / 'select.txt')
    with open(val, 'w') as f:
        f.write('# val\num_000001.png\n')
    with open(select, 'w') as f:
        f.write('um_000001.png\n')
    with pytest.raises(InputError, match=re.escape(select) + r': um_000001\.png is also in the validation split'):
        KittiRoad(data, val, select).samples('train')
    os.remove(select)
    with pytest.raises(InputError, match='split file ' + re.escape(select) + ': No such file'):
        KittiRoad(data, val, select).samples('train')


def test_split_files_and_checksums(tmp_path):
    ds = KittiRoad(SAMPLE)
    assert splits.split_files(ds) == {'splits/val.txt': kitti.SPLIT_FILE, 'splits/select.txt': kitti.SELECT_FILE}
    assert splits.checksums(ds)['splits/val.txt'] == VAL_SHA256
    assert splits.split_files(Shapes()) == {} and splits.checksums(Shapes()) == {} and Shapes().samples(SELECT) == []
    val, select = (shutil.copy(path, str(tmp_path)) for path in (kitti.SPLIT_FILE, kitti.SELECT_FILE))
    ds = KittiRoad(SAMPLE, val, select)
    before = splits.checksums(ds)
    assert sorted(before) == sorted([os.path.abspath(val), os.path.abspath(select)])
    with open(select, 'a') as f:
        f.write('uu_000001.png\n')
    after = splits.checksums(ds)
    assert after[os.path.abspath(val)] == before[os.path.abspath(val)]
    assert after[os.path.abspath(select)] != before[os.path.abspath(select)]


def test_check_unchanged(tmp_path):
    config = str(tmp_path / 'run' / 'config.json')
    recorded = {'splits/select.txt': 'b' * 64, 'splits/val.txt': VAL_SHA256}
    splits.check_unchanged(recorded, dict(recorded), config, '--resume')
    splits.check_unchanged(None, {'splits/val.txt': 'c' * 64}, config, '--resume')  # a run older than checksums
    changed = dict(recorded, **{'splits/val.txt': 'c' * 64})
    with pytest.raises(InputError) as e:
        splits.check_unchanged(recorded, changed, config, '--init-from')
    run = tmp_path / 'run'
    assert str(e.value).startswith('--init-from {}: splits/val.txt changed since {} was trained (sha256 '
                                   'c7580e226fc5 recorded in {}, now cccccccccccc)'.format(run, run, config))
    with pytest.raises(InputError, match=r'--resume .*splits/select\.txt changed .*now not a split file of this data'):
        splits.check_unchanged(recorded, {'splits/val.txt': VAL_SHA256}, config, '--resume')
    with pytest.raises(InputError, match=r'splits/select\.txt is new since .*run was trained \(not in .*config\.json'):
        splits.check_unchanged({'splits/val.txt': VAL_SHA256}, recorded, config, '--resume')

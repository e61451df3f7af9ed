"""KITTI Road (data_road): pairing images and road masks, decoding the mask colours, the fixed validation and
selection splits (splits/val.txt, splits/select.txt), the dataset class."""
import glob
import os

import numpy as np

from ...system import bundled
from ...system.files import InputError
from ..images import image_files, read_image
from ..splits import every_nth
from .base import IGNORE, SELECT, SPLITS, Dataset, Sample, load_sample, pair_masks, unlabelled

BACKGROUND = (255, 0, 0)
ROAD = (255, 0, 255)
CATEGORIES = ('um', 'umm', 'uu')
SPLITS_DIR = bundled.path('splits')
SPLIT_FILE = os.path.join(SPLITS_DIR, 'val.txt')       # the report split
SELECT_FILE = os.path.join(SPLITS_DIR, 'select.txt')   # the checkpoint-selection split
SELECT_HEADER = ('# KITTI Road selection split (picks the kept checkpoint; val.txt, the report split, never does):\n'
                 '# of the training images not in val.txt, within um/umm/uu, sorted, every 10th (index 5, 15, ...).\n'
                 '# Made by roadseg.kitti.select_split_text; training never sees these.\n')


def category(path):
    """'um', 'umm' or 'uu' from a KITTI file name such as umm_000012.png."""
    return os.path.basename(path).split('_')[0]


def mask_name(image_name):
    """um_000000.png -> um_road_000000.png (the KITTI naming of road masks)."""
    stem, ext = os.path.splitext(image_name)
    prefix, _, rest = stem.partition('_')
    return '{}_road_{}'.format(prefix, rest)


def list_training_pairs(training_folder):
    """[Sample(image, road mask)] of training/image_2 and training/gt_image_2, sorted by image name; lane
    masks (*_lane_*) are left out as KITTI ships them beside the road masks. InputError for no images, an
    image without a mask or a road mask without an image."""
    images = image_files(os.path.join(training_folder, 'image_2'))
    if not images:
        raise InputError('no training images in {}'.format(os.path.join(training_folder, 'image_2')))
    mask_dir = os.path.join(training_folder, 'gt_image_2')
    masks = [p for p in image_files(mask_dir) if '_lane_' not in os.path.basename(p)]
    return pair_masks(images, masks, lambda image: os.path.join(mask_dir, mask_name(os.path.basename(image))),
                      shown_in=mask_dir)


def mask_to_classes(mask_rgb, path='mask'):
    """(H, W, 3) KITTI mask -> uint8 (H, W): 0 background, 1 road, IGNORE for any other colour."""
    classes = np.full(mask_rgb.shape[:2], IGNORE, np.uint8)
    classes[np.all(mask_rgb == BACKGROUND, axis=-1)] = 0
    classes[np.all(mask_rgb == ROAD, axis=-1)] = 1
    if not (classes != IGNORE).any():
        raise InputError('{}: no pixel is road (255,0,255) or background (255,0,0); is it a KITTI road mask?'
                         .format(path))
    return classes


def load_pair(image_path, mask_path):
    """(uint8 RGB image, uint8 class map) at the original size; InputError if sizes differ."""
    return load_sample(Sample(image_path, mask_path), load_mask)


def load_mask(sample):
    """The class map of a sample's KITTI road mask."""
    return mask_to_classes(read_image(sample.label), sample.label)


def read_split(path=SPLIT_FILE):
    """The set of image file names a split file lists (lines starting with # are comments)."""
    try:
        with open(path) as f:
            return {line.strip() for line in f if line.strip() and not line.startswith('#')}
    except (IOError, OSError) as e:
        raise InputError('split file {}: {}'.format(path, e.strerror or e))


def read_splits(val_file=SPLIT_FILE, select_file=SELECT_FILE):
    """(val names, select names) from the two split files; a name in both is an InputError."""
    val, select = read_split(val_file), read_split(select_file)
    both = sorted(val & select)
    if both:
        raise InputError('{}: {} is also in the validation split {}; the splits must not overlap'.format(
            select_file, both[0], val_file))
    return val, select


def make_split(names):
    """The fixed validation split: within each category, sorted, every 5th name (index 4, 9, ...)."""
    return every_nth(names, 4, 5, category)


def make_select_split(names, val_names):
    """The checkpoint-selection split: of the names not in val_names, within each category, sorted, every
    10th (index 5, 15, ...): round(n / 10) of a category's n names (a half rounds down), spread over its
    sorted order, never its first five (so the bundled sample's 000000/000001 stay training images)."""
    return every_nth([n for n in names if n not in val_names], 5, 10, category)


def select_split_text(names, val_names):
    """The contents of splits/select.txt for all training image names (um_000000.png, ...) and val's."""
    return SELECT_HEADER + ''.join(name + '\n' for name in make_select_split(names, val_names))


def list_test_images(data_dir):
    """Sorted testing images of data_road (testing/image_2)."""
    folder = os.path.join(data_dir, 'testing', 'image_2')
    images = image_files(folder)
    if not images:
        raise InputError('no testing images in {}'.format(folder))
    return images


def count_kitti(data_dir):
    """(training images, road masks, testing images) counts under data_dir (data_road layout)."""
    return (len(glob.glob(os.path.join(data_dir, 'training', 'image_2', '*.png'))),
            len(glob.glob(os.path.join(data_dir, 'training', 'gt_image_2', '*_road_*.png'))),
            len(glob.glob(os.path.join(data_dir, 'testing', 'image_2', '*.png'))))


class KittiRoad(Dataset):
    """training/image_2 + training/gt_image_2 (um_road_*.png): val = the images in splits/val.txt (the report
    split), select = those in splits/select.txt (to pick the kept checkpoint), train = the rest; test =
    testing/image_2 ([] without it). Mask colours other than the two classes' are ignored."""
    name = 'kitti_road'
    class_names = ['background', 'road']
    colors = [BACKGROUND, ROAD]
    layout = (os.path.join('training', 'image_2'), os.path.join('training', 'gt_image_2'))
    splits = SPLITS + (SELECT,)

    def __init__(self, data_dir, split_file=SPLIT_FILE, select_file=SELECT_FILE):
        super(KittiRoad, self).__init__(data_dir)
        self.split_file = split_file
        self.select_file = select_file

    @property
    def split_paths(self):
        return (self.split_file, self.select_file)

    def list_split(self, split):
        if split == 'test':
            test_dir = os.path.join(self.data_dir, 'testing', 'image_2')
            return unlabelled(image_files(test_dir)) if os.path.isdir(test_dir) else []
        val, select = read_splits(self.split_file, self.select_file)
        parts = {'train': [], 'val': [], SELECT: []}
        for sample in list_training_pairs(os.path.join(self.data_dir, 'training')):
            name = os.path.basename(sample.image)
            parts['val' if name in val else SELECT if name in select else 'train'].append(sample)
        return parts[split]

    load_label = staticmethod(load_mask)

    def category(self, sample):
        """'um', 'umm' or 'uu' from the image file name."""
        return category(sample.image)

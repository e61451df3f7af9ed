"""KITTI Road data: listing and pairing files, decoding masks, the fixed validation and selection splits."""
import glob
import os

import numpy as np
from PIL import Image

from .batches import IGNORE
from .files import InputError

BACKGROUND = (255, 0, 0)
ROAD = (255, 0, 255)
IMAGE_EXTS = ('.png', '.jpg', '.jpeg')
CATEGORIES = ('um', 'umm', 'uu')
SPLITS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'splits')
SPLIT_FILE = os.path.join(SPLITS_DIR, 'val.txt')       # the report split
SELECT_FILE = os.path.join(SPLITS_DIR, 'select.txt')   # the checkpoint-selection split
SELECT_HEADER = ('# KITTI Road selection split (picks the kept checkpoint; val.txt, the report split, never does):\n'
                 '# of the training images not in val.txt, within um/umm/uu, sorted, every 10th (index 5, 15, ...).\n'
                 '# Made by roadseg.kitti.select_split_text; training never sees these.\n')


def image_files(folder):
    """Sorted image paths in folder; other files (.DS_Store, Thumbs.db, ...) are skipped with a note."""
    if not os.path.isdir(folder):
        raise InputError('folder not found: {}'.format(folder))
    images, skipped = [], []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not name.startswith('.') and name.lower().endswith(IMAGE_EXTS):
            images.append(path)
        else:
            skipped.append(name)
    if skipped:
        print('note: skipping {} non-image entries in {}: {}'.format(
            len(skipped), folder, ', '.join(skipped[:3]) + (' ...' if len(skipped) > 3 else '')))
    return images


def category(path):
    """'um', 'umm' or 'uu' from a KITTI file name such as umm_000012.png."""
    return os.path.basename(path).split('_')[0]


def mask_name(image_name):
    """um_000000.png -> um_road_000000.png (the KITTI naming of road masks)."""
    stem, ext = os.path.splitext(image_name)
    prefix, _, rest = stem.partition('_')
    return '{}_road_{}'.format(prefix, rest)


def list_training_pairs(training_folder):
    """[(image_path, mask_path)] for training/image_2 and training/gt_image_2, sorted by image name.

    An image without a mask or a road mask without an image is an InputError naming the file;
    lane masks (*_lane_*) are ignored as KITTI ships them beside the road masks.
    """
    images = image_files(os.path.join(training_folder, 'image_2'))
    if not images:
        raise InputError('no training images in {}'.format(os.path.join(training_folder, 'image_2')))
    mask_dir = os.path.join(training_folder, 'gt_image_2')
    masks = {os.path.splitext(os.path.basename(p))[0]: p
             for p in image_files(mask_dir) if '_lane_' not in os.path.basename(p)}
    pairs = []
    for image in images:
        mask = masks.pop(mask_name(os.path.basename(image)), None)
        if mask is None:
            raise InputError('image {} has no mask {}.png in {}'.format(
                image, mask_name(os.path.basename(image)), mask_dir))
        pairs.append((image, mask))
    if masks:
        raise InputError('mask {} has no matching image in {}'.format(
            sorted(masks.values())[0], os.path.join(training_folder, 'image_2')))
    return pairs


def read_rgb(path):
    """uint8 (H, W, 3) RGB from any PNG/JPEG: RGBA drops alpha, grey is replicated, 16-bit is scaled."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
                arr = np.asarray(img, dtype=np.uint32)
                img = Image.fromarray((arr >> 8 if arr.max() > 255 else arr).astype(np.uint8))
            return np.asarray(img.convert('RGB'))
    except FileNotFoundError:
        raise InputError('file not found: {}'.format(path))
    except (OSError, ValueError, SyntaxError) as e:
        size = os.path.getsize(path) if os.path.exists(path) else 0
        why = 'empty file (0 bytes)' if size == 0 else 'not a readable image ({})'.format(e)
        raise InputError('{}: {}'.format(path, why))


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
    image = read_rgb(image_path)
    classes = mask_to_classes(read_rgb(mask_path), mask_path)
    if image.shape[:2] != classes.shape:
        raise InputError('image {} is {}x{} but its mask {} is {}x{}'.format(
            image_path, image.shape[1], image.shape[0], mask_path, classes.shape[1], classes.shape[0]))
    return image, classes


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


def split_pairs(pairs, val_names, select_names):
    """(train, val, select) lists: val and select hold the pairs whose image file name is in val_names and
    select_names; train the rest."""
    parts = {'train': [], 'val': [], 'select': []}
    for pair in pairs:
        name = os.path.basename(pair[0])
        parts['val' if name in val_names else 'select' if name in select_names else 'train'].append(pair)
    return parts['train'], parts['val'], parts['select']


def _every_nth(names, start, step):
    """Sorted names taken within each category, in sorted order, from index start every step-th."""
    taken = []
    for cat in CATEGORIES:
        taken += sorted(n for n in names if category(n) == cat)[start::step]
    return sorted(taken)


def make_split(names):
    """The fixed validation split: within each category, sorted, every 5th name (index 4, 9, ...)."""
    return _every_nth(names, 4, 5)


def make_select_split(names, val_names):
    """The checkpoint-selection split: of the names not in val_names, within each category, sorted, every
    10th (index 5, 15, ...): round(n / 10) of a category's n names (a half rounds down), spread over its
    sorted order, never its first five (so the bundled sample's 000000/000001 stay training images)."""
    return _every_nth([n for n in names if n not in val_names], 5, 10)


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

"""A user's own dataset: images/ + masks/ + classes.json (mask colours or mask values per class); with
"multi_label": true in classes.json, the multi-label format of folder_labels.py."""
import json
import os

import numpy as np

from ..images import image_files, read_image
from ..splits import every_nth
from ...system.files import InputError
from .base import IGNORE, Dataset, default_colors, pair_masks, unlabelled, value_table
from .folder_labels import FolderLabels

CLASSES_JSON = 'classes.json'


def _rgb(value):
    return isinstance(value, list) and len(value) == 3 and all(_byte(v) for v in value)


def _byte(value):
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255


def read_json(path):
    """classes.json's contents; InputError naming it when it is missing or not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError('{} not found: a folder dataset needs images/, masks/ and {}'.format(path, CLASSES_JSON))
    except (OSError, ValueError) as e:
        raise InputError('{}: not valid JSON ({})'.format(path, e))


def read_classes(path):
    """(names, colours or None, values or None, ignore list) from classes.json; one InputError naming it.

    {"names": [...], "colors": [[r, g, b], ...], "ignore": [[r, g, b], ...]}   RGB masks, or
    {"names": [...], "indices": [v, ...], "ignore": [v, ...]}                   8-bit value masks;
    "ignore" is optional (255 is always ignored in value masks).
    """
    spec = read_json(path)

    def need(ok, what):
        if not ok:
            raise InputError('{}: {}'.format(path, what))

    need(isinstance(spec, dict), 'expected an object with "names" and "colors" or "indices"')
    names = spec.get('names')
    need(isinstance(names, list) and names and all(isinstance(n, str) and n for n in names),
         '"names" must be a non-empty list of class names')
    need(len(set(names)) == len(names), '"names" has a name twice')
    need(len(names) <= IGNORE, 'at most {} classes'.format(IGNORE))
    need(('colors' in spec) != ('indices' in spec), 'give exactly one of "colors" (mask RGB colours, one per '
                                                    'class) or "indices" (mask values, one per class)')
    key = 'colors' if 'colors' in spec else 'indices'
    valid = _rgb if key == 'colors' else _byte
    what = '[r, g, b] colours (0..255)' if key == 'colors' else 'mask values (0..255)'
    values, ignore = spec[key], spec.get('ignore', [])
    need(isinstance(values, list) and len(values) == len(names) and all(valid(v) for v in values),
         '"{}" must be {} {}, one per name'.format(key, len(names), what))
    need(isinstance(ignore, list) and all(valid(v) for v in ignore), '"ignore" must be a list of {}'.format(what))
    keys = [tuple(v) if key == 'colors' else v for v in values]
    need(len(set(keys)) == len(keys), '"{}" has a value twice'.format(key))
    need(key == 'colors' or IGNORE not in keys, '255 marks ignored pixels; it cannot be a class value')
    need(not set(keys) & {tuple(v) if key == 'colors' else v for v in ignore},
         'a value is both a class and ignored')
    return names, (keys if key == 'colors' else None), (keys if key == 'indices' else None), ignore


class Folder(Dataset):
    """images/ + masks/ (mask = image stem + .png) + classes.json. Validation: images/val/ + masks/val/
    when present, else every 5th pair (sorted, index 4, 9, ...). Test: images/test/ (+ masks/test/), or []."""
    name = 'folder'
    layout = ('images', 'masks')
    subsets = True

    def __new__(cls, data_dir):
        """A FolderLabels instead when classes.json says "multi_label": true."""
        path = os.path.join(data_dir, CLASSES_JSON)
        spec = read_json(path) if os.path.isdir(data_dir) else None
        if isinstance(spec, dict) and spec.get('multi_label') is True:
            return FolderLabels(data_dir, spec, path)
        return super(Folder, cls).__new__(cls)

    def __init__(self, data_dir):
        super(Folder, self).__init__(data_dir)
        names, colors, values, ignore = read_classes(os.path.join(data_dir, CLASSES_JSON))
        self.class_names = names
        self.colors = colors or default_colors(len(names))
        if values is None:
            keys = np.array([_key(c) for c in colors + [tuple(v) for v in ignore]], np.int64)
            self._order = np.argsort(keys)
            self._keys = keys[self._order]
            self._ids = np.array(list(range(len(colors))) + [IGNORE] * len(ignore), np.uint8)[self._order]
        else:
            self.table = value_table(values, ignore)

    def list_split(self, split):
        images, masks = os.path.join(self.data_dir, 'images'), os.path.join(self.data_dir, 'masks')
        if split == 'test':
            return self._pairs(os.path.join(images, 'test'), os.path.join(masks, 'test'), optional=True)
        if os.path.isdir(os.path.join(images, 'val')):
            return self._pairs(os.path.join(images, split) if split == 'val' else images,
                               os.path.join(masks, split) if split == 'val' else masks)
        pairs = self._pairs(images, masks)
        val = every_nth(pairs, 4, 5)
        return val if split == 'val' else [p for p in pairs if p not in set(val)]

    @staticmethod
    def _pairs(image_dir, mask_dir, optional=False):
        if optional and not os.path.isdir(image_dir):
            return []
        images = image_files(image_dir)
        if optional and not os.path.isdir(mask_dir):
            return unlabelled(images)
        return pair_masks(images, image_files(mask_dir),
                          lambda image: os.path.join(mask_dir, os.path.splitext(os.path.basename(image))[0]))

    def load_label(self, sample):
        if self.table is not None:
            return super(Folder, self).load_label(sample)
        rgb = read_image(sample.label)
        keys = _key(np.moveaxis(rgb.astype(np.int64), -1, 0))
        pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        bad = self._keys[pos] != keys
        if bad.any():
            ys, xs = np.nonzero(bad)
            raise InputError('{}: mask colour {} (at x={}, y={}) is not a class colour or an ignored one in {}'
                             .format(sample.label, tuple(int(c) for c in rgb[ys[0], xs[0]]), xs[0], ys[0],
                                     os.path.join(self.data_dir, CLASSES_JSON)))
        return self._ids[pos]


def _key(rgb):
    """r * 65536 + g * 256 + b, for a colour tuple or a (3, H, W) int64 array."""
    return (rgb[0] << 16) + (rgb[1] << 8) + rgb[2]

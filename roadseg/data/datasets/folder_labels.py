"""A user's own multi-label dataset: images/ + one mask folder per label, masks/<label>/<stem>.png, and
classes.json with "multi_label": true.

    {"multi_label": true, "names": ["car", "person"],   the labels (folder names under masks/)
     "colors": [[r, g, b], ...],                         optional: how each label is drawn
     "values": [v, ...],                                 optional: mask values meaning "member" (default: any
                                                         non-zero value not in "ignore")
     "ignore": [v, ...],                                 optional: mask values meaning "don't care"
     "missing": "negative"}                              optional: a label's missing mask means "not a member"
                                                         (default: an error naming the file)

Validation: images/val/ with masks/<label>/val/ when present, else every 5th image (as the folder format);
test: images/test/ (+ masks/<label>/test/), or []. A sample's label is uint8 (H, W, C): 1 member, 0 not,
IGNORE don't care, one channel per label in the order of "names".
"""
import os

import numpy as np

from ...system.files import InputError
from ..images import image_files, read_image
from ..splits import every_nth
from .base import IGNORE, Dataset, Sample, decode_values, default_colors, read_value_mask


def read_label_spec(path, spec):
    """(names, colours, (256,) int16 value table: 0 -> 0, member -> 1, ignored -> IGNORE, other -1, missing
    negative) from classes.json's parsed spec; one InputError naming path."""
    def need(ok, what):
        if not ok:
            raise InputError('{}: {}'.format(path, what))

    def byte_list(key):
        values = spec.get(key, [])
        valid = isinstance(values, list) and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255
                                                 for v in values)
        need(valid, '"{}" must be a list of mask values (0..255)'.format(key))
        return values

    names = spec.get('names')
    need(isinstance(names, list) and names and all(isinstance(n, str) and n for n in names),
         '"names" must be a non-empty list of label names')
    need(len(set(names)) == len(names), '"names" has a name twice')
    need(all(n not in ('.', '..') and '/' not in n and '\\' not in n for n in names),
         'label names are folder names under masks/: no "/", "\\", "." or ".."')
    colors = spec.get('colors', default_colors(len(names)))
    need(isinstance(colors, list) and len(colors) == len(names) and all(
        isinstance(c, (list, tuple)) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)
        for c in colors), '"colors" must be {} [r, g, b] colours (0..255), one per name'.format(len(names)))
    need(spec.get('missing', 'error') in ('error', 'negative'), '"missing" must be "error" or "negative"')
    ignore, members = byte_list('ignore'), byte_list('values')
    need(0 not in ignore + members, '0 means "not a member"; it cannot be listed in "values" or "ignore"')
    need(not set(ignore) & set(members), 'a value is both a member value and ignored')
    table = np.full(256, -1, np.int16)
    table[0] = 0
    table[members or list(range(1, 256))] = 1
    table[ignore] = IGNORE
    return names, [tuple(c) for c in colors], table, spec.get('missing') == 'negative'


class FolderLabels(Dataset):
    """The multi-label folder format (module docstring); Folder gives way to it when classes.json says
    "multi_label": true."""
    name = 'folder'
    multi_label = True

    def __init__(self, data_dir, spec, spec_path):
        super(FolderLabels, self).__init__(data_dir)
        self.spec_path = spec_path
        self.class_names, self.colors, self.table, self.missing_negative = read_label_spec(spec_path, spec)
        masks = os.path.join(data_dir, 'masks')
        stray = sorted(set(os.listdir(masks)) - set(self.class_names)) if os.path.isdir(masks) else []
        stray = [n for n in stray if os.path.isdir(os.path.join(masks, n))]
        if stray:
            raise InputError('{}: masks of a label not in {} ({})'.format(
                os.path.join(masks, stray[0]), spec_path, ', '.join(self.class_names)))

    def list_split(self, split):
        images = os.path.join(self.data_dir, 'images')
        if split == 'test':
            folder = os.path.join(images, 'test')
            return self._pairs(folder, 'test', optional=True) if os.path.isdir(folder) else []
        if os.path.isdir(os.path.join(images, 'val')):
            return self._pairs(os.path.join(images, 'val'), 'val') if split == 'val' else self._pairs(images, '')
        pairs = self._pairs(images, '')
        val = every_nth(pairs, 4, 5)
        return val if split == 'val' else [p for p in pairs if p not in set(val)]

    def _pairs(self, image_dir, sub, optional=False):
        """Samples of image_dir, each label the tuple of its per-label mask paths (None: missing, negative)."""
        paths = image_files(image_dir)
        stems = {os.path.splitext(os.path.basename(p))[0] for p in paths}
        mask_dirs = [os.path.join(self.data_dir, 'masks', name, sub) for name in self.class_names]
        if optional and not any(os.path.isdir(d) for d in mask_dirs):
            return [Sample(p, None) for p in paths]
        for folder in mask_dirs:
            for mask in image_files(folder) if os.path.isdir(folder) else []:
                if os.path.splitext(os.path.basename(mask))[0] not in stems:
                    raise InputError('mask {} has no matching image in {}'.format(mask, image_dir))
        return [Sample(p, tuple(self._mask(folder, p) for folder in mask_dirs)) for p in paths]

    def _mask(self, folder, image):
        path = os.path.join(folder, os.path.splitext(os.path.basename(image))[0] + '.png')
        if os.path.isfile(path):
            return path
        if self.missing_negative:
            return None
        raise InputError('image {} has no mask {} (or set "missing": "negative" in {})'.format(
            image, path, self.spec_path))

    def load(self, sample):
        """(uint8 RGB (H, W, 3), uint8 (H, W, C) labels or None); InputError naming a mask of another size."""
        image = read_image(sample.image)
        if sample.label is None:
            return image, None
        return image, self._labels(sample, image.shape[:2])

    def load_label(self, sample):
        return self.load(sample)[1]

    def _labels(self, sample, size):
        channels = []
        for path in sample.label:
            if path is None:
                channels.append(np.zeros(size, np.uint8))
                continue
            values = decode_values(read_value_mask(path), self.table, path)
            if values.shape != tuple(size):
                raise InputError('mask {} is {}x{} but its image {} is {}x{}'.format(
                    path, values.shape[1], values.shape[0], sample.image, size[1], size[0]))
            channels.append(values)
        return np.stack(channels, axis=-1)

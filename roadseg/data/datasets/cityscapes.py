"""Cityscapes fine annotations: labelIds mapped to the 19 standard train IDs, the rest ignored."""
import glob
import os

import numpy as np

from ...system.files import InputError
from .base import IGNORE, Dataset, pair_masks, unlabelled

# (name, labelId, trainId, colour) from cityscapesScripts' cityscapesscripts/helpers/labels.py
# (version 2.3.0; https://github.com/mcordts/cityscapesScripts), trainId 255 = ignored. Copyright (c) 2022
# The Cityscapes Authors, MIT License: permission is hereby granted, free of charge, to any person
# obtaining a copy of this software and associated documentation files (the "Software"), to deal in the
# Software without restriction, including without limitation the rights to use, copy, modify, merge,
# publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
# Software is furnished to do so, subject to the following conditions: The above copyright notice and this
# permission notice shall be included in all copies or substantial portions of the Software. THE SOFTWARE
# IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND. Carried here because the package requires `typing`,
# pyquaternion, coloredlogs, requests and appdirs (`typing` 3.7.4.3 is a Python 3.4 backport) for this
# table. Its 'license plate' row (labelId -1) never appears in *_labelIds.png and is left out.
LABELS = [
    ('unlabeled', 0, 255, (0, 0, 0)),
    ('ego vehicle', 1, 255, (0, 0, 0)),
    ('rectification border', 2, 255, (0, 0, 0)),
    ('out of roi', 3, 255, (0, 0, 0)),
    ('static', 4, 255, (0, 0, 0)),
    ('dynamic', 5, 255, (111, 74, 0)),
    ('ground', 6, 255, (81, 0, 81)),
    ('road', 7, 0, (128, 64, 128)),
    ('sidewalk', 8, 1, (244, 35, 232)),
    ('parking', 9, 255, (250, 170, 160)),
    ('rail track', 10, 255, (230, 150, 140)),
    ('building', 11, 2, (70, 70, 70)),
    ('wall', 12, 3, (102, 102, 156)),
    ('fence', 13, 4, (190, 153, 153)),
    ('guard rail', 14, 255, (180, 165, 180)),
    ('bridge', 15, 255, (150, 100, 100)),
    ('tunnel', 16, 255, (150, 120, 90)),
    ('pole', 17, 5, (153, 153, 153)),
    ('polegroup', 18, 255, (153, 153, 153)),
    ('traffic light', 19, 6, (250, 170, 30)),
    ('traffic sign', 20, 7, (220, 220, 0)),
    ('vegetation', 21, 8, (107, 142, 35)),
    ('terrain', 22, 9, (152, 251, 152)),
    ('sky', 23, 10, (70, 130, 180)),
    ('person', 24, 11, (220, 20, 60)),
    ('rider', 25, 12, (255, 0, 0)),
    ('car', 26, 13, (0, 0, 142)),
    ('truck', 27, 14, (0, 0, 70)),
    ('bus', 28, 15, (0, 60, 100)),
    ('caravan', 29, 255, (0, 0, 90)),
    ('trailer', 30, 255, (0, 0, 110)),
    ('train', 31, 16, (0, 80, 100)),
    ('motorcycle', 32, 17, (0, 0, 230)),
    ('bicycle', 33, 18, (119, 11, 32)),
]
TRAIN_LABELS = sorted((train_id, name, color) for name, _, train_id, color in LABELS if train_id != IGNORE)
IMAGE_SUFFIX = '_leftImg8bit'
LABEL_SUFFIX = '_gtFine_labelIds'


def _table():
    table = np.full(256, -1, np.int16)
    table[IGNORE] = IGNORE
    for _, label_id, train_id, _ in LABELS:
        table[label_id] = train_id
    return table


class Cityscapes(Dataset):
    """leftImg8bit/<split>/<city>/*_leftImg8bit.png with gtFine/<split>/<city>/*_gtFine_labelIds.png.
    Test labels are placeholders in Cityscapes: test samples are unlabelled ([] without leftImg8bit/test)."""
    name = 'cityscapes'
    class_names = [name for _, name, _ in TRAIN_LABELS]
    colors = [color for _, _, color in TRAIN_LABELS]
    layout = ('leftImg8bit', 'gtFine')
    subsets = True
    table = _table()

    def list_split(self, split):
        image_root = os.path.join(self.data_dir, 'leftImg8bit', split)
        label_root = os.path.join(self.data_dir, 'gtFine', split)
        if not os.path.isdir(image_root):
            if split == 'test':
                return []
            raise InputError('{} not found: Cityscapes has leftImg8bit/{{train,val}}/<city>/'.format(image_root))
        images = glob.glob(os.path.join(image_root, '*', '*' + IMAGE_SUFFIX + '.png'))
        if not images:
            raise InputError('no *{}.png images in the city folders of {}'.format(IMAGE_SUFFIX, image_root))
        if split == 'test':
            return unlabelled(images)
        return pair_masks(images, glob.glob(os.path.join(label_root, '*', '*' + LABEL_SUFFIX + '.png')),
                          self._label_of(label_root))

    @staticmethod
    def _label_of(label_root):
        def label_of(image):
            city = os.path.basename(os.path.dirname(image))
            stem = os.path.basename(image)[:-len(IMAGE_SUFFIX + '.png')]
            return os.path.join(label_root, city, stem + LABEL_SUFFIX)
        return label_of

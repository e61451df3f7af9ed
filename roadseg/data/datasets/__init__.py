"""Datasets behind one interface (see base.py): kitti_road, camvid, cityscapes, folder, shapes; some classes of
one of them (subset.py, --classes)."""
import os
from collections import OrderedDict

from ...system.files import InputError
from .base import IGNORE, SELECT, SPLITS, Dataset, Sample, median_frequency_weights, positive_weights
from .camvid import CamVid
from .cityscapes import Cityscapes
from .folder import Folder
from .kitti_road import KittiRoad
from .shapes import Shapes
from .subset import Subset

DATASETS = OrderedDict((cls.name, cls) for cls in (KittiRoad, CamVid, Cityscapes, Folder, Shapes))


def detect(data_dir):
    """The name of the format whose layout data_dir has (kitti_road, camvid, cityscapes, folder), or None."""
    if not data_dir or not os.path.isdir(data_dir):
        return None
    for name, cls in DATASETS.items():
        if cls.layout and all(os.path.isdir(os.path.join(data_dir, sub)) for sub in cls.layout):
            return name
    return None


def get_dataset(name, data_dir, classes=None, **options):
    """The dataset `name` (None: detected from data_dir's layout) reading data_dir, options going to its class;
    classes: [class name], only those classes (a Subset). InputError for a dataset --classes does not apply to."""
    if name is None:
        name = detect(data_dir)
        if name is None:
            raise InputError('{}: not a known dataset layout ({}); name the dataset'.format(
                data_dir, ', '.join('{}: {}'.format(n, ' + '.join(c.layout)) for n, c in DATASETS.items()
                                    if c.layout)))
    if name not in DATASETS:
        raise InputError('unknown dataset {!r}; one of {}'.format(name, ', '.join(DATASETS)))
    dataset = DATASETS[name](data_dir, **options)
    if classes is None:
        return dataset
    if not dataset.subsets:
        raise InputError('--classes does not apply to {}{} data: it picks classes of {} data (one class per '
                         'pixel)'.format('multi-label ' if getattr(dataset, 'multi_label', False) else '', name,
                                         ', '.join(n for n, c in DATASETS.items() if c.subsets)))
    return Subset(dataset, classes)


__all__ = ['DATASETS', 'IGNORE', 'SELECT', 'SPLITS', 'Dataset', 'Sample', 'detect', 'get_dataset',
           'median_frequency_weights', 'positive_weights', 'CamVid', 'Cityscapes', 'Folder', 'KittiRoad', 'Shapes',
           'Subset']

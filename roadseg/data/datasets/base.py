"""The dataset interface (samples of a split, image + class map loading, mask checks), class weights and the
default class colours.

A dataset has `name`, `class_names`, `colors` (RGB tuples, one per class), `num_classes`,
`ignore_index` (255), `samples(split)` for 'train', 'val', 'test', 'select' -> [Sample], `load(sample)` ->
(uint8 RGB (H, W, 3), uint8 class map (H, W) or None when the sample has no label), `load_label(sample)`,
`category(sample)` (None but for KITTI road), `split_paths` (the split files its lists come from) and `subsets`
(whether --classes may pick some of its classes).
Bad input raises one InputError naming the file.
"""
import os
from collections import namedtuple

import numpy as np
from ...system.files import InputError
from ..images import decode_image, read_image

IGNORE = 255  # class-map value of pixels left out of the loss and the metrics
SPLITS = ('train', 'val', 'test')
SELECT = 'select'  # training images held out to pick the kept checkpoint; [] unless a dataset lists it (KITTI)


class Sample(namedtuple('Sample', 'image label')):
    """One frame: image (a path, or a generated id) and label (its mask, or None when unlabelled)."""
    __slots__ = ()

    @property
    def stem(self):
        """The image file name without extension, for naming outputs."""
        return os.path.splitext(os.path.basename(self.image))[0]


class Dataset(object):
    """Images and index masks; subclasses set the class attributes, `layout`, `list_split()` and, for other
    masks than single-channel 8-bit class values, `load_label()`."""
    name = None
    class_names = ()
    colors = ()
    ignore_index = IGNORE
    layout = ()       # sub-paths that identify the format in detect(); () = not detectable
    table = None      # (256,) int16 mask value -> class index, IGNORE, or -1 (not declared)
    splits = SPLITS   # the splits list_split() lists; samples() of the others is []
    split_paths = ()  # the files (paths) that decide which image is in which split; () = folders alone
    subsets = False   # --classes may pick some of its classes (subset.py)
    generated = False  # samples drawn by Python code, not read from files (shapes.py): batches.drawing_processes

    def __init__(self, data_dir):
        if not os.path.isdir(data_dir):
            raise InputError('dataset folder not found: {}'.format(data_dir))
        self.data_dir = data_dir

    @property
    def num_classes(self):
        return len(self.class_names)

    def samples(self, split):
        """[Sample] of split ('train', 'val', 'test' or 'select'); ValueError for another name."""
        check_split(split)
        return self.list_split(split) if split in self.splits else []

    def category(self, sample):
        return None

    def load(self, sample):
        """(uint8 RGB (H, W, 3), uint8 class map (H, W) with IGNORE, or None for an unlabelled sample)."""
        return load_sample(sample, self.load_label)

    def load_for(self, sample, image_shape):
        """load(sample) for training at image_shape (H, W): the files' own size, which the training set resizes
        (a generated dataset draws the sample at image_shape)."""
        return self.load(sample)

    def load_label(self, sample):
        """uint8 (H, W) class map of the sample's mask of class values, through `table`."""
        return decode_values(read_value_mask(sample.label), self.table, sample.label)


def default_colors(num_classes):
    """num_classes distinct RGB tuples: the PASCAL VOC palette (bits of the index interleaved), black skipped."""
    colors = []
    for index in range(1, num_classes + 1):
        rgb, c = [0, 0, 0], index
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << shift
            c >>= 3
        colors.append(tuple(rgb))
    return colors


def load_sample(sample, load_label):
    """(image, class map from load_label(sample), or None without a label); InputError if the sizes differ."""
    image = read_image(sample.image)
    if sample.label is None:
        return image, None
    classes = load_label(sample)
    if image.shape[:2] != classes.shape:
        raise InputError('image {} is {}x{} but its mask {} is {}x{}'.format(
            sample.image, image.shape[1], image.shape[0], sample.label, classes.shape[1], classes.shape[0]))
    return image, classes


def check_split(split):
    if split not in SPLITS + (SELECT,):
        raise ValueError('split must be one of {}, got {!r}'.format(', '.join(SPLITS + (SELECT,)), split))


def value_table(class_values, ignore_values=()):
    """(256,) int16: mask value class_values[i] -> i, each ignore value and 255 -> IGNORE, others -1."""
    table = np.full(256, -1, np.int16)
    table[IGNORE] = IGNORE
    table[list(ignore_values)] = IGNORE
    table[list(class_values)] = np.arange(len(class_values))
    return table


def _ranges(values):
    """[0, 1, 2, 5] -> '0-2, 5'."""
    spans = []
    for v in values:
        if spans and v == spans[-1][1] + 1:
            spans[-1][1] = v
        else:
            spans.append([v, v])
    return ', '.join(str(a) if a == b else '{}-{}'.format(a, b) for a, b in spans)


def decode_values(mask, table, path):
    """uint8 (H, W) class map from a mask of values via table; an undeclared value is an InputError."""
    classes = table[mask]
    bad = classes < 0
    if bad.any():
        ys, xs = np.nonzero(bad)
        raise InputError('{}: mask value {} (at x={}, y={}) is not a declared class value (classes: {}; '
                         'ignored: {})'.format(path, mask[ys[0], xs[0]], xs[0], ys[0],
                                               _ranges(np.nonzero((table >= 0) & (table < IGNORE))[0]),
                                               _ranges(np.nonzero(table == IGNORE)[0])))
    return classes.astype(np.uint8)


def read_value_mask(path):
    """uint8 (H, W) values of a single-channel mask: 8-bit grey (L), palette indices (P, not the colours),
    1-bit, or 16/32-bit integers when all values are below 256."""
    mode, values = decode_image(path, lambda img: (img.mode, np.asarray(img)))
    if values.ndim != 2 or not (mode in ('L', 'P', '1') or values.dtype.kind in 'iu'):
        raise InputError('{}: mask is {} ({}); expected one channel of class values (8-bit grey or palette)'
                         .format(path, mode, 'x'.join(str(n) for n in values.shape)))
    if values.size and (values.min() < 0 or values.max() > 255):
        raise InputError('{}: mask value {} is not a class value (0..255)'.format(
            path, values.max() if values.max() > 255 else values.min()))
    return values.astype(np.uint8)


def _stem_path(path):
    return os.path.normpath(os.path.splitext(path)[0])


def _by_stem(paths, kind):
    """{path without extension: path}; two files that differ only in extension are an InputError."""
    stems = {}
    for path in paths:
        stem = _stem_path(path)
        if stem in stems:
            raise InputError('two {}s {} and {}: which one is meant?'.format(kind, stems[stem], path))
        stems[stem] = path
    return stems


def pair_masks(images, masks, mask_of, shown_in=None):
    """[Sample] pairing each image with its mask, sorted by image; mask_of(image path) -> mask path
    without extension. An image without a mask, a mask without an image, or two files that differ only
    in extension is an InputError naming the file (a missing mask by its name in shown_in when given)."""
    _by_stem(images, 'image')
    by_stem = _by_stem(masks, 'mask')
    samples = []
    for image in sorted(images):
        mask = by_stem.pop(_stem_path(mask_of(image)), None)
        if mask is None:
            raise InputError('image {} has no mask {}.png{}'.format(
                image, os.path.basename(mask_of(image)) if shown_in else mask_of(image),
                ' in {}'.format(shown_in) if shown_in else ''))
        samples.append(Sample(image, mask))
    if by_stem:
        raise InputError('mask {} has no matching image'.format(sorted(by_stem.values())[0]))
    return samples


def unlabelled(images):
    return [Sample(path, None) for path in sorted(images)]


def median_frequency_weights(dataset, split='train'):
    """float64 (num_classes,) class weights by median frequency balancing (SegNet, Eigen & Fergus 2015).

    f_c = pixels of class c / labelled pixels of the images in which c appears; w_c = median(f) / f_c,
    the median over the classes that appear. A class absent from the split gets weight 0.
    """
    n = dataset.num_classes
    counts, totals = np.zeros(n), np.zeros(n)
    samples = dataset.samples(split)
    if not samples:
        raise InputError('no {} samples in {} to weight the classes with'.format(split, dataset.data_dir))
    for sample in samples:
        image_counts = np.bincount(dataset.load_label(sample).ravel(), minlength=256)[:n]
        counts += image_counts
        totals[image_counts > 0] += image_counts.sum()
    present = counts > 0
    freq = counts[present] / totals[present]
    weights = np.zeros(n)
    weights[present] = np.median(freq) / freq
    return weights


def positive_weights(dataset, split='train'):
    """float64 (C,) pos_weight per label of a multi-label dataset: negative / positive labelled pixels of split
    (1 for a label with no positive pixel), so each label's members weigh as much as the rest in the loss."""
    samples = dataset.samples(split)
    if not samples:
        raise InputError('no {} samples in {} to weight the labels with'.format(split, dataset.data_dir))
    positive, negative = np.zeros(dataset.num_classes), np.zeros(dataset.num_classes)
    for sample in samples:
        label = dataset.load_label(sample).reshape(-1, dataset.num_classes)
        positive += (label == 1).sum(axis=0)
        negative += (label == 0).sum(axis=0)
    return np.where(positive > 0, negative / np.maximum(positive, 1), 1.0)

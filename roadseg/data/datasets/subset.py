"""--classes: some classes of a dataset as a dataset of their own. The named classes become classes 1..k in the
order named, every other labelled class class 0 (background), ignored pixels stay ignored; one named class makes a
two-class dataset, and so a binary run (roadseg/task/kinds.py)."""
import numpy as np

from ...system.files import InputError
from .base import IGNORE, Dataset

BACKGROUND_COLOR = (0, 0, 0)


def subset_table(num_classes, picked):
    """(256,) uint8 lookup: class picked[i] -> i + 1, every other class below num_classes -> 0, IGNORE -> IGNORE."""
    table = np.full(256, IGNORE, np.uint8)
    table[:num_classes] = 0
    table[list(picked)] = np.arange(1, len(picked) + 1)
    return table


def pick(class_names, names, where):
    """[index in class_names] of each of names (exact, else case-insensitive); InputError naming where for an
    unknown or repeated name, or when no class is left for the background."""
    lower = {n.lower(): i for i, n in enumerate(class_names)}
    picked = []
    for name in names:
        index = class_names.index(name) if name in class_names else lower.get(name.lower())
        if index is None:
            raise InputError('--classes: {} has no class {!r}; its classes: {}'.format(
                where, name, ', '.join(class_names)))
        if index in picked:
            raise InputError('--classes names {} twice'.format(class_names[index]))
        picked.append(index)
    if len(picked) == len(class_names):
        raise InputError('--classes names all {} classes of {}; leave out at least one to be the background'.format(
            len(class_names), where))
    return picked


class Subset(Dataset):
    """dataset (one class per pixel) with only the classes `names` (its class names, case-insensitive), as classes
    1..k in that order; class 0 is the rest: "background", or "other" when a named class is called background.
    Samples, splits and categories are dataset's."""

    def __init__(self, dataset, names):
        self.dataset, self.name, self.data_dir = dataset, dataset.name, dataset.data_dir
        self.split_paths = dataset.split_paths
        picked = pick(list(dataset.class_names), names, '{} ({})'.format(dataset.name, dataset.data_dir))
        named = [dataset.class_names[i] for i in picked]
        taken = {n.lower() for n in named}
        rest = next((n for n in ('background', 'other') if n not in taken), 'the rest')
        self.class_names = [rest] + named
        self.colors = [BACKGROUND_COLOR] + [tuple(dataset.colors[i]) for i in picked]
        self.lookup = subset_table(dataset.num_classes, picked)

    def samples(self, split):
        return self.dataset.samples(split)

    def category(self, sample):
        return self.dataset.category(sample)

    def load(self, sample):
        image, label = self.dataset.load(sample)
        return image, None if label is None else self.lookup[label]

    def load_label(self, sample):
        return self.lookup[self.dataset.load_label(sample)]

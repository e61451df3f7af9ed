"""The task kinds by config.json name, and which one a new run on a dataset or a trained run's config gets."""
from ..system.files import InputError
from .binary import KITTI_COLORS, Binary
from .classes import Classes
from .labels import Labels


KINDS = {cls.name: cls for cls in (Binary, Classes, Labels)}


def for_dataset(dataset, dice=False):
    """The task of a new run on dataset: Labels for a multi-label dataset, Binary for two classes, else Classes.
    dice: the Labels loss adds the soft Dice loss; InputError for a dataset that is not multi-label."""
    if getattr(dataset, 'multi_label', False):
        return Labels(dataset.class_names, dataset.colors, dice=dice)
    if dice:
        raise InputError('--dice is for multi-label runs (one sigmoid per label); {} is not multi-label'
                         .format(dataset.name))
    if dataset.num_classes == 2:
        return Binary(dataset.class_names, dataset.colors, kitti=dataset.name == 'kitti_road')
    return Classes(dataset.class_names, dataset.colors)


def for_config(config, path, num_classes=None):
    """The task of a trained run from its config (read from path, named in errors); num_classes: the model's,
    checked when given. Runs from before config.json's "task": Binary for KITTI road (dataset kitti_road, or
    neither class_names nor class_colors), else Classes. InputError for an unknown task, lists that do not
    fit, or a colour that is not RGB."""
    names, colors = config.get('class_names'), config.get('class_colors')
    kind = config.get('task')
    kitti = config.get('dataset', 'kitti_road') == 'kitti_road'
    if kind is None:
        kind = 'binary' if kitti or (names is None and colors is None) else 'classes'
    if kind not in KINDS:
        raise InputError('{}: unknown task {!r} (one of {})'.format(path, kind, ', '.join(sorted(KINDS))))
    if kind == 'binary' and names is None and colors is None:
        names, colors = ['background', 'road'], [list(c) for c in KITTI_COLORS]
    count = num_classes if num_classes is not None else len(names) if isinstance(names, list) else None
    if not isinstance(names, list) or not isinstance(colors, list) or not len(names) == len(colors) == count:
        raise InputError('{}: class_names and class_colors must be lists of {} entries, one per class of the model'
                         .format(path, count))
    for color in colors:
        if not (isinstance(color, list) and len(color) == 3 and
                all(isinstance(v, int) and 0 <= v <= 255 for v in color)):
            raise InputError('{}: class colour {!r} is not [R, G, B] in 0..255'.format(path, color))
    if kind == 'binary':
        if len(names) != 2:
            raise InputError('{}: a binary run has 2 classes, not {}'.format(path, len(names)))
        return Binary(names, colors, kitti=kitti)
    return KINDS[kind](names, colors)


def kitti():
    """The task of a KITTI road run (helper.py's Udacity path)."""
    return Binary()

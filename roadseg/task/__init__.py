"""What a run predicts, decided once: one Task object per kind of prediction, asked by training, validation,
evaluation, prediction, video and export, which never test dataset names, shapes or history keys.

    base.py     Task, the interface; Softmax, one class per pixel; minimize
    binary.py   Binary: two classes (any two-class dataset): softmax, positive where p(class 1) > THRESHOLD;
                MaxF1/AP/IoU; KITTI road adds its submission files
    classes.py  Classes: multi-class: softmax, argmax; confusion matrix, mean IoU; every class in its colour,
                with a legend
    labels.py   Labels: multi-label: one sigmoid per class, boolean masks at THRESHOLD; per-label IoU/F1/MaxF1/AP
    kinds.py    for_dataset(), a new run's task; for_config(), that of a trained run (config.json's "task"; runs
                from before the key: Binary for KITTI road, else Classes); kitti()

Their metric states are in roadseg/evaluation/scores.py, their pictures drawn by roadseg/evaluation/palette.py.
Importing this package loads no TensorFlow.
"""
from ..evaluation.metrics import THRESHOLD
from .binary import Binary
from .classes import Classes
from .kinds import for_config, for_dataset, kitti
from .labels import Labels

__all__ = ['THRESHOLD', 'Binary', 'Classes', 'Labels', 'for_dataset', 'for_config', 'kitti']

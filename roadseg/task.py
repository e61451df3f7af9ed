"""What a run predicts, decided once: one object per kind of prediction, asked by training, validation,
evaluation, prediction, video and export instead of their testing dataset names, shapes or keys.

    Road      KITTI road: two classes, road where p(road) > THRESHOLD; MaxF1/AP/IoU and the Udacity rubric;
              road in translucent green; KITTI submission files
    Classes   multi-class: argmax; confusion matrix, mean IoU; every class in its colour, with a legend

for_dataset() gives a new run's task, for_run() that of a trained run (from its config.json).
"""
import os
import re

import numpy as np
from PIL import Image

from .data.datasets import IGNORE
from .data.datasets.kitti_road import mask_name
from .evaluation import palette, report
from .evaluation.metrics import THRESHOLD, ConfusionMatrix, RoadEvaluator
from .system.files import InputError, save_image_atomic

KITTI_NAME = re.compile(r'^(um|umm|uu)_\d+$')


class RoadScores:
    """The MaxF1/AP threshold sweep, and IoU and the rubric at THRESHOLD, per KITTI category."""

    def __init__(self):
        self.evaluator = RoadEvaluator()

    def add(self, probs, classes, category):
        """probs (H, W, 2), classes (H, W) 0/1/IGNORE; returns the image's F1 at THRESHOLD."""
        return self.evaluator.add(probs[..., 1], classes, category or 'all')

    def results(self):
        return self.evaluator.results()


class ClassScores:
    """One confusion matrix: per-class IoU, mean IoU, pixel and mean class accuracy."""

    def __init__(self, class_names):
        self.class_names = list(class_names)
        self.matrix = ConfusionMatrix(len(self.class_names))

    def add(self, probs, classes, category=None):
        """probs (H, W, C), classes (H, W) with IGNORE; returns the image's mean IoU (1 with no labels)."""
        miou = self.matrix.add(np.argmax(probs, axis=-1).astype(np.uint8), classes)
        return 1.0 if miou is None else miou

    def results(self):
        return self.matrix.results(self.class_names)


class Road:
    """Two classes, background and road; road where p(road) > THRESHOLD."""
    class_names = ('background', 'road')
    colors = ((0, 0, 0), (0, 255, 0))  # as displayed: road in translucent green
    curve_metric = 'max_f1'  # the history metric that compares runs (scripts/compare_runs.py)
    history_curves = (('val_max_f1', 'validation MaxF1'), ('val_iou', 'validation IoU at {:.2f}'.format(THRESHOLD)))

    def scores(self):
        return RoadScores()

    def paint(self, image, probs, classes):
        """The overlay people look at: road in translucent green."""
        return palette.road_overlay(image, probs[..., 1], THRESHOLD)

    def legend(self):
        return None

    @staticmethod
    def error_overlay(image, probs, classes):
        """Green road found, red non-road called road, blue road missed; ignored pixels as they are."""
        pred = probs[..., 1] > THRESHOLD
        return palette.mark(image, (((pred & (classes == 1)), (0, 255, 0)), ((pred & (classes == 0)), (255, 0, 0)),
                                    ((~pred & (classes == 1)), (0, 0, 255))))

    @staticmethod
    def headline(results):
        """The number that picks the kept checkpoint: road IoU at THRESHOLD."""
        return results['overall']['iou']

    @staticmethod
    def key_metrics(results):
        """{metric: value in points} an int8 model is judged by: MaxF1 and IoU at THRESHOLD."""
        return {'max_f1': 100 * results['overall']['max_f1'], 'iou': 100 * results['overall']['iou']}

    @staticmethod
    def epoch_values(results):
        """The history entry's validation numbers (prefixed val_ or report_ by the caller)."""
        overall = results['overall']
        road, other = overall['road_pixels'], overall['nonroad_pixels']
        fraction = (overall['road_labeled_road'] * road + overall['nonroad_labeled_road'] * other) / max(road + other, 1)
        return dict(iou=overall['iou'], max_f1=overall['max_f1'], ap=overall['average_precision'],
                    max_f1_threshold=overall['max_f1_threshold'], road_fraction=fraction)

    @staticmethod
    def epoch_line(label, prefix, e, suffix):
        return '  {} IoU {:.3f} at threshold {:.2f}, MaxF1 {:.2f} (at {:.2f}), AP {:.2f} ({} images, {:.0f} s){}'.format(
            label, e[prefix + 'iou'], THRESHOLD, 100 * e[prefix + 'max_f1'], e[prefix + 'max_f1_threshold'],
            100 * e[prefix + 'ap'], e[prefix + 'images'], e[prefix + 'seconds'], suffix)

    @staticmethod
    def kept_numbers(e):
        return 'IoU {:.3f} at threshold {:.2f}, MaxF1 {:.2f}, AP {:.2f}'.format(
            e['val_iou'], THRESHOLD, 100 * e['val_max_f1'], 100 * e['val_ap'])

    @staticmethod
    def warning(e):
        """A warning for a kept model that marks almost nothing or almost everything as road, else None."""
        fraction = e.get('val_road_fraction')
        if fraction is not None and (fraction < 0.01 or fraction > 0.99):
            return ('warning: the kept model marks {} ({:.1%} of the validation pixels are called road at threshold '
                    '{:.2f}); train longer or check the data'.format(
                        'almost nothing' if fraction < 0.01 else 'almost everything', fraction, THRESHOLD))
        return None

    @staticmethod
    def print_results(results):
        print('{:8s} {:>7s} {:>7s} {:>7s} {:>7s} {:>6s} {:>10s} {:>13s} {}'.format(
            'category', 'MaxF1', 'AP', 'prec', 'recall', 'IoU', 'road->road', 'nonroad->road', 'rubric'))
        for cat in [c for c in sorted(results) if isinstance(results[c], dict)]:
            r = results[cat]
            print('{:8s} {:7.2f} {:7.2f} {:7.2f} {:7.2f} {:6.3f} {:10.3f} {:13.3f} {}'.format(
                cat, 100 * r['max_f1'], 100 * r['average_precision'], 100 * r['precision'], 100 * r['recall'],
                r['iou'], r['road_labeled_road'], r['nonroad_labeled_road'], 'pass' if r['rubric_passed'] else 'FAIL'))

    @staticmethod
    def plot(out_dir, scores, results):
        report.plot_pr_curve(os.path.join(out_dir, 'pr_curve.png'), scores.evaluator)

    @staticmethod
    def output_names(path):
        """Files --predict writes for one image: class map, overlay and, for a KITTI name such as
        um_000000.png, the submission file um_road_000000.png."""
        stem = os.path.splitext(os.path.basename(path))[0]
        return [stem + '.png', stem + '_overlay.png'] + ([mask_name(stem) + '.png'] if KITTI_NAME.match(stem) else [])

    @staticmethod
    def write_extra(out_dir, names, probs):
        """The KITTI submission file (8-bit road probability, round(255 p)) when names has one; returns 1 or 0."""
        if len(names) < 3:
            return 0
        road = np.clip(np.rint(probs[..., 1] * 255.0), 0, 255).astype(np.uint8)
        save_image_atomic(os.path.join(out_dir, names[2]), Image.fromarray(road))
        return 1


class Classes:
    """Any number of classes, each pixel its argmax class; colours: one RGB tuple per class."""
    history_curves = ()
    curve_metric = 'iou'  # mean IoU in the history

    def __init__(self, class_names, colors):
        self.class_names, self.colors = list(class_names), [tuple(c) for c in colors]

    def scores(self):
        return ClassScores(self.class_names)

    def paint(self, image, probs, classes):
        """Every pixel tinted with its class's colour."""
        return palette.overlay(image, classes, self.colors)

    def legend(self):
        return palette.legend(self.class_names, self.colors)

    @staticmethod
    def error_overlay(image, probs, classes):
        """Green right, red wrong; ignored pixels as they are."""
        pred, labelled = np.argmax(probs, axis=-1), classes != IGNORE
        return palette.mark(image, (((pred == classes) & labelled, (0, 255, 0)),
                                    ((pred != classes) & labelled, (255, 0, 0))))

    @staticmethod
    def headline(results):
        """The number that picks the kept checkpoint: mean IoU."""
        return results['mean_iou']

    @staticmethod
    def key_metrics(results):
        """{metric: value in points} an int8 model is judged by: mean IoU."""
        return {'mean_iou': None if results['mean_iou'] is None else 100 * results['mean_iou']}

    @staticmethod
    def epoch_values(results):
        return dict(iou=results['mean_iou'] or 0.0, pixel_accuracy=results['pixel_accuracy'] or 0.0,
                    mean_class_accuracy=results['mean_class_accuracy'] or 0.0)

    @staticmethod
    def epoch_line(label, prefix, e, suffix):
        return '  {} mIoU {:.3f}, pixel accuracy {:.3f}, mean class accuracy {:.3f} ({} images, {:.0f} s){}'.format(
            label, e[prefix + 'iou'], e[prefix + 'pixel_accuracy'], e[prefix + 'mean_class_accuracy'],
            e[prefix + 'images'], e[prefix + 'seconds'], suffix)

    @staticmethod
    def kept_numbers(e):
        return 'mIoU {:.3f}, pixel accuracy {:.3f}'.format(e['val_iou'], e['val_pixel_accuracy'])

    @staticmethod
    def warning(e):
        return None

    @staticmethod
    def print_results(results):
        print('{:16s} {:>6s} {:>8s}'.format('class', 'IoU', 'accuracy'))
        for name, iou, acc in zip(results['classes'], results['class_iou'], results['class_accuracy']):
            print('{:16s} {:>6s} {:>8s}'.format(name, _pct(iou), _pct(acc)))
        print('mean IoU {}, pixel accuracy {}, mean class accuracy {}'.format(
            _pct(results['mean_iou']), _pct(results['pixel_accuracy']), _pct(results['mean_class_accuracy'])))

    @staticmethod
    def plot(out_dir, scores, results):
        report.plot_class_iou(os.path.join(out_dir, 'class_iou.png'), results)

    def output_names(self, path):
        """Files --predict writes for one image: class map and overlay."""
        stem = os.path.splitext(os.path.basename(path))[0]
        return [stem + '.png', stem + '_overlay.png']

    @staticmethod
    def write_extra(out_dir, names, probs):
        return 0


def _pct(value):
    return '-' if value is None else '{:.1f}'.format(100 * value)


def for_dataset(dataset):
    """The task of a run trained on dataset: Road for KITTI road, else Classes with the dataset's colours."""
    return Road() if dataset.name == 'kitti_road' else Classes(dataset.class_names, dataset.colors)


def for_run(config, num_classes, path):
    """The task of a trained run from its config (read from path, named in errors): Road for a KITTI road
    run (dataset kitti_road, or neither class_names nor class_colors as in runs of earlier versions), else
    Classes. InputError when the lists do not fit the model's num_classes or a colour is not RGB."""
    names, colors = config.get('class_names'), config.get('class_colors')
    if config.get('dataset') == 'kitti_road' or (names is None and colors is None):
        if num_classes != 2:
            raise InputError('{}: no class_names for a model of {} classes (a road run has 2)'.format(
                path, num_classes))
        return Road()
    if not isinstance(names, list) or not isinstance(colors, list) or not len(names) == len(colors) == num_classes:
        raise InputError('{}: class_names and class_colors must be lists of {} entries, one per class of the model'
                         .format(path, num_classes))
    for color in colors:
        if not (isinstance(color, list) and len(color) == 3 and
                all(isinstance(v, int) and 0 <= v <= 255 for v in color)):
            raise InputError('{}: class colour {!r} is not [R, G, B] in 0..255'.format(path, color))
    return Classes([str(n) for n in names], colors)

"""Binary: two classes, the positive one (class 1) where its probability > THRESHOLD; MaxF1, AP and IoU. A KITTI road
run adds its submission files."""
import os
import re

import numpy as np
from PIL import Image

from ..data.datasets.kitti_road import mask_name
from ..evaluation import palette, report
from ..evaluation.metrics import THRESHOLD
from ..evaluation.scores import BinaryScores
from ..system.files import save_image_atomic
from .base import Softmax

KITTI_NAME = re.compile(r'^(um|umm|uu)_\d+$')
KITTI_COLORS = ((0, 0, 0), (0, 255, 0))  # as displayed: road in translucent green


class Binary(Softmax):
    """Two classes, positive (class 1) where p > THRESHOLD; kitti: KITTI road (green overlay, no legend,
    submission files for KITTI-named images)."""
    name = 'binary'
    curve_metric = 'max_f1'
    history_curves = (('val_max_f1', 'validation MaxF1'), ('val_iou', 'validation IoU at {:.2f}'.format(THRESHOLD)))

    def __init__(self, class_names=('background', 'road'), colors=KITTI_COLORS, kitti=True):
        super(Binary, self).__init__(class_names, KITTI_COLORS if kitti else colors)
        self.kitti = kitti

    def scores(self):
        return BinaryScores()

    def keep_value(self, results):
        return results['overall']['iou']

    def key_metrics(self, results):
        return {'max_f1': 100 * results['overall']['max_f1'], 'iou': 100 * results['overall']['iou']}

    def epoch_values(self, results):
        overall = results['overall']
        pos, neg = overall['road_pixels'], overall['nonroad_pixels']
        fraction = (overall['road_labeled_road'] * pos + overall['nonroad_labeled_road'] * neg) / max(pos + neg, 1)
        return dict(iou=overall['iou'], max_f1=overall['max_f1'], ap=overall['average_precision'],
                    max_f1_threshold=overall['max_f1_threshold'], road_fraction=fraction)

    def epoch_line(self, label, prefix, e, suffix):
        return '  {} IoU {:.3f} at threshold {:.2f}, MaxF1 {:.2f} (at {:.2f}), AP {:.2f} ({} images, {:.0f} s){}'.format(
            label, e[prefix + 'iou'], THRESHOLD, 100 * e[prefix + 'max_f1'], e[prefix + 'max_f1_threshold'],
            100 * e[prefix + 'ap'], e[prefix + 'images'], e[prefix + 'seconds'], suffix)

    def kept_numbers(self, e):
        return 'IoU {:.3f} at threshold {:.2f}, MaxF1 {:.2f}, AP {:.2f}'.format(
            e['val_iou'], THRESHOLD, 100 * e['val_max_f1'], 100 * e['val_ap'])

    def warning(self, e):
        fraction = e.get('val_road_fraction')
        if fraction is not None and (fraction < 0.01 or fraction > 0.99):
            return ('warning: the kept model marks {} ({:.1%} of the validation pixels are called {} at threshold '
                    '{:.2f}); train longer or check the data'.format(
                        'almost nothing' if fraction < 0.01 else 'almost everything', fraction, self.class_names[1],
                        THRESHOLD))
        return None

    def print_results(self, results):
        print('{:8s} {:>7s} {:>7s} {:>7s} {:>7s} {:>6s} {:>10s} {:>13s} {}'.format(
            'category', 'MaxF1', 'AP', 'prec', 'recall', 'IoU', 'pos->pos', 'neg->pos', 'rubric'))
        for cat in [c for c in sorted(results) if isinstance(results[c], dict)]:
            r = results[cat]
            print('{:8s} {:7.2f} {:7.2f} {:7.2f} {:7.2f} {:6.3f} {:10.3f} {:13.3f} {}'.format(
                cat, 100 * r['max_f1'], 100 * r['average_precision'], 100 * r['precision'], 100 * r['recall'],
                r['iou'], r['road_labeled_road'], r['nonroad_labeled_road'], 'pass' if r['rubric_passed'] else 'FAIL'))

    def plot(self, out_dir, scores, results):
        report.plot_pr_curve(os.path.join(out_dir, 'pr_curve.png'), scores.evaluator, self.class_names[1])

    def paint(self, image, probs):
        return palette.road_overlay(image, probs[..., 1], THRESHOLD, self.colors[1])

    def legend(self):
        return None if self.kitti else super(Binary, self).legend()

    def error_overlay(self, image, probs, label):
        """Green found, red negative called positive, blue positive missed; ignored pixels as they are."""
        pred = probs[..., 1] > THRESHOLD
        return palette.mark(image, (((pred & (label == 1)), (0, 255, 0)), ((pred & (label == 0)), (255, 0, 0)),
                                    ((~pred & (label == 1)), (0, 0, 255))))

    def output_names(self, path):
        """Class map, overlay and, for KITTI road and a KITTI name such as um_000000.png, the submission
        file um_road_000000.png."""
        stem = os.path.splitext(os.path.basename(path))[0]
        return super(Binary, self).output_names(path) + (
            [mask_name(stem) + '.png'] if self.kitti and KITTI_NAME.match(stem) else [])

    def write_outputs(self, out_dir, path, image, probs, decision):
        """Also the KITTI submission file (8-bit road probability, round(255 p)) when output_names has one."""
        super(Binary, self).write_outputs(out_dir, path, image, probs, decision)
        names = self.output_names(path)
        if len(names) < 3:
            return 0
        road = np.clip(np.rint(probs[..., 1] * 255.0), 0, 255).astype(np.uint8)
        save_image_atomic(os.path.join(out_dir, names[2]), Image.fromarray(road))
        return 1

    def outputs_note(self, extras):
        return 'class maps and overlays, {} KITTI submission files'.format(extras) if self.kitti else \
            super(Binary, self).outputs_note(extras)

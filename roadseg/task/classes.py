"""Classes: any number of classes, each pixel its argmax class; one confusion matrix, mean IoU; every class in its
colour, with a legend."""
from ..data.datasets import IGNORE
from ..evaluation import palette
from ..evaluation.scores import ClassScores
from .base import Softmax, percent


class Classes(Softmax):
    """Any number of classes, each pixel its argmax class."""
    name = 'classes'

    def scores(self):
        return ClassScores(self.class_names)

    def keep_value(self, results):
        return results['mean_iou'] or 0.0

    def epoch_values(self, results):
        return dict(iou=results['mean_iou'] or 0.0, pixel_accuracy=results['pixel_accuracy'] or 0.0,
                    mean_class_accuracy=results['mean_class_accuracy'] or 0.0)

    def epoch_line(self, label, prefix, e, suffix):
        return '  {} mIoU {:.3f}, pixel accuracy {:.3f}, mean class accuracy {:.3f} ({} images, {:.0f} s){}'.format(
            label, e[prefix + 'iou'], e[prefix + 'pixel_accuracy'], e[prefix + 'mean_class_accuracy'],
            e[prefix + 'images'], e[prefix + 'seconds'], suffix)

    def kept_numbers(self, e):
        return 'mIoU {:.3f}, pixel accuracy {:.3f}'.format(e['val_iou'], e['val_pixel_accuracy'])

    def print_results(self, results):
        print('{:16s} {:>6s} {:>8s}'.format('class', 'IoU', 'accuracy'))
        for name, iou, acc in zip(results['classes'], results['class_iou'], results['class_accuracy']):
            print('{:16s} {:>6s} {:>8s}'.format(name, percent(iou), percent(acc)))
        print('mean IoU {}, pixel accuracy {}, mean class accuracy {}'.format(
            percent(results['mean_iou']), percent(results['pixel_accuracy']), percent(results['mean_class_accuracy'])))

    def paint(self, image, probs):
        """Every pixel tinted with its class's colour."""
        return palette.overlay(image, self.decide(probs), self.colors)

    def error_overlay(self, image, probs, label):
        """Green right, red wrong; ignored pixels as they are."""
        pred, labelled = self.decide(probs), label != IGNORE
        return palette.mark(image, (((pred == label) & labelled, (0, 255, 0)),
                                    ((pred != label) & labelled, (255, 0, 0))))

"""Overlays of a live training session's predictions, as the run's task paints them, and writing image files:
a run's test_images/ and helper.py's inference samples."""
import os

from PIL import Image

from ..model.prediction import predict_probabilities
from ..system.files import save_image_atomic
from ..system.progress import bar


def session_overlays(sess, probabilities, image_input, keep_prob, items, load, image_shape, task, batch_size=4,
                     flips='none'):
    """Yield (item, the task's overlay at the image's own size) for each item, load(item) -> uint8 RGB image,
    predicted by a live session's probabilities (keep_prob fed 1.0), averaged over test-time flips."""
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        images = [load(item) for item in chunk]
        for item, image, probs in zip(chunk, images, predict_probabilities(
                sess, probabilities, image_input, images, image_shape, batch_size, {keep_prob: 1.0}, flips)):
            yield item, task.paint(image, probs)


def write_images(out_dir, named_images, total, desc, legend=None):
    """Write (file name, uint8 RGB image) pairs into out_dir (each atomically, with a progress bar), and
    legend.png when a legend image is given."""
    os.makedirs(out_dir, exist_ok=True)
    if legend is not None:
        save_image_atomic(os.path.join(out_dir, 'legend.png'), legend)
    for name, image in bar(named_images, total=total, desc=desc, unit='image'):
        save_image_atomic(os.path.join(out_dir, name), Image.fromarray(image))

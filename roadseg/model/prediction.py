"""Prediction at any frame size, batched: frames resized to the network's size, probabilities back to theirs.
For a live training session (validation, test images) and for every backend of serving/inference.py's Segmenter."""
import numpy as np

from ..data.batches import resize_prob, resize_rgb


def predict_resized(run_batch, images, image_shape, batch_size):
    """Yield float32 (H_i, W_i, C) probabilities per uint8 (H_i, W_i, 3) image of an iterable, in order.

    Images are resized to image_shape (h, w) for run_batch(float32 (n, h, w, 3)) -> (n, h, w, C), and each
    probability map back to its image's size; at most batch_size images are held at a time.
    """
    batch = []

    def flush():
        net_in = np.stack([im if im.shape[:2] == tuple(image_shape) else resize_rgb(im, image_shape)
                           for im in batch]).astype(np.float32)
        for image, probs in zip(batch, run_batch(net_in)):
            if image.shape[:2] != probs.shape[:2]:
                probs = np.stack([resize_prob(probs[..., c], image.shape[:2]) for c in range(probs.shape[-1])], -1)
            yield probs

    for image in images:
        batch.append(image)
        if len(batch) == batch_size:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def predict_probabilities(sess, probabilities, image_pl, images, image_shape, batch_size=4, feed=None):
    """Probabilities from a live session (the training loop's validation) for frames of any size.

    probabilities: (N, h, w, C) tensor of sess.graph fed by image_pl at image_shape (h, w); feed: extra
    feeds (e.g. {keep_prob: 1.0}). Yields float32 (H_i, W_i, C) per uint8 (H_i, W_i, 3) image, in order.
    """
    def run(batch):
        with sess.graph.as_default():  # TF 2.x: tensors hash as feed keys only inside their graph
            feeds = dict(feed or {})
            feeds[image_pl] = batch
            return sess.run(probabilities, feeds)

    return predict_resized(run, images, image_shape, batch_size)

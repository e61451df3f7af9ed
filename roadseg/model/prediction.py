"""Prediction at any frame size, batched: frames resized to the network's size, probabilities back to theirs,
averaged over mirror images when asked (test-time augmentation). For a live training session (validation, test
images) and for every backend of serving/inference.py's Segmenter."""
import numpy as np

from ..data.batches import resize_prob, resize_rgb
from ..system.files import InputError

# Test-time flips (--flip MODE): each a list of (mirror left-right, mirror top-bottom, swap rows and columns).
FLIPS = {'none': [(0, 0, 0)],
         'h': [(0, 0, 0), (1, 0, 0)],
         'hv': [(h, v, 0) for v in (0, 1) for h in (0, 1)],
         'd8': [(h, v, t) for t in (0, 1) for v in (0, 1) for h in (0, 1)]}  # the square's 8 symmetries
FLIP_HELP = ('h: the mirror image too (2 predictions), hv: mirrored left-right and upside down (4), d8: those and '
             'their transposes, the 8 symmetries of a square (square --image-shape only)')


def flips_phrase(flips):
    """How a report names a FLIPS mode: 'averaged over 8 flips (d8)'."""
    return 'averaged over {} flips ({})'.format(len(FLIPS[flips]), flips)


def check_flips(flips, image_shape, source):
    """InputError unless flips is a FLIPS mode that fits the network's image_shape (h, w), named by source
    ('--image-shape', a run's config.json)."""
    if flips not in FLIPS:
        raise InputError('test-time flips {!r}: not one of {}'.format(flips, ', '.join(FLIPS)))
    if flips == 'd8' and image_shape[0] != image_shape[1]:
        raise InputError('--flip d8 swaps rows and columns, so the network\'s input must be square; {} is {}x{} (use '
                         '--flip hv)'.format(source, image_shape[0], image_shape[1]))


def _flipped(batch, flip):
    """batch (n, h, w, c) under one FLIPS entry; applied to its output, _unflipped undoes it."""
    h, v, t = flip
    batch = batch[:, :, ::-1] if h else batch
    batch = batch[:, ::-1] if v else batch
    return batch.transpose(0, 2, 1, 3) if t else batch


def _unflipped(batch, flip):
    h, v, t = flip
    batch = batch.transpose(0, 2, 1, 3) if t else batch
    batch = batch[:, ::-1] if v else batch
    return batch[:, :, ::-1] if h else batch


def averaged_over_flips(run_batch, flips='none'):
    """run_batch(float32 (n, h, w, 3)) -> (n, h, w, C) as one call on the n images under each of FLIPS[flips]
    (a batch of n x len(FLIPS[flips])), each output flipped back and the probabilities averaged."""
    transforms = FLIPS[flips]
    if len(transforms) == 1:
        return run_batch

    def run(batch):
        out = run_batch(np.ascontiguousarray(np.concatenate([_flipped(batch, f) for f in transforms])))
        return np.mean([_unflipped(part, f) for part, f in zip(np.split(out, len(transforms)), transforms)], 0)
    return run


def predict_resized(run_batch, images, image_shape, batch_size, flips='none'):
    """Yield float32 (H_i, W_i, C) probabilities per uint8 (H_i, W_i, 3) image of an iterable, in order.

    Images are resized to image_shape (h, w) for run_batch(float32 (n, h, w, 3)) -> (n, h, w, C), and each
    probability map back to its image's size; at most batch_size images are held at a time. flips: a FLIPS
    mode, the average over those mirror images (run_batch then sees batch_size x len(FLIPS[flips]) images).
    """
    batch = []
    run_batch = averaged_over_flips(run_batch, flips)

    def flush():
        net_in = np.stack([resize_rgb(im, image_shape) for im in batch]).astype(np.float32)
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


def predict_probabilities(sess, probabilities, image_pl, images, image_shape, batch_size=4, feed=None,
                          flips='none'):
    """Probabilities from a live session (the training loop's validation) for frames of any size.

    probabilities: (N, h, w, C) tensor of sess.graph fed by image_pl at image_shape (h, w); feed: extra
    feeds (e.g. {keep_prob: 1.0}); flips: predict_resized's. Yields float32 (H_i, W_i, C) per uint8
    (H_i, W_i, 3) image, in order.
    """
    def run(batch):
        with sess.graph.as_default():  # TF 2.x: tensors hash as feed keys only inside their graph
            feeds = dict(feed or {})
            feeds[image_pl] = batch
            return sess.run(probabilities, feeds)

    return predict_resized(run, images, image_shape, batch_size, flips)

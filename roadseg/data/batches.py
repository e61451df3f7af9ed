"""Format-free training input: resizing, the in-memory training set, augmentation, epochs, prefetching."""
import multiprocessing
import os
import queue
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
from PIL import Image

from ..system.files import InputError


def half_shape(image_shape):
    """(H // 2, W // 2) of image_shape (H, W), what --half-size-epochs train at; None unless both halves are
    multiples of 32, as the network's input must be."""
    return None if any(side % 64 for side in image_shape) else tuple(side // 2 for side in image_shape)


def resize_rgb(image, image_shape):
    """Bilinear resize of uint8 (H, W, 3) to image_shape (height, width); the image itself when already that size."""
    if image.shape[:2] == tuple(image_shape):
        return image
    return np.asarray(Image.fromarray(image).resize((image_shape[1], image_shape[0]), Image.BILINEAR))


def resize_classes(classes, image_shape, box=None):
    """Nearest-neighbour resize of a uint8 label (H, W) or (H, W, C) (of box, a crop (x0, y0, x1, y1), when
    given), so no new labels appear at edges; the label itself when already that size and not cropped."""
    if box is None and classes.shape[:2] == tuple(image_shape):
        return classes
    if classes.ndim == 3:
        return np.stack([resize_classes(classes[..., c], image_shape, box) for c in range(classes.shape[-1])], -1)
    return np.asarray(Image.fromarray(classes).resize((image_shape[1], image_shape[0]), Image.NEAREST, box=box))


def resize_prob(prob, size_hw):
    """Bilinear resize of a float (h, w) probability map to size_hw (height, width)."""
    return np.asarray(Image.fromarray(prob.astype(np.float32), 'F').resize((size_hw[1], size_hw[0]),
                                                                           Image.BILINEAR))


def one_hot(classes, num_classes=2):
    """uint8 class map (..., H, W) -> float32 (..., H, W, num_classes); IGNORE (255) pixels are all zero."""
    return (classes[..., None] == np.arange(num_classes, dtype=np.uint8)).astype(np.float32)


def epoch_rng(seed, epoch, rank=None):
    """The random stream of one epoch (data order, augmentation): the same whether or not a run was resumed.
    With a rank (data-parallel training), that rank's own augmentation stream of the epoch."""
    return np.random.RandomState([seed, epoch] if rank is None else [seed, epoch, rank])


def shard(order, rank, size):
    """Rank's part of one epoch's sample order (N,) among size data-parallel ranks: (ceil(N / size),) entries.

    `order` must be the same on every rank; it is wrapped round to a multiple of size (up to size-1 samples
    appear twice) and rank takes every size-th entry, so every rank runs the same number of steps and none
    waits forever in an allreduce for a rank that finished its epoch.
    """
    per_rank = -(-len(order) // size)
    return np.resize(np.asarray(order), per_rank * size)[rank::size]


def drawing_processes(dataset, alone=True):
    """Processes for TrainingSet to draw dataset's samples in: one per usable core for a generated dataset when
    this process trains alone on Linux (fork), else 0 (threads; data-parallel ranks already share the cores and
    hold live connections a fork would copy)."""
    if not (dataset.generated and alone and sys.platform.startswith('linux')):
        return 0
    cores = len(os.sched_getaffinity(0))  # Linux, checked above
    return cores if cores > 1 else 0


def _ignore_interrupts():
    """A drawing process leaves Ctrl-C to its parent and ends at SIGTERM (it inherits training's handlers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class TrainingSet:
    """Training samples resized once to image_shape and kept in memory (289 KITTI pairs at 160x576: 80 MB).

    load(sample) -> (uint8 RGB (H, W, 3), uint8 label (H, W) or (H, W, C)) at the original size; encode(uint8
    labels (B, H, W[, C])) -> what a batch feeds as labels (a task's training_labels; default: two-class one-hot).
    processes: load in that many forked processes (load must pickle; drawing_processes), else in threads.
    """

    def __init__(self, samples, load, image_shape, encode=one_hot, workers=4, processes=0):
        if not samples:
            raise InputError('no training samples')
        self.image_shape = tuple(image_shape)
        self.encode = encode
        if processes:
            chunk = max(1, min(64, len(samples) // (4 * processes)))
            with ProcessPoolExecutor(processes, multiprocessing.get_context('fork'), _ignore_interrupts) as pool:
                loaded = [self._resized(*pair) for pair in pool.map(load, samples, chunksize=chunk)]
        else:
            with ThreadPoolExecutor(workers) as pool:
                loaded = list(pool.map(lambda s: self._resized(*load(s)), samples))
        self.images = np.stack([im for im, _ in loaded])
        self.classes = np.stack([c for _, c in loaded])

    def _resized(self, image, classes):
        return resize_rgb(image, self.image_shape), resize_classes(classes, self.image_shape)

    def __len__(self):
        return len(self.images)

    def num_batches(self, batch_size, repeat=1, size=1):
        """Batches per epoch of each of `size` data-parallel ranks."""
        per_rank = -(-len(self) * repeat // size)
        return -(-per_rank // batch_size)

    def batches(self, batch_size, rng, augment=True, repeat=1, skip=0, part=None):
        """One epoch: `repeat` shuffled passes as (images float32 (B,H,W,3) 0..255, encode(labels)) batches.
        The first `skip` batches are drawn (so the stream stays the same) but not yielded.
        part: (rank, size, augmentation rng) to yield only rank's shard of the order rng draws, augmented
        with that rank's own stream."""
        order = np.concatenate([rng.permutation(len(self)) for _ in range(repeat)])
        if part is not None:
            order, rng = shard(order, part[0], part[1]), part[2]
        for n, start in enumerate(range(0, len(order), batch_size)):
            idx = order[start:start + batch_size]
            images = self.images[idx].astype(np.float32)
            classes = self.classes[idx]
            if augment:
                images, classes = augment_batch(images, classes, rng)
            if n >= skip:
                yield images, self.encode(classes)


def augment_batch(images, classes, rng, max_zoom=1.25):
    """Random horizontal flip, zoom-crop (1..max_zoom) and brightness/contrast/saturation jitter of images
    (B, H, W, 3) and their labels (B, H, W) or (B, H, W, C)."""
    h, w = classes.shape[1:3]
    images, classes = images.copy(), classes.copy()
    for i in range(len(images)):
        if rng.rand() < 0.5:
            images[i], classes[i] = images[i, :, ::-1], classes[i, :, ::-1]
        zoom = rng.uniform(1.0, max_zoom)
        ch, cw = int(round(h / zoom)), int(round(w / zoom))
        if ch < h:
            y, x = rng.randint(0, h - ch + 1), rng.randint(0, w - cw + 1)
            box = (x, y, x + cw, y + ch)
            img = Image.fromarray(images[i].astype(np.uint8)).resize((w, h), Image.BILINEAR, box=box)
            images[i] = np.asarray(img, np.float32)
            classes[i] = resize_classes(classes[i], (h, w), box)
        grey = images[i].mean(axis=-1, keepdims=True)
        images[i] = grey + (images[i] - grey) * rng.uniform(0.7, 1.3)          # saturation
        images[i] = (images[i] - images[i].mean()) * rng.uniform(0.7, 1.3) + images[i].mean()  # contrast
        images[i] += rng.uniform(-30, 30)                                       # brightness
    return np.clip(images, 0, 255), classes


def prefetch(iterable, depth=2, poll=0.1):
    """Run a generator in a background thread, depth items ahead; exceptions re-raise in the consumer.

    When the consumer stops early (break, error, Ctrl-C) the worker notices within `poll` seconds and ends:
    it never blocks forever on a full queue.
    """
    q = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                q.put(item, timeout=poll)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in iterable:
                if not put(item):
                    return
            put(done)
        except BaseException as e:  # handed to the consumer
            put(e)

    thread = threading.Thread(target=work, daemon=True, name='prefetch')
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=10 * poll + 5)


class EpochBatches:
    """get_batches_fn(batch_size) of the Udacity project: each call is the next epoch, and epoch e always draws
    from the random stream (seed, e), so a resumed run sees the data an uninterrupted one would. With
    rank/size (data-parallel training) each call yields rank's shard of the epoch (batches.shard). With
    first=(N, TrainingSet) epochs 1..N draw from that set (the same samples at another size: --half-size-epochs)."""

    def __init__(self, dataset, augment=True, seed=0, repeat=1, prefetch_depth=2, rank=0, size=1, first=None):
        self.dataset, self.augment, self.seed, self.repeat = dataset, augment, seed, repeat
        self.first = first or (0, None)
        self.depth, self.rank, self.size = prefetch_depth, rank, size
        self.num_images = len(dataset)
        self.epoch, self.skip = 0, 0

    def resume_at(self, epoch, skip=0):
        """The next call yields epoch `epoch` without its first `skip` batches."""
        self.epoch, self.skip = epoch, skip

    def steps_per_epoch(self, batch_size):
        return self.dataset.num_batches(batch_size, self.repeat, self.size)

    def num_batches(self, batch_size):
        """Batches the next call yields (an epoch less what resume_at skips)."""
        return self.steps_per_epoch(batch_size) - self.skip

    def __call__(self, batch_size):
        rng = epoch_rng(self.seed, self.epoch)
        part = (self.rank, self.size, epoch_rng(self.seed, self.epoch, self.rank)) if self.size > 1 else None
        dataset = self.first[1] if self.epoch < self.first[0] else self.dataset
        epoch = dataset.batches(batch_size, rng, self.augment, self.repeat, self.skip, part)
        self.epoch, self.skip = self.epoch + 1, 0
        return prefetch(epoch, self.depth)

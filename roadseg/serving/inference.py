"""Inference: the Python API (Segmenter), batched prediction at any frame size.

    from roadseg import Segmenter
    seg = Segmenter('runs/<timestamp>')           # its best/ checkpoint; backend='onnxruntime' for its ONNX export
    probs, classes = seg.predict(image)           # uint8 (H, W, 3) -> (H, W, C) float32, (H, W) uint8

With TensorFlow the model runs in its own tf.Graph and Session: a TF 2.x host program stays in eager mode.
"""
import os

import numpy as np

from .. import task
from ..data.batches import resize_prob, resize_rgb
from ..model.heads import IMAGE_INPUT, PROBABILITIES
from ..runs import CONFIG, find_checkpoint, read_config, read_image_shape, run_folder
from ..system import cpu
from ..system.files import InputError
from ..system.tfcompat import session_config, tf
from . import onnx_backend
from .export import FROZEN, freeze_checkpoint, read_frozen


def _predict(run_batch, images, image_shape, batch_size):
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

    return _predict(run, images, image_shape, batch_size)


def _checked(image, index):
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError('image {}: expected uint8 RGB of shape (H, W, 3), got {} {}'.format(
            index, image.dtype, image.shape))
    return image


class TFGraph:
    """The TensorFlow backend of Segmenter: prefix's frozen_inference.pb when it is newer than the checkpoint,
    else the checkpoint's own .meta graph frozen in memory, in its own tf.Graph and Session. Attributes:
    graph, sess, frozen (True when the frozen file was used), num_classes."""

    def __init__(self, prefix, image_shape, threads=0, bf16=False):
        path = os.path.join(os.path.dirname(prefix), FROZEN)
        self.frozen = os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(prefix + '.index')
        graph_def = read_frozen(path) if self.frozen else None
        if graph_def is not None and not any(n.name == PROBABILITIES for n in graph_def.node):
            print('note: {} has no {} output (an older export); using the checkpoint'.format(path, PROBABILITIES))
            graph_def, self.frozen = None, False
        if graph_def is None:
            graph_def = freeze_checkpoint(prefix, image_shape)
        try:
            config = session_config(threads, bf16=bf16)
        except ValueError as e:
            raise InputError(str(e))
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.import_graph_def(graph_def, name='')
        self.num_classes = int(self.graph.get_tensor_by_name(PROBABILITIES + ':0').shape[-1])
        self.sess = tf.Session(graph=self.graph, config=config)

    def run(self, batch):
        """float32 (N, h, w, 3) RGB 0..255 at the training size -> float32 (N, h, w, C) probabilities."""
        with self.graph.as_default():  # TF 2.x: feeds resolve inside the graph, not in eager mode
            return self.sess.run(PROBABILITIES + ':0', {IMAGE_INPUT + ':0': batch})

    def close(self):
        self.sess.close()


class Segmenter:
    """A trained run loaded for inference over a backend: 'tensorflow' (TFGraph: the frozen graph or the
    checkpoint, in its own tf.Graph and Session), 'onnxruntime' (the run's ONNX export, onnx_backend), or
    'auto': the one measured faster on this CPU class where it can run (onnx_backend.AUTO). A run without
    best/ uses last/ with a note; run may also name an export's ONNX model (RUN/export/model-int8.onnx: that
    run, checkpoint and precision on onnxruntime; onnx_backend.resolve). Attributes: image_shape (h, w) the
    network runs at (from the run's config.json), num_classes, class_names, task (what the run predicts:
    roadseg/task.py), prefix (the checkpoint), backend ('tensorflow' or 'onnxruntime'), precision ('fp32' or
    'bf16': cpu.choose_precision of precision, default auto; bf16=True is precision='bf16'; 'int8': the run's
    model-int8.onnx, on backend='onnxruntime' only), flip (average with the horizontally mirrored image:
    test-time augmentation, twice the work), model (that
    backend's TFGraph or OnnxRuntime), frozen (True when TensorFlow's frozen file was used), graph (the
    tf.Graph; None with onnxruntime). threads: intra-op threads (0: the engine's choice). Loading runs the
    graph the files contain: load only models you trust.
    """

    def __init__(self, run, which='best', threads=0, bf16=False, backend='auto', precision=None, flip=False):
        run, which, precision, backend = onnx_backend.resolve(run, which, 'bf16' if bf16 else precision, backend)
        self.prefix = find_checkpoint(run, which)
        self.image_shape = read_image_shape(run_folder(self.prefix))
        requested, info = precision or cpu.default_precision(), cpu.cpu_info()
        self.precision, self.precision_reason = cpu.choose_precision(requested, info)
        # bf16 is TensorFlow's rewrite: asked for, it rules out onnxruntime; chosen by auto, it prefers TensorFlow
        self.backend = onnx_backend.choose(backend, self.prefix, requested == 'bf16' or (
            self.precision == 'bf16' and backend == 'auto'), info=info, int8=self.precision == 'int8')
        if self.backend == 'onnxruntime':
            if self.precision != 'int8':
                self.precision, self.precision_reason = 'fp32', 'ONNX Runtime backend'
            self.model = onnx_backend.OnnxRuntime(self.prefix, self.image_shape, threads, self.precision)
        else:
            self.model = TFGraph(self.prefix, self.image_shape, threads, self.precision == 'bf16')
        self.flip = flip
        self.frozen = getattr(self.model, 'frozen', False)
        self.graph = getattr(self.model, 'graph', None)
        self.num_classes = self.model.num_classes
        root = run_folder(self.prefix)
        self.task = task.for_run(read_config(root), self.num_classes, os.path.join(root, CONFIG))
        self.class_names = list(self.task.class_names)

    def predict_iter(self, images, batch_size=4):
        """Yield (probabilities float32 (H, W, C), classes uint8 (H, W)) for each uint8 RGB (H, W, 3) image
        of an iterable (a stream: at most batch_size images are held), at each image's own size."""
        checked = (_checked(image, i) for i, image in enumerate(images))
        for probs in _predict(self._run, checked, self.image_shape, batch_size):
            yield probs, np.argmax(probs, axis=-1).astype(np.uint8)

    def _run(self, batch):
        """The backend on a float32 (n, h, w, 3) batch; with flip, the mean of it and of its mirror image."""
        probs = self.model.run(batch)
        if self.flip:
            probs = (probs + self.model.run(batch[:, :, ::-1])[:, :, ::-1]) / 2
        return probs

    def predict(self, images, batch_size=4):
        """Probabilities and classes at the input's size: an (H, W, 3) uint8 image gives ((H, W, C), (H, W));
        an (N, H, W, 3) array gives ((N, H, W, C), (N, H, W)); a list of images (any sizes) gives two lists.
        InputError for anything else, naming its dtype and shape."""
        if isinstance(images, np.ndarray) and images.ndim not in (3, 4):
            raise InputError('expected a uint8 RGB image (H, W, 3), a batch (N, H, W, 3) or a list of images, got '
                             '{} {}{}'.format(images.dtype, images.shape, ' (greyscale? np.stack([image] * 3, -1) '
                                              'makes it RGB)' if images.ndim == 2 else ''))
        if isinstance(images, np.ndarray) and images.ndim == 3:
            return next(self.predict_iter([images]))
        results = list(self.predict_iter(images, batch_size))
        probs, classes = [p for p, _ in results], [c for _, c in results]
        if isinstance(images, np.ndarray) and images.ndim == 4:
            if not results:
                return (np.zeros(images.shape[:3] + (self.num_classes,), np.float32),
                        np.zeros(images.shape[:3], np.uint8))
            return np.stack(probs), np.stack(classes)
        return probs, classes

    def close(self):
        self.model.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


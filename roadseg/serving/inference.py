"""Inference: the Python API (Segmenter) over TensorFlow or ONNX Runtime.

    from roadseg import Segmenter
    seg = Segmenter('runs/<timestamp>')           # its best/ checkpoint (or 'runs/<timestamp>/last', ...);
                                                  # backend='onnxruntime' for its ONNX export
    probs, decision = seg.predict(image)          # uint8 (H, W, 3) -> (H, W, C) float32 and the run's task's
                                                  # decision: (H, W) uint8 classes, or (H, W, C) bool masks

Importing this module loads no TensorFlow: a Segmenter chooses this CPU's inference settings (system/cpu.py)
when it is created, before TensorFlow is loaded. With TensorFlow the model runs in its own tf.Graph and Session:
a TF 2.x host program stays in eager mode.
"""
import os

import numpy as np

from ..model.names import IMAGE_INPUT, PROBABILITIES
from ..model.prediction import averaged_over_flips, check_flips, predict_resized
from ..runs import FROZEN
from ..system import cpu
from ..system.files import InputError
from . import onnx_backend


def _checked(image, index):
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError('image {}: expected uint8 RGB of shape (H, W, 3), got {} {}'.format(
            index, image.dtype, image.shape))
    return image


def run_flips(run, flip=None):
    """The test-time flips (prediction.FLIPS mode) of a runs.TrainedRun: flip when given (True: 'h', False:
    'none'), else the run's own (config.json's "flip"; 'none' for runs without one); InputError when they do
    not fit its image shape."""
    flips = {True: 'h', False: 'none', None: run.flips}.get(flip, flip)
    check_flips(flips, run.image_shape, '{}\'s image_shape'.format(run.config_path))
    return flips


class TFGraph:
    """The TensorFlow backend of Segmenter: run's (a runs.TrainedRun) frozen_inference.pb beside its checkpoint
    when it is newer, else the checkpoint's own .meta graph frozen in memory (its task's outputs), in its own
    tf.Graph and Session. Attributes: graph, sess, frozen (True when the frozen file was used), num_classes."""

    def __init__(self, run, task, threads=0, bf16=False):
        from ..model.freeze import read_frozen  # TensorFlow, loaded once Segmenter chose the settings
        from ..system.tfcompat import session_config, tf
        from .export import freeze_checkpoint
        prefix, image_shape = run.checkpoint, run.image_shape
        path = os.path.join(os.path.dirname(prefix), FROZEN)
        self.frozen = os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(prefix + '.index')
        graph_def = read_frozen(path) if self.frozen else None
        names = {n.name for n in graph_def.node} if graph_def is not None else set()
        if graph_def is not None and PROBABILITIES not in names:
            print('note: {} has no {} output (an older export); using the checkpoint'.format(path, PROBABILITIES))
            graph_def, self.frozen = None, False
        elif graph_def is not None and task.decision not in names:
            raise InputError('{} has no {} output: not a model of a {} run'.format(path, task.decision, task.name))
        if graph_def is None:
            graph_def = freeze_checkpoint(prefix, image_shape, task)
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
    best/ uses last/ with a note. run: a runs.TrainedRun, or a path to one (the run folder, RUN/best, RUN/last,
    a checkpoint prefix; which says the checkpoint of a run folder), or to an export's ONNX model
    (RUN/export/model-int8.onnx: that run, checkpoint and precision on onnxruntime; onnx_backend.resolve).
    Creating one applies this CPU's inference settings where TensorFlow is not loaded yet
    (cpu.choose_settings). Attributes: run (the TrainedRun), image_shape (h, w) the
    network runs at (from the run's config.json), num_classes, class_names, task (what the run predicts:
    roadseg/task/), prefix (the checkpoint), backend ('tensorflow' or 'onnxruntime'), precision ('fp32' or
    'bf16': cpu.choose_precision of precision, default auto; bf16=True is precision='bf16'; 'int8': the run's
    model-int8.onnx, on backend='onnxruntime' only), flips (test-time augmentation: the average over mirror
    images, model/prediction.py FLIPS: flip None is the run's own, config.json's "flip", else 'none'; True is
    'h', the horizontally mirrored image too, twice the work), model (that
    backend's TFGraph or OnnxRuntime), frozen (True when TensorFlow's frozen file was used), graph (the
    tf.Graph; None with onnxruntime). threads: intra-op threads (0: the engine's choice). Loading runs the
    graph the files contain: load only models you trust.
    """

    def __init__(self, run, which='best', threads=0, bf16=False, backend='auto', precision=None, flip=None):
        cpu.choose_settings('infer')  # before TensorFlow is loaded (a no-op once it is)
        run, precision, backend = onnx_backend.resolve(run, which, 'bf16' if bf16 else precision, backend)
        self.run, self.prefix, self.image_shape = run, run.checkpoint, run.image_shape
        self.task = run.task()
        self.flips = run_flips(run, flip)
        requested, info = precision or cpu.default_precision(), cpu.cpu_info()
        self.precision, self.precision_reason = cpu.choose_precision(requested, info)
        # bf16 is TensorFlow's rewrite: asked for, it rules out onnxruntime; chosen by auto, it prefers TensorFlow
        self.backend = onnx_backend.choose(backend, run, requested == 'bf16' or (
            self.precision == 'bf16' and backend == 'auto'), info=info, int8=self.precision == 'int8')
        if self.backend == 'onnxruntime':
            if self.precision != 'int8':
                self.precision, self.precision_reason = 'fp32', 'ONNX Runtime backend'
            self.model = onnx_backend.OnnxRuntime(run, threads, self.precision)
        else:
            self.model = TFGraph(run, self.task, threads, self.precision == 'bf16')
        self.frozen = getattr(self.model, 'frozen', False)
        self.graph = getattr(self.model, 'graph', None)
        self.num_classes = self.model.num_classes
        if self.num_classes != self.task.num_classes:
            self.close()
            raise InputError('{}: the model gives {} classes, its run\'s config.json names {} ({} run)'.format(
                self.prefix, self.num_classes, self.task.num_classes, self.task.name))
        self.class_names = list(self.task.class_names)
        self._averaged = averaged_over_flips(self.model.run, self.flips)

    def predict_iter(self, images, batch_size=4):
        """Yield (probabilities float32 (H, W, C), the task's decision: classes uint8 (H, W) or masks bool
        (H, W, C)) for each uint8 RGB (H, W, 3) image of an iterable (a stream: at most batch_size images are
        held), at each image's own size."""
        checked = (_checked(image, i) for i, image in enumerate(images))
        for probs in predict_resized(self._run, checked, self.image_shape, batch_size):
            yield probs, self.task.decide(probs)

    def _run(self, batch):
        """The backend on a float32 (n, h, w, 3) batch at the network's size, averaged over the run's flips."""
        return self._averaged(batch)

    def predict(self, images, batch_size=4):
        """Probabilities and the task's decision at the input's size: an (H, W, 3) uint8 image gives ((H, W, C),
        (H, W) classes or (H, W, C) masks); an (N, H, W, 3) array gives them stacked; a list of images (any
        sizes) gives two lists. InputError for anything else, naming its dtype and shape."""
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
                empty = np.zeros(images.shape[:3] + (self.num_classes,), np.float32)
                return empty, self.task.decide(empty)
            return np.stack(probs), np.stack(classes)
        return probs, classes

    def close(self):
        self.model.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


"""The models bench/benchmark.py times, each in its own tf.Graph and session: the project's training graph
(TFModel), its frozen graph as Segmenter loads it (Frozen), its ONNX Runtime backend (OrtBackend); and the
interleaved timing of their calls."""
import os
import statistics
import time

from roadseg import runs, task
from roadseg.model import freeze, graph as model_graph, heads
from roadseg.serving import inference, onnx_backend
from roadseg.system.tfcompat import session_config, tf
import main

DECODER = {'l2_scale': 1e-3, 'skip_scaling': False}  # the training defaults (FCN-8s)


class TFModel:
    """The project's training graph (model/graph.py) on a random VGG SavedModel, in its own tf.Graph."""

    def __init__(self, vgg_path, threads, inter, bf16=False, decoder='fcn8'):
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.sess = tf.Session(graph=self.graph, config=session_config(threads, inter, bf16))
            tf.set_random_seed(0)
            net = model_graph.build(main, self.sess, vgg_path, dict(DECODER, decoder=decoder), task.kitti())
            self.image, self.keep_prob, self.label, self.lr = net.image_input, net.keep_prob, net.correct_label, \
                net.learning_rate
            self.train_op, self.loss, self.prob = net.train_op, net.loss, net.probabilities

    def train_step(self, images, labels):
        with self.graph.as_default():
            feed = {self.image: images, self.label: labels, self.keep_prob: 0.5, self.lr: 1e-4}
            start = time.perf_counter()
            self.sess.run(self.train_op, feed)
            return time.perf_counter() - start

    def forward(self, images):
        with self.graph.as_default():
            feed = {self.image: images, self.keep_prob: 1.0}
            start = time.perf_counter()
            self.sess.run(self.prob, feed)
            return time.perf_counter() - start

    def export(self, folder, image_shape):
        """Checkpoint + frozen graph in a run folder, as training writes them."""
        os.makedirs(os.path.join(folder, 'best'))
        with self.graph.as_default():
            tf.train.Saver().save(self.sess, os.path.join(folder, 'best', 'model'))
            freeze.write_frozen(self.sess, os.path.join(folder, 'best', runs.FROZEN), task.kitti(), image_shape)
        runs.write_config(folder, {'image_shape': list(image_shape)})


class Frozen:
    """The frozen graph as the product loads it (inference.Segmenter), in a session with these settings."""

    def __init__(self, folder, threads, inter, bf16=False):
        model = inference.Segmenter(folder, backend='tensorflow', precision='fp32')
        assert model.frozen
        model.close()
        self.graph = model.graph
        self.image = self.graph.get_tensor_by_name(heads.IMAGE_INPUT + ':0')
        self.prob = self.graph.get_tensor_by_name(heads.PROBABILITIES + ':0')
        self.sess = tf.Session(graph=self.graph, config=session_config(threads, inter, bf16))

    def forward(self, images):
        with self.graph.as_default():
            start = time.perf_counter()
            self.sess.run(self.prob, {self.image: images})
            return time.perf_counter() - start


class OrtBackend:
    """The product's ONNX Runtime backend (onnx_backend.OnnxRuntime) on the folder's export of precision."""

    def __init__(self, folder, threads, precision='fp32'):
        self.model = onnx_backend.OnnxRuntime(runs.TrainedRun(folder), threads, precision)

    def forward(self, images):
        start = time.perf_counter()
        self.model.run(images)
        return time.perf_counter() - start


def timed(fn, runs, warmup=1):
    for _ in range(warmup):
        fn()
    return statistics.median(fn() for _ in range(runs))


def interleaved(contenders, repeats, runs):
    """{name: [seconds per round]} over repeats rounds of A B A B ..., each a median of `runs` calls."""
    per_round = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, (_, _, fn) in contenders.items():
            per_round[name].append(timed(fn, runs))
    return per_round

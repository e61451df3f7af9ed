"""Inference: the road-probability op, batched prediction at any frame size, overlays, loading a trained model."""
import glob
import json
import os

import numpy as np

from .files import InputError, first_line, write_bytes_atomic
from .kitti import resize_prob, resize_rgb
from .tfcompat import session_config, tf

ROAD_PROB = 'road_prob'
FROZEN = 'frozen_inference.pb'


def road_probability_op(logits, image_pl):
    """(N, H, W) road probability from (pixels, classes) logits; built once per graph, then reused."""
    graph = logits.graph
    try:
        return graph.get_tensor_by_name(ROAD_PROB + ':0')
    except KeyError:
        pass
    with graph.as_default():
        prob = tf.nn.softmax(logits)[:, 1]
        return tf.reshape(prob, tf.shape(image_pl)[:3], name=ROAD_PROB)


def predict_road(sess, road_prob, image_pl, images, image_shape, batch_size=4, feed=None):
    """Road probabilities for uint8 RGB frames of any size.

    images: iterable of (H_i, W_i, 3) uint8; each is resized to image_shape (h, w) for the network and
    its probability map is resized back to (H_i, W_i). Yields float32 maps, one per image, in order.
    """
    feed = dict(feed or {})
    batch = []

    def flush():
        net_in = np.stack([resize_rgb(im, image_shape) for im in batch]).astype(np.float32)
        feed[image_pl] = net_in
        probs = sess.run(road_prob, feed)
        for im, p in zip(batch, probs):
            yield resize_prob(p, im.shape[:2])

    for image in images:
        batch.append(image)
        if len(batch) == batch_size:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def overlay(image, prob, threshold=0.5, color=(0, 255, 0), alpha=0.5):
    """uint8 RGB image with pixels whose prob > threshold blended toward color (translucent)."""
    out = image.astype(np.float32)
    road = prob > threshold
    out[road] = (1 - alpha) * out[road] + alpha * np.asarray(color, np.float32)
    return out.astype(np.uint8)


class TrainedModel:
    """A trained model loaded for inference: the frozen graph beside the checkpoint when it is current,
    else the checkpoint's own graph (.meta) with its weights restored.

    Loading runs the graph the files contain: load only models you trust.
    """

    def __init__(self, path, which='best', threads=0, bf16=False):
        prefix = find_checkpoint(path, which)
        config_path = os.path.join(os.path.dirname(os.path.dirname(prefix)), 'config.json')
        self.image_shape = (160, 576)
        if os.path.exists(config_path):
            with open(config_path) as f:
                self.image_shape = tuple(json.load(f)['image_shape'])
        frozen = os.path.join(os.path.dirname(prefix), FROZEN)
        self.frozen = os.path.exists(frozen) and os.path.getmtime(frozen) >= os.path.getmtime(prefix + '.index')
        self.graph = tf.Graph()
        self.sess = tf.Session(graph=self.graph, config=session_config(threads, bf16=bf16))
        try:
            with self.graph.as_default():
                if self.frozen:
                    graph_def = tf.GraphDef()
                    with open(frozen, 'rb') as f:
                        graph_def.ParseFromString(f.read())
                    tf.import_graph_def(graph_def, name='')
                else:
                    saver = tf.train.import_meta_graph(prefix + '.meta', clear_devices=True)
                    saver.restore(self.sess, prefix)
                self.image_pl = self.graph.get_tensor_by_name('image_input:0')
                self.road_prob = self.graph.get_tensor_by_name(ROAD_PROB + ':0')
        except (KeyError, ValueError, OSError, tf.errors.OpError) as e:
            self.sess.close()
            raise InputError('cannot load model {}: {}'.format(frozen if self.frozen else prefix, first_line(e)))
        self.prefix = prefix

    def predict(self, images, batch_size=4):
        return predict_road(self.sess, self.road_prob, self.image_pl, images, self.image_shape, batch_size)

    def close(self):
        self.sess.close()


def export_frozen(m, path, which='best'):
    """Freeze a run's checkpoint into <checkpoint folder>/frozen_inference.pb; returns its path.

    The graph is rebuilt for inference (no dropout ops, no optimizer, no placeholders but image_input)
    from the checkpoint's variable shapes, weights become constants; TensorFlow's graph optimizer folds
    constants when a session loads it. m: the main module (its layers() builds the decoder).
    In: image_input float (N, H, W, 3) RGB 0..255. Out: road_prob float (N, H, W).
    """
    from .vgg import vgg16_encoder
    prefix = find_checkpoint(path, which)
    shapes = dict(tf.train.list_variables(prefix))
    try:
        widths = tuple(shapes['conv{}_1/filter'.format(b)][-1] for b in range(1, 6))
        fc6 = shapes['fc6/filter']
        num_classes = shapes['decoder/score7/kernel'][-1]
    except KeyError as e:
        raise InputError('{} is not an FCN-8s checkpoint of this project (no {})'.format(prefix, e))
    config_path = os.path.join(os.path.dirname(os.path.dirname(prefix)), 'config.json')
    skip_scaling = False
    if os.path.exists(config_path):
        with open(config_path) as f:
            skip_scaling = json.load(f).get('skip_scaling', False)
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        image_input = tf.placeholder(tf.float32, [None, None, None, 3], name='image_input')
        net, ends = vgg16_encoder(image_input, None, widths, fc6[-1], fc6[0])
        out = m.layers(ends['pool3'], ends['pool4'], net, num_classes, skip_scaling=skip_scaling,
                       crop_to=image_input)
        road_probability_op(tf.reshape(out, (-1, num_classes)), image_input)
        tf.train.Saver(tf.global_variables()).restore(sess, prefix)
        frozen = tf.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), [ROAD_PROB])
    out_path = os.path.join(os.path.dirname(prefix), FROZEN)
    write_bytes_atomic(out_path, frozen.SerializeToString())
    return out_path


def find_checkpoint(path, which='best'):
    """Checkpoint prefix from a run folder (its best/ or last/ checkpoint), a checkpoint folder or a prefix."""
    if path is None:
        raise InputError('no checkpoint given: pass --checkpoint runs/<timestamp>')
    candidates = [os.path.join(path, which), os.path.join(path, 'last'), path]
    for folder in candidates:
        if os.path.isdir(folder):
            prefix = tf.train.latest_checkpoint(folder)
            if prefix:
                return prefix
            # a folder moved after training: its `checkpoint` file names the old place
            indexes = sorted(glob.glob(os.path.join(folder, '*.index')), key=os.path.getmtime)
            if indexes and os.path.exists(indexes[-1][:-len('.index')] + '.meta'):
                return indexes[-1][:-len('.index')]
    if os.path.exists(path + '.index') and os.path.exists(path + '.meta'):
        return path
    raise InputError('no checkpoint found at {} (expected a training run folder with best/ or last/)'
                     .format(path))

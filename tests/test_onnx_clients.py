"""model.onnx in ONNX clients beyond ONNX Runtime: OpenCV's DNN module (cv2.dnn), on a model that has learned.

The model learns a colour rule (road where blue > red), so its answers depend on the channel order that the
export folds into conv1_1 (roadseg/serving/channel_flip.py): a wrong flip changes the probabilities.
"""
import collections

import numpy as np
import pytest

import project_tests
from roadseg import task
from roadseg.model import graph as model_graph, heads
from roadseg.model.freeze import freeze
from roadseg.serving import channel_flip, export
from roadseg.system.tfcompat import tf
import main

TRAIN_SIZE = (64, 96)
SIZES = (TRAIN_SIZE, (50, 70))  # 50x70: pools round up, the transposed convolutions get uneven pads
# what the export may hold: ops that ONNX Runtime, OpenCV's DNN module and other common clients all run, and
# ONNX Runtime runs fast (no Softmax: over the class axis of (N, C, H, W) it takes longer than the whole decoder)
COMMON_OPS = {'Conv', 'Relu', 'MaxPool', 'ConvTranspose', 'Add', 'Sub', 'Slice', 'Transpose', 'ReduceMax', 'Exp',
              'ReduceSum', 'Div', 'ArgMax', 'Cast'}


def colour_images(rng, n, size=TRAIN_SIZE, block=8):
    """(float32 (n, h, w, 3) RGB 0..255 images of random 8x8 colour blocks, uint8 (n, h, w) 1 where blue > red)."""
    h, w = size
    blocks = rng.uniform(0, 255, (n, -(-h // block), -(-w // block), 3)).astype(np.float32)
    images = blocks.repeat(block, 1).repeat(block, 2)[:, :h, :w]
    return images, (images[..., 2] > images[..., 0]).astype(np.uint8)


@pytest.fixture(scope='module')
def learned():
    """{(h, w): frozen GraphDef at that size} of the project's training graph on the tiny encoder, trained on
    the colour rule until it gets 90% of a held-out batch right."""
    rng = np.random.RandomState(0)
    held_out = colour_images(np.random.RandomState(9), 4)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        tf.set_random_seed(0)
        net = model_graph.build(main, sess, project_tests.tiny_vgg_path(), {'l2_scale': 0.0, 'skip_scaling': False},
                                task.kitti())
        accuracy = 0.0
        for _ in range(20):  # rounds of 20 steps: about 5 on either stack
            for _ in range(20):
                images, labels = colour_images(rng, 4)
                sess.run(net.train_op, {net.image_input: images, net.correct_label: np.eye(2, dtype=np.float32)[labels],
                                        net.keep_prob: 0.5, net.learning_rate: 3e-3})
            probs = sess.run(net.probabilities, {net.image_input: held_out[0], net.keep_prob: 1.0})
            accuracy = np.mean(np.argmax(probs, -1) == held_out[1])
            if accuracy >= 0.9:
                break
        assert accuracy >= 0.9, 'the colour rule is learned'
        return {size: freeze(sess, task.kitti(), size) for size in SIZES}


def run_tf(graph_def, images):
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name='')
        with tf.Session(graph=graph) as sess:
            return sess.run([heads.PROBABILITIES + ':0', heads.CLASSES + ':0'], {heads.IMAGE_INPUT + ':0': images})


@pytest.fixture(scope='module')
def exported(learned, tmp_path_factory):
    """{(h, w): path of model.onnx written by export.write_onnx from the learned frozen graph}."""
    folder = tmp_path_factory.mktemp('onnx')
    return {size: export.write_onnx(graph_def, str(folder / 'model-{}x{}.onnx'.format(*size)), task.kitti())
            for size, graph_def in learned.items()}


def check_against_tf(graph_def, run, size, n=3):
    """run(images) -> (probabilities, classes) against the frozen graph on a batch of n (not the pinned 2)."""
    images, labels = colour_images(np.random.RandomState(1), n, size)
    want, want_classes = run_tf(graph_def, images)
    probs, classes = run(images)
    assert probs.shape == want.shape and classes.shape == want_classes.shape and classes.dtype == np.uint8
    assert 0.2 < want_classes.mean() < 0.8 and np.mean(want_classes == labels) > 0.8, 'a model that has learned'
    diff = np.abs(probs - want).max()
    print('max abs difference from TensorFlow: {:.2e}'.format(diff))
    assert diff < 1e-4
    assert np.mean(classes == want_classes) >= 0.999


@pytest.mark.parametrize('size', SIZES)
def test_export_holds_only_common_ops(exported, size):
    """No ReverseSequence, no shape arithmetic, no dropout, one Transpose in and one out, one Cast (classes),
    a Slice only where the output is cropped to a size that is not a multiple of 8; the softmax in elementwise
    ops and the mean subtracted from the input as a row of the image's width (ONNX Runtime broadcasts a (3,)
    vector 3 values at a time)."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(exported[size])
    ops = collections.Counter(n.op_type for n in model.graph.node)
    assert set(ops) <= COMMON_OPS, sorted(set(ops) - COMMON_OPS)
    assert ops['Transpose'] == 2 and ops['Cast'] == 1 and ops['Conv'] == 18 and ops['ConvTranspose'] == 3
    assert ops['Exp'] == 1 and ops['Div'] == 1
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    mean, = [constants[n.input[1]] for n in model.graph.node if n.op_type == 'Sub' and n.input[0] == 'image_input']
    assert mean.shape == (size[1], 3) and np.all(mean == mean[0])
    assert ops['Slice'] == (0 if size == TRAIN_SIZE else 1)
    dims = {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
            for v in list(model.graph.input) + list(model.graph.output)}
    assert dims == {'image_input': ['N'] + list(size) + [3], 'probabilities': ['N'] + list(size) + [2],
                    'classes': ['N'] + list(size)}


@pytest.mark.parametrize('size', SIZES)
def test_onnxruntime_matches_tensorflow(learned, exported, size):
    import onnxruntime
    session = onnxruntime.InferenceSession(exported[size], providers=['CPUExecutionProvider'])
    check_against_tf(learned[size], lambda x: session.run(['probabilities', 'classes'], {'image_input': x}), size)


def run_cv2(path):
    """images -> (probabilities, classes) of the ONNX model at path in OpenCV's DNN module."""
    cv2 = pytest.importorskip('cv2')
    net = cv2.dnn.readNetFromONNX(path)

    def run(images):
        net.setInput(images, 'image_input')
        return net.forward(['probabilities', 'classes'])
    return run


@pytest.mark.parametrize('size', SIZES)
def test_opencv_dnn_matches_tensorflow(learned, exported, size):
    check_against_tf(learned[size], run_cv2(exported[size]), size)


def flip_graph(gather):
    """A frozen graph like the encoder's input (BGR flip, mean, 3x3 conv) ending in the two heads; with
    gather, the flipped image also scales the conv's input, which no constant can absorb."""
    rng = np.random.RandomState(2)
    with tf.Graph().as_default() as graph:
        image = tf.placeholder(tf.float32, (None,) + TRAIN_SIZE + (3,), name=heads.IMAGE_INPUT)
        bgr = tf.reverse(image, axis=[-1])
        net = bgr - tf.constant([100.0, 110.0, 120.0])
        if gather:
            net = net * (bgr / 255.0)
        logits = tf.nn.conv2d(net / 64.0, tf.constant(rng.normal(0, 1, (3, 3, 3, 2)).astype(np.float32)),
                              [1, 1, 1, 1], 'SAME')
        heads.add_inference_outputs(logits, task.kitti())
        return graph.as_graph_def()


@pytest.mark.parametrize('gather', [False, True], ids=['folded', 'gather'])
def test_channel_flip_rewrite(tmp_path, gather):
    """The flip leaves the TF graph (folded into the constants, or a GatherV2) with the same outputs, and the
    ONNX model runs in ONNX Runtime and OpenCV like TensorFlow."""
    import onnxruntime
    graph_def = flip_graph(gather)
    outputs = [heads.PROBABILITIES, heads.CLASSES]
    rewritten = channel_flip.fold_channel_flips(graph_def, outputs)
    ops = collections.Counter(n.op for n in rewritten.node)
    assert ops['ReverseV2'] == 0 and ops['GatherV2'] == (1 if gather else 0)
    images = np.random.RandomState(3).uniform(0, 255, (3,) + TRAIN_SIZE + (3,)).astype(np.float32)
    want = run_tf(graph_def, images)
    got = run_tf(rewritten, images)
    assert np.abs(got[0] - want[0]).max() < 1e-5 and want[0].std() > 0.1
    path = export.write_onnx(graph_def, str(tmp_path / 'flip.onnx'), task.kitti())
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    for run in (lambda x: session.run(outputs, {'image_input': x}), run_cv2(path)):
        probs, classes = run(images)
        assert np.abs(probs - want[0]).max() < 1e-4
        assert np.mean(classes == want[1]) >= 0.999


def test_batch_computing_graph_keeps_its_batch(tmp_path):
    """A graph whose outputs are computed with the batch (a run from before `probabilities`: its logits
    reshaped by the input's shape) is converted with a dynamic batch, not the batch it was folded at."""
    import onnxruntime
    rng = np.random.RandomState(4)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        image_input, _, out, pretrained = project_tests.tiny_fcn(sess)
        label = tf.placeholder(tf.float32, [None, None, None, 2])
        _, train_op, _ = main.optimize(out, label, 1e-2, 2)
        project_tests.init_new_variables(sess, pretrained)
        for _ in range(3):
            images, labels = colour_images(rng, 2)
            sess.run(train_op, {image_input: images, label: np.eye(2, dtype=np.float32)[labels]})
        assert heads.PROBABILITIES not in {n.name for n in graph.as_graph_def().node}
        graph_def = freeze(sess, task.kitti(), TRAIN_SIZE, source='old run')  # probabilities from logits:0
    path = export.write_onnx(graph_def, str(tmp_path / 'old.onnx'), task.kitti())
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    images, _ = colour_images(rng, 3)
    probs, _ = session.run(['probabilities', 'classes'], {'image_input': images})
    want, _ = run_tf(graph_def, images)
    assert probs.shape == (3,) + TRAIN_SIZE + (2,) and want.std() > 1e-3
    assert np.abs(probs - want).max() < 1e-4


@pytest.mark.parametrize('axis', [1, -1])
def test_softmax_as_elementwise_is_the_softmax(axis):
    """The elementwise softmax equals ONNX's Softmax over that axis, on logits far past exp's float32 range."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper
    from roadseg.serving.onnx_export import softmax_as_elementwise
    shape = [2, 11, 5, 7]
    graph = helper.make_graph([helper.make_node('Softmax', ['x'], ['y'], axis=axis)], 'softmax',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 7
    rewritten = softmax_as_elementwise(onnx.ModelProto.FromString(model.SerializeToString()), 13)
    onnx.checker.check_model(rewritten)
    assert 'Softmax' not in {n.op_type for n in rewritten.graph.node}
    x = np.random.RandomState(5).normal(0, 300, shape).astype(np.float32)
    want, got = (onnxruntime.InferenceSession(m.SerializeToString(), providers=['CPUExecutionProvider']).run(
        ['y'], {'x': x})[0] for m in (model, rewritten))
    assert np.all(np.isfinite(got)) and np.abs(got - want).max() < 1e-6

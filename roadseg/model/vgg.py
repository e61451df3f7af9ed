"""The VGG16 encoder's graph (TF-slim style) and its SavedModel (tag `vgg16`): written from given weights, loaded,
validated, its named stages found. Which weights it is built from: roadseg/model/vgg_sources.py."""
import os
import shutil
import tempfile

from ..system.tfcompat import tf

from ..system.crossstack import meta_graph_writer, missing_in_this_tensorflow, not_loadable
from ..system.files import InputError, first_line
from .names import ENCODER_OUTPUTS, IMAGE_INPUT, KEEP_PROB, STAGES, VGG_SOURCE, VGG_TENSORS, stage_output
from .vgg_weights import CONVS_PER_BLOCK

HED_PREPROCESSING = ('BGR', (104.00699, 116.66877, 122.67892))  # the offline weights' (vgg_sources.py), the default
TAG = 'vgg16'
VGG16_WIDTHS = (64, 128, 256, 512, 512)


def _conv(net, name, shape, initializer, end_points, relu=True):
    with tf.variable_scope(name):
        w = tf.get_variable('filter', shape, initializer=initializer)
        b = tf.get_variable('biases', shape[-1:], initializer=tf.zeros_initializer())
        net = tf.nn.bias_add(tf.nn.conv2d(net, w, [1, 1, 1, 1], 'SAME'), b)
        if relu:
            net = tf.nn.relu(net)
    end_points[name] = net
    return net


def vgg16_encoder(image_input, keep_prob, widths=VGG16_WIDTHS, fc_width=1024, fc6_kernel=3,
                  preprocessing=HED_PREPROCESSING):
    """VGG16 conv1_1..pool5 plus fc6/fc7 as convolutions, TF-slim style.

    image_input: float (N, H, W, 3) RGB in 0..255; preprocessing happens here: ('BGR' or 'RGB', mean), the
    channel order conv1_1 takes and the per-channel mean subtracted in that order (the weights' convention).
    keep_prob: dropout keep probability after fc6 and fc7 (a tensor), or None for no dropout ops.
    Returns (net, end_points): net is fc7 after ReLU and dropout (N, H/32, W/32, fc_width);
    end_points has every conv, pool1..pool5, fc6, fc7. Pools are 2x2/2 SAME, so any size works.
    """
    end_points = {}
    order, mean = preprocessing
    net = tf.reverse(image_input, axis=[-1]) if order == 'BGR' else image_input
    net, channels = net - tf.constant(mean, tf.float32), 3
    he = tf.variance_scaling_initializer(2.0, 'fan_in', 'truncated_normal')
    for b, (n, width) in enumerate(zip(CONVS_PER_BLOCK, widths), start=1):
        for i in range(n):
            net = _conv(net, 'conv{}_{}'.format(b, i + 1), [3, 3, channels, width], he, end_points)
            channels = width
        net = tf.nn.max_pool(net, [1, 2, 2, 1], [1, 2, 2, 1], 'SAME', name='pool{}'.format(b))
        end_points['pool{}'.format(b)] = net
    net = _conv(net, 'fc6', [fc6_kernel, fc6_kernel, channels, fc_width], he, end_points)
    if keep_prob is not None:
        net = tf.nn.dropout(net, rate=1.0 - keep_prob)
    net = _conv(net, 'fc7', [1, 1, fc_width, fc_width], he, end_points)
    if keep_prob is not None:
        net = tf.nn.dropout(net, rate=1.0 - keep_prob)
    return net, end_points


def build_vgg_savedmodel(export_dir, weights=None, widths=VGG16_WIDTHS, fc_width=1024, fc6_kernel=3, seed=0,
                         preprocessing=HED_PREPROCESSING, source='random (He-initialised)'):
    """Write the encoder as a SavedModel with tag `vgg16` to export_dir (built beside it, then renamed).

    weights: {'conv1_1': (kernel, bias), ...} for any of conv1_1..conv5_3, fc6, fc7 (the rest He-random),
    or None for all random (tests). The graph has image_input (float RGB 0..255), keep_prob (default 1.0),
    layer3_out = pool3, layer4_out = pool4, layer7_out = fc7 output, the stages by name (conv1_2_out ..
    pool5_out, roadseg/model/heads.py), all variables trainable, and
    vgg_source, a string constant: `source`, one line naming the weights. Both stacks write the same graph,
    which both load: reference variables and no attrs at their defaults (roadseg/system/crossstack.py).
    """
    export_dir = os.path.abspath(export_dir)
    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    tmp_root = tempfile.mkdtemp(dir=parent, prefix='.' + os.path.basename(export_dir) + '.building-')
    tmp = os.path.join(tmp_root, 'model')
    try:
        graph = tf.Graph()
        with graph.as_default(), tf.variable_scope(tf.get_variable_scope(), use_resource=False):
            tf.set_random_seed(seed)
            image_input = tf.placeholder(tf.float32, [None, None, None, 3], name=IMAGE_INPUT)
            keep_prob = tf.placeholder_with_default(1.0, [], name=KEEP_PROB)
            net, ends = vgg16_encoder(image_input, keep_prob, widths, fc_width, fc6_kernel, preprocessing)
            tf.constant(source, name=VGG_SOURCE)
            for end, name in zip((ends['pool3'], ends['pool4'], net), ENCODER_OUTPUTS):
                tf.identity(end, name=name)
            for stage in STAGES:
                tf.identity(ends[stage], name=stage_output(stage))
            with tf.Session(graph=graph) as sess:
                sess.run(tf.global_variables_initializer())
                if weights is not None:
                    with tf.variable_scope('', reuse=True):
                        for name, (kernel, bias) in weights.items():
                            tf.get_variable(name + '/filter').load(kernel, sess)
                            tf.get_variable(name + '/biases').load(bias, sess)
                builder = tf.saved_model.builder.SavedModelBuilder(tmp)
                builder.add_meta_graph_and_variables(sess, [TAG], strip_default_attrs=True)
                builder.save()
        if os.path.exists(export_dir):
            shutil.rmtree(export_dir)
        os.rename(tmp, export_dir)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return export_dir


def validate_vgg_savedmodel(vgg_path):
    """Raise InputError unless vgg_path is a loadable SavedModel with tag vgg16 and the five tensors.
    Returns {'fc_width': channels of layer7_out, 'fc6_kernel': fc6's kernel size where known,
    'source': the recorded weight source}."""
    if not os.path.isdir(vgg_path):
        raise InputError('VGG SavedModel folder not found: {}'.format(vgg_path))
    variables = os.path.join(vgg_path, 'variables')
    needed = [os.path.join(vgg_path, 'saved_model.pb'), os.path.join(variables, 'variables.index')]
    for path in needed:
        if not os.path.isfile(path):
            raise InputError('incomplete VGG SavedModel: {} is missing (delete {} to rebuild it)'
                             .format(path, vgg_path))
    if not any(f.startswith('variables.data-') for f in os.listdir(variables)):
        raise InputError('incomplete VGG SavedModel: no variables.data-* in {} (delete {} to rebuild it)'
                         .format(variables, vgg_path))
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        tensors = load_vgg_tensors(sess, vgg_path)
        fc6 = [v for v in tf.global_variables() if v.op.name == 'fc6/filter']
        try:
            source = sess.run(graph.get_tensor_by_name(VGG_SOURCE + ':0')).decode('utf-8')
        except KeyError:
            source = 'not recorded (a SavedModel made elsewhere or before sources were recorded)'
        return {'fc_width': tensors[4].shape[-1], 'fc6_kernel': fc6[0].shape[0] if fc6 else None, 'source': source}


def load_vgg_tensors(sess, vgg_path):
    """tf.saved_model.loader.load + the five tensors, with InputError naming what is wrong.

    The variables sess.graph gets afterwards (decoder, optimizer, counters) are reference variables like the
    encoder's, on both stacks, so the graph's checkpoints load in either (roadseg/system/crossstack.py).
    """
    try:
        tf.saved_model.loader.load(sess, [TAG], vgg_path)
    except Exception as e:  # TF raises RuntimeError, ValueError, OSError or DecodeError here
        if missing_in_this_tensorflow(e):
            raise not_loadable(os.path.join(vgg_path, 'saved_model.pb'), e,
                               meta_graph_writer(os.path.join(vgg_path, 'saved_model.pb')),
                               'delete {} to rebuild it; this release writes it for both stacks'.format(vgg_path))
        raise InputError('cannot load VGG SavedModel {} with tag "{}": {}'.format(vgg_path, TAG, first_line(e)))
    graph = sess.graph
    with graph.as_default():
        tf.get_variable_scope().set_use_resource(False)
    tensors = []
    for name in VGG_TENSORS:
        try:
            tensors.append(graph.get_tensor_by_name(name))
        except KeyError:
            raise InputError('VGG SavedModel {} has no tensor {}'.format(vgg_path, name))
    return tuple(tensors)


def missing_stage(vgg_path, stage):
    """The InputError for an encoder SavedModel built before its stages had names."""
    return InputError('{} has no encoder stage {} (built by an older release): delete it, or pass another --vgg-dir, '
                      'to rebuild it with the stages this decoder needs'.format(vgg_path, stage))


def check_stages(vgg_path, stages):
    """InputError (missing_stage) unless the valid SavedModel at vgg_path names every one of stages; reads only
    its graph, before anything is built."""
    from tensorflow.core.protobuf import saved_model_pb2  # after tfcompat: TensorFlow imported quietly
    model = saved_model_pb2.SavedModel()
    with open(os.path.join(vgg_path, 'saved_model.pb'), 'rb') as f:
        model.ParseFromString(f.read())
    names = {node.name for node in model.meta_graphs[0].graph_def.node}
    for stage in stages:
        if stage_output(stage) not in names:
            raise missing_stage(vgg_path, stage)


def encoder_stages(graph, vgg_path, stages):
    """{stage: tensor} of the loaded encoder's stages (names in names.STAGES); InputError (missing_stage) when
    vgg_path was built before the SavedModel named them."""
    found = {}
    for stage in stages:
        try:
            found[stage] = graph.get_tensor_by_name(stage_output(stage) + ':0')
        except KeyError:
            raise missing_stage(vgg_path, stage)
    return found

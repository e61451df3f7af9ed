"""The training and inference graph, built once: the model's load_vgg + layers (main.py's Udacity functions, or
any module with them), the run's task's labels, loss (a softmax task's is the model's optimize) and inference
heads, and the run's own counters."""
import collections

from ..system.files import InputError
from ..system.tfcompat import tf
from . import decoders
from .heads import add_inference_outputs
from .names import FULL_LADDER, LADDERS, SKIP_SCALING, decoder_of
from .vgg import encoder_stages

TrainingGraph = collections.namedtuple('TrainingGraph', [
    'image_input', 'keep_prob', 'correct_label', 'learning_rate',  # what a training step feeds
    'logits', 'train_op', 'loss', 'probabilities',                  # the task's training ops and inference head
    'epochs_done', 'best_metric', 'step',                           # the run's counters, saved with the weights
    'set_epochs', 'set_best', 'value',                              # assign ops of the counters, fed `value`
    'num_classes', 'model_vars'])                                   # model_vars: every weight, frozen ones too


def build(model, sess, vgg_path, decoder, task, class_weights=None, wrap_optimizer=None):
    """Build the graph in sess.graph and initialise what is new (the loaded encoder keeps its weights).

    model: a module with load_vgg, layers and optimize (main); decoder: the run's settings l2_scale,
    skip_scaling and optional decoder (roadseg/model/decoders.py; default fcn8; the FCN ones are model.layers'
    variants), ladder_stages (U-Net and LinkNet; default FULL_LADDER) and freeze_blocks (0-5); task: the run's
    (roadseg/task/), which gives the label placeholders (correct_label), the loss and the inference heads.
    class_weights, wrap_optimizer: the loss's options (a Udacity optimize() gets them only when set). Returns a
    TrainingGraph.
    """
    name = decoder_of(decoder)
    if name not in decoders.DECODERS:
        raise InputError('unknown decoder {!r}; one of {}'.format(name, ', '.join(decoders.DECODERS)))
    image_input, keep_prob, layer3, layer4, layer7 = model.load_vgg(sess, vgg_path)
    pretrained = set(tf.global_variables())
    frozen = freeze_blocks(decoder.get('freeze_blocks', 0))
    num_classes = task.num_classes
    correct_label = task.label_input()
    learning_rate = tf.placeholder(tf.float32, [], name='learning_rate')
    if name in decoders.FCN:
        output = model.layers(layer3, layer4, layer7, num_classes, l2_scale=decoder['l2_scale'],
                              skip_scaling=decoder['skip_scaling'], crop_to=image_input, variant=int(name[3:]))
    else:
        end_points = dict(encoder_stages(sess.graph, vgg_path, decoders.NEEDS[name]), pool3=layer3, pool4=layer4,
                          fc7=layer7)
        options = {'skip_scaling': decoder['skip_scaling']} if name in SKIP_SCALING else {}
        if name in LADDERS:
            options['stages'] = decoder.get('ladder_stages', FULL_LADDER)
        output, _ = decoders.DECODERS[name](end_points, num_classes, keep_prob=keep_prob,
                                            l2_scale=decoder['l2_scale'], crop_to=image_input, **options)
    model_vars = tf.trainable_variables() + frozen  # what best/ holds: every weight of the model
    logits, train_op, loss = task.train_ops(model, output, correct_label, learning_rate, class_weights, wrap_optimizer)
    probabilities, _ = add_inference_outputs(output, task)
    epochs_done = tf.Variable(0, trainable=False, name='epochs_done')
    best_metric = tf.Variable(-1.0, trainable=False, name='best_val_iou')
    value = tf.placeholder(tf.float32, [])
    sess.run(tf.variables_initializer([v for v in tf.global_variables() if v not in pretrained]))
    return TrainingGraph(image_input, keep_prob, correct_label, learning_rate, logits, train_op, loss, probabilities,
                         epochs_done, best_metric, tf.train.get_global_step(),
                         tf.assign(epochs_done, tf.cast(value, tf.int32)), tf.assign(best_metric, value), value,
                         num_classes, model_vars)


def freeze_blocks(n):
    """Take the encoder's blocks conv1..conv<n> out of the trainable variables (no gradients, no Adam slots,
    no backward pass below conv<n+1>), as Faster R-CNN does with VGG16's conv1-conv2; returns them."""
    prefixes = tuple('conv{}_'.format(b) for b in range(1, n + 1))
    trainable = tf.get_collection_ref(tf.GraphKeys.TRAINABLE_VARIABLES)
    frozen = [v for v in trainable if v.op.name.startswith(prefixes)]
    trainable[:] = [v for v in trainable if v not in frozen]
    return frozen

"""The training run around the five Udacity functions: run folder, checkpoints, validation, resume, outputs."""
import json
import os
import sys
import time

import numpy as np
from PIL import Image

from . import cpu, datasets, schedule, splits
from . import evaluate as evaluation
from .batches import EpochBatches, TrainingSet
from .evaluate import THRESHOLD
from .export import FROZEN, add_inference_outputs, find_checkpoint, run_folder, write_frozen
from .files import (InputError, append_line, finish_run_dir, first_line, new_run_dir, save_image_atomic,
                    write_bytes_atomic)
from .inference import overlay, predict_probabilities
from .palette import legend, overlay as class_overlay
from .progress import bar
from .signals import deferred_stop
from .tfcompat import session_config, tf
from .validation import Validator, summarize

ROAD_COLORS = ((0, 0, 0), (0, 255, 0))  # display colours of a road run: road in translucent green

TRAINING_KEYS = ('epochs', 'batch_size', 'learning_rate', 'keep_prob', 'image_shape', 'l2_scale', 'skip_scaling',
                 'fc_width', 'fc6_kernel', 'no_augment', 'seed', 'threads', 'precision', 'init_from', 'repeat',
                 'checkpoint_minutes', 'data_dir', 'vgg_weights', 'dataset', 'fcn', 'class_weights', 'lr_schedule',
                 'warmup', 'freeze_blocks')
RESUMABLE_CHANGES = ('epochs', 'threads', 'checkpoint_minutes', 'precision')  # what --resume may set anew


class Run:
    """A run folder: config.json, last/ and best/ checkpoints, TensorBoard logs, history, inference images."""

    def __init__(self, config, partial=None):
        self.config = config
        self.partial = partial
        self.final = partial[:-len('.partial')] if partial else None

    @classmethod
    def new(cls, settings):
        return cls({k: settings[k] for k in TRAINING_KEYS})

    @classmethod
    def resume(cls, path, given):
        """The interrupted run at path; given: the flags set on the command line (name -> value)."""
        path = path.rstrip('/\\')
        config_path = os.path.join(path, 'config.json')
        if not os.path.isfile(config_path):
            raise InputError('--resume needs a run folder with config.json: {} not found'.format(config_path))
        if not path.endswith('.partial'):
            raise InputError('run {} is complete (its folder has no .partial suffix), nothing to resume; to train '
                             'further start a new run with --init-from {}'.format(path, path))
        with open(config_path) as f:
            config = json.load(f)
        config.setdefault('precision', 'bf16' if config.get('bf16') else 'fp32')  # runs from before --precision
        for key, value in sorted(given.items()):
            if key in RESUMABLE_CHANGES or key not in TRAINING_KEYS:
                continue
            if value != config.get(key):
                raise InputError('--{} {} conflicts with the run\'s {} ({}); --resume continues a run with its '
                                 'own settings'.format(key.replace('_', '-'), _flag_value(value), config_path,
                                                       _flag_value(config.get(key))))
        for key in RESUMABLE_CHANGES:
            if given.get(key) is not None:
                config[key] = given[key]
        return cls(config, path)

    def create(self, runs_dir):
        """Reserve the folder (unless resuming) and write config.json; called once the inputs are checked."""
        if self.partial is None:
            self.partial, self.final = new_run_dir(runs_dir)
        write_bytes_atomic(self.path('config.json'), json.dumps(self.config, indent=2).encode())

    def path(self, *parts):
        return os.path.join(self.partial, *parts)


def _flag_value(value):
    return ' '.join(str(v) for v in value) if isinstance(value, (list, tuple)) else value


def build_graph(m, sess, vgg_path, cfg, num_classes, class_weights=None, wrap_optimizer=None):
    """load_vgg + layers + optimize in sess.graph; returns a dict of the tensors and ops training uses.
    class_weights, wrap_optimizer: optimize()'s options, passed only when set (a Udacity optimize() lacks them)."""
    image_input, keep_prob, layer3, layer4, layer7 = m.load_vgg(sess, vgg_path)
    pretrained = set(tf.global_variables())
    frozen = freeze_blocks(cfg.get('freeze_blocks', 0))
    correct_label = tf.placeholder(tf.float32, [None, None, None, num_classes], name='correct_label')
    learning_rate = tf.placeholder(tf.float32, [], name='learning_rate')
    output = m.layers(layer3, layer4, layer7, num_classes, l2_scale=cfg['l2_scale'],
                      skip_scaling=cfg['skip_scaling'], crop_to=image_input, variant=cfg.get('fcn', 8))
    options = {k: v for k, v in (('class_weights', class_weights), ('wrap_optimizer', wrap_optimizer))
               if v is not None}
    model_vars = tf.trainable_variables() + frozen  # what best/ holds: every weight of the model
    logits, train_op, loss = m.optimize(output, correct_label, learning_rate, num_classes, **options)
    probabilities, _ = add_inference_outputs(output, num_classes)
    epochs_done = tf.Variable(0, trainable=False, name='epochs_done')
    best_metric = tf.Variable(-1.0, trainable=False, name='best_val_iou')
    value = tf.placeholder(tf.float32, [])
    sess.run(tf.variables_initializer([v for v in tf.global_variables() if v not in pretrained]))
    return dict(logits=logits, image_input=image_input, keep_prob=keep_prob, correct_label=correct_label,
                learning_rate=learning_rate, train_op=train_op, loss=loss, probabilities=probabilities,
                epochs_done=epochs_done, best_metric=best_metric, step=tf.train.get_global_step(),
                set_epochs=tf.assign(epochs_done, tf.cast(value, tf.int32)), set_best=tf.assign(best_metric, value),
                value=value, num_classes=num_classes, model_vars=model_vars)


def freeze_blocks(n):
    """Take the encoder's blocks conv1..conv<n> out of the trainable variables (no gradients, no Adam slots,
    no backward pass below conv<n+1>), as Faster R-CNN does with VGG16's conv1-conv2; returns them."""
    prefixes = tuple('conv{}_'.format(b) for b in range(1, n + 1))
    trainable = tf.get_collection_ref(tf.GraphKeys.TRAINABLE_VARIABLES)
    frozen = [v for v in trainable if v.op.name.startswith(prefixes)]
    trainable[:] = [v for v in trainable if v not in frozen]
    return frozen


def check_splits(cfg, dataset, resume):
    """Record the dataset's split checksums in cfg['splits']; InputError when --resume or --init-from would
    continue a run of the same dataset across a changed split file (roadseg/splits.py)."""
    current = splits.checksums(dataset)
    if resume:
        splits.check_unchanged(cfg.get('splits'), current, os.path.join(resume.rstrip('/\\'), 'config.json'),
                               '--resume')
    elif cfg['init_from']:
        path = os.path.join(run_folder(find_checkpoint(cfg['init_from'], 'best')), 'config.json')
        with open(path) as f:
            source = json.load(f)
        if source.get('dataset', 'kitti_road') == dataset.name:
            splits.check_unchanged(source.get('splits'), current, path, '--init-from')
    cfg['splits'] = current


class Checkpoints:
    """last/ (everything, Adam slots included, for --resume) and best/ (the model, for inference).

    The best weights are kept in memory when they improve and written with last/ at most every `minutes`
    (and when forced: at the end, on Ctrl-C/SIGTERM), so a small data set does not rewrite hundreds of MB
    every few seconds. best/ on disk always belongs to the best_val_iou that last/ records.
    """

    def __init__(self, sess, run, g, minutes):
        self.sess, self.run, self.interval = sess, run, 60.0 * minutes
        self.last_saver = tf.train.Saver(max_to_keep=1, save_relative_paths=True)
        self.best_vars = g['model_vars'] + [g['epochs_done'], g['best_metric'], g['step']]
        self.best_saver = tf.train.Saver(self.best_vars, max_to_keep=1, save_relative_paths=True)
        self._feeds = [tf.placeholder(v.dtype.base_dtype, v.shape) for v in self.best_vars]
        self._assign = tf.group(*[tf.assign(v, p) for v, p in zip(self.best_vars, self._feeds)])
        self.best = None         # (values of best_vars, evaluation result) not yet written
        self.saved_at = time.time()

    def mark_best(self, result, extra):
        """Keep the session's weights as the best; result: (evaluator, worst cases) for best/evaluation/."""
        self.best = (self.sess.run(self.best_vars), result and result + (extra,))

    def load(self, values):
        self.sess.run(self._assign, dict(zip(self._feeds, values)))

    def due(self):
        return time.time() - self.saved_at >= self.interval

    def save(self):
        """Write the pending best weights (with their evaluation report), then last/."""
        if self.best is not None:
            values, result = self.best
            current = self.sess.run(self.best_vars)
            self.load(values)
            self.best_saver.save(self.sess, self.run.path('best', 'model'), global_step=self.best_vars[-1],
                                 latest_filename='checkpoint', strip_default_attrs=True)
            self.load(current)
            if result is not None:
                evaluation.write_report(self.run.path('best', 'evaluation'), *result[:2], extra=result[2])
            self.best = (values, None)
        self.last_saver.save(self.sess, self.run.path('last', 'model'), global_step=self.best_vars[-1],
                             strip_default_attrs=True)
        self.saved_at = time.time()

    def restore_best(self):
        """Put the best weights into the session for the end-of-run outputs; False when there are none."""
        if self.best is not None:
            self.load(self.best[0])
            return True
        prefix = tf.train.latest_checkpoint(self.run.path('best'))
        if prefix:
            self.best_saver.restore(self.sess, prefix)
        return bool(prefix)


def restore(saver, sess, prefix, num_classes, variables):
    """saver.restore, with an InputError when the checkpoint does not fit: a missing variable, or one of another
    shape (TF 2.x resource variables would silently take the checkpoint's shape)."""
    try:
        shapes = dict(tf.train.list_variables(prefix))
        for v in variables:
            name = v.op.name
            if name in shapes and list(shapes[name]) != v.shape.as_list():
                raise ValueError('{} is {} in the checkpoint, {} in the model'.format(
                    name, list(shapes[name]), v.shape.as_list()))
        saver.restore(sess, prefix)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, ValueError) as e:
        raise InputError('checkpoint {} does not fit this model ({} classes, same flags as the run): {}'
                         .format(prefix, num_classes, first_line(e)))


def train(settings, m, runs_dir, vgg_dir, workers, resume=None, given=None):
    """Train a new run (settings: the training flags) or resume one; returns the exit code.

    workers: distributed.Solo(), or distributed.Horovod() when this process is one rank of a horovodrun job:
    then every rank trains on its shard, and rank 0 (the chief) alone reads and writes the run folder.
    """
    import helper
    run = None
    if workers.chief:
        run = Run.resume(resume, given or {}) if resume else Run.new(settings)
        trained_by = run.config.setdefault('workers', 1 if resume else workers.size)
        if trained_by != workers.size:
            raise InputError('{} was trained by {} process(es); resume it with as many: {}'.format(
                resume, trained_by, 'python main.py --resume RUN' if trained_by == 1 else
                'horovodrun -np {} python main.py --horovod --resume RUN'.format(trained_by)))
    cfg = workers.share(run.config if run else None)
    run = run or Run(cfg)  # another rank's view of the run: it never touches the folder
    machine = cpu.cpu_info()
    cfg['precision'] = cfg.get('precision') or cpu.default_precision()
    precision, why = cpu.choose_precision(cfg['precision'], machine)
    print('{}; precision {} ({})'.format(cpu.describe(machine), precision, why))
    cfg.update(cpu=machine, bf16=precision == 'bf16')
    dataset = datasets.get_dataset(cfg.get('dataset'), cfg['data_dir'])
    road = dataset.name == 'kitti_road'
    cfg.update(dataset=dataset.name, num_classes=dataset.num_classes, class_names=list(dataset.class_names),
               class_colors=[list(c) for c in (ROAD_COLORS if road else dataset.colors)])
    if workers.chief:
        check_splits(cfg, dataset, resume)
    image_shape = tuple(cfg['image_shape'])
    val_samples, select_samples = dataset.samples('val'), dataset.samples(datasets.SELECT)
    choose_samples = select_samples or val_samples  # the kept epoch is chosen on these (roadseg/validation.py)
    training_set = TrainingSet(dataset.samples('train'), dataset.load, image_shape, dataset.num_classes)
    get_batches_fn = EpochBatches(training_set, not cfg['no_augment'], cfg['seed'], cfg['repeat'],
                                  rank=workers.rank, size=workers.size)
    class_weights = None
    if cfg.get('class_weights') == 'median':
        class_weights = datasets.median_frequency_weights(dataset, 'train')
        print('Class weights (median frequency): ' + ', '.join(
            '{} {:.3f}'.format(n, w) for n, w in zip(dataset.class_names, class_weights)))
    batch_size = cfg['batch_size']
    if batch_size > get_batches_fn.num_images:
        print('note: --batch-size {} is larger than the {} training images; using {}'.format(
            batch_size, get_batches_fn.num_images, get_batches_fn.num_images))
        batch_size = get_batches_fn.num_images
    steps_per_epoch = get_batches_fn.steps_per_epoch(batch_size)
    if workers.local_rank:
        workers.share(None)  # wait until this machine's first rank has vgg/ (built at most once per machine)
    vgg_path, vgg_source = helper.maybe_download_pretrained_vgg(vgg_dir, cfg['fc_width'], cfg['fc6_kernel'],
                                                                vgg_weights=cfg['vgg_weights'])
    if not workers.local_rank:
        workers.share(None)
    print('Encoder: {} ({})'.format(vgg_path, vgg_source))
    cfg.setdefault('vgg_source', vgg_source)
    learning_rate = workers.learning_rate(cfg['learning_rate'])
    kind, warmup = cfg.get('lr_schedule', 'constant'), cfg.get('warmup', 0.0)
    rate = learning_rate if (kind, warmup) == ('constant', 0) else schedule.learning_rate_at(kind, learning_rate,
                                                                                           warmup)
    if workers.chief:
        run.create(runs_dir)
        print('Run folder: {} ({}: {} classes; {} training images x {} per epoch, {} steps of {}; {})'.format(
            run.partial, dataset.name, dataset.num_classes, get_batches_fn.num_images, cfg['repeat'], steps_per_epoch,
            batch_size, '{} validation images'.format(len(val_samples)) if not select_samples else
            '{} selection images choose the kept epoch, {} report-split images are only measured'.format(
                len(select_samples), len(val_samples))))
        if rate is not learning_rate or cfg.get('freeze_blocks'):
            print('Recipe: learning rate {} {:g}{}{}'.format(
                kind, learning_rate, ', warm-up over {:.0%} of the run'.format(warmup) if warmup else '',
                ', conv1..conv{} frozen'.format(cfg['freeze_blocks']) if cfg.get('freeze_blocks') else ''))
    if workers.size > 1:
        print('Horovod: {} ranks, each {} steps of {} images per epoch ({} images per step); learning rate {:g} '
              'x sqrt({}) = {:g}'.format(workers.size, steps_per_epoch, batch_size, workers.size * batch_size,
                                         cfg['learning_rate'], workers.size, learning_rate))

    graph = tf.Graph()
    config = workers.session_config(session_config(cfg['threads'], bf16=cfg['bf16']))
    with graph.as_default(), tf.Session(graph=graph, config=config) as sess:
        tf.set_random_seed(cfg['seed'])
        g = build_graph(m, sess, vgg_path, cfg, dataset.num_classes, class_weights,
                        workers.optimizer if workers.size > 1 else None)
        workers.build()
        ckpt = Checkpoints(sess, run, g, cfg['checkpoint_minutes'])
        last = tf.train.latest_checkpoint(run.path('last')) if workers.chief else None
        if last:
            restore(ckpt.last_saver, sess, last, dataset.num_classes, tf.global_variables())
        elif workers.chief and resume:
            print('note: {} has no checkpoint yet; starting from epoch 1'.format(run.path('last')))
        elif workers.chief and cfg['init_from']:
            start = find_checkpoint(cfg['init_from'], 'best')
            restore(tf.train.Saver(g['model_vars']), sess, start, dataset.num_classes, g['model_vars'])
            print('Weights initialised from {}'.format(start))
        workers.sync(sess)  # every rank starts from the chief's weights
        done, step = (int(v) for v in sess.run([g['epochs_done'], g['step']]))
        skip = step - done * steps_per_epoch
        get_batches_fn.resume_at(done, max(skip, 0))
        if last:
            print('Resumed from {}: epoch {} of {}{}'.format(last, done, cfg['epochs'], ', continuing epoch {} at '
                  'step {} of {}'.format(done + 1, skip + 1, steps_per_epoch) if 0 < skip < steps_per_epoch else ''))
        if workers.chief:
            writer = tf.summary.FileWriter(run.path('logs'), graph if not last else None)
            validator = Validator(sess, g, dataset, choose_samples, val_samples if select_samples else [],
                                  image_shape)

        def on_epoch_end(epoch, mean_loss):
            with workers.deferred():  # validation, checkpoints and history stay consistent under Ctrl-C
                sess.run(g['set_epochs'], {g['value']: epoch + 1})
                if not workers.chief:
                    return
                entry = {'epoch': epoch + 1, 'step': int(sess.run(g['step'])), 'loss': mean_loss}
                result = validator.run(entry)
                if result is None or entry['val_iou'] > sess.run(g['best_metric']):
                    sess.run(g['set_best'], {g['value']: entry.get('val_iou', 0.0)})
                    ckpt.mark_best(result, {'epoch': epoch + 1, 'threshold': THRESHOLD})
                    entry['best'] = True
                validator.print_line(entry)
                if ckpt.due():
                    ckpt.save()
                writer.add_summary(tf.Summary(value=validator.summary(entry, result)), entry['step'])
                writer.flush()
                append_line(run.path('history.jsonl'), json.dumps(entry))

        try:
            with workers.stop_guard():
                m.train_nn(sess, cfg['epochs'], batch_size, get_batches_fn, g['train_op'], g['loss'],
                           g['image_input'], g['correct_label'], g['keep_prob'], g['learning_rate'],
                           keep_prob_value=cfg['keep_prob'], learning_rate_value=rate,
                           first_epoch=done, on_epoch_end=on_epoch_end, on_step=workers.on_step(sess))
        except KeyboardInterrupt:
            if workers.chief:
                ckpt.save()
                print('\nInterrupted: checkpoint saved in {}; continue with: {}--resume {}'.format(
                    run.path('last'), 'python main.py ' if workers.size == 1 else
                    'horovodrun -np {} python main.py --horovod '.format(workers.size), run.partial), file=sys.stderr)
            workers.barrier(sess)  # the other ranks leave once the chief's checkpoint is written
            return 130
        except m.TrainingDiverged as e:
            if workers.chief:
                kept = tf.train.latest_checkpoint(run.path('last'))
                print('error: {}; {}'.format(e, 'the last good checkpoint is kept in {}'.format(kept) if kept else
                                             'no checkpoint was written yet'), file=sys.stderr)
            return 1
        same = workers.check_identical(sess, [v for v in tf.global_variables() if v is not g['best_metric']])
        if same:
            print('Horovod: the {} ranks ended with identical weights and optimizer state (sha256 {})'.format(
                workers.size, same[:16]))
        if not workers.chief:
            return 0
        with deferred_stop():
            ckpt.save()
        writer.close()
        if ckpt.restore_best():
            write_frozen(sess, run.path('best', FROZEN), image_shape)
        evaluation.plot_history(run.path('loss_curve.png'), run.path('history.jsonl'))
        write_test_images(sess, g, dataset, image_shape, run.path('test_images'), cfg['class_colors'])
    final = finish_run_dir(run.partial, run.final)
    summarize(os.path.join(final, 'history.jsonl'), len(choose_samples))
    print('Done: {}'.format(final))
    return 0


def write_test_images(sess, g, dataset, image_shape, out_dir, colors, batch_size=4):
    """Overlays of the test split (else the validation split) at each image's size: road in green at THRESHOLD,
    or every class in its colour (with legend.png)."""
    samples = dataset.samples('test') or dataset.samples('val')
    os.makedirs(out_dir, exist_ok=True)
    road = dataset.name == 'kitti_road'
    if not road:
        save_image_atomic(os.path.join(out_dir, 'legend.png'), legend(dataset.class_names, colors))
    progress = bar(total=len(samples), desc='Test images', unit='image')
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        images = [dataset.load(s)[0] for s in chunk]
        feed = {g['keep_prob']: 1.0}
        for sample, image, probs in zip(chunk, images, predict_probabilities(
                sess, g['probabilities'], g['image_input'], images, image_shape, batch_size, feed)):
            shown = overlay(image, probs[..., 1], THRESHOLD) if road else class_overlay(
                image, np.argmax(probs, axis=-1).astype(np.uint8), colors)
            name = os.path.basename(sample.image) if os.path.splitext(sample.image)[1] else sample.stem + '.png'
            save_image_atomic(os.path.join(out_dir, name), Image.fromarray(shown))
            progress.update(1)
    progress.close()

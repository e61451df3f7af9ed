"""Command line of main.py: flags, and the training run around the five Udacity functions."""
import argparse
import contextlib
import errno
import json
import os
import signal
import sys
import time

import numpy as np

from . import evaluate as evaluation
from . import kitti
from .files import InputError, check_writable_dir, first_line, finish_run_dir, new_run_dir, write_bytes_atomic
from .inference import export_frozen, find_checkpoint, road_probability_op
from .tfcompat import session_config, tf

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DIR = os.path.join(HERE, 'data', 'sample')
NUM_CLASSES = 2


def build_parser():
    p = argparse.ArgumentParser(
        prog='main.py', formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description='Train FCN-8s (VGG16 encoder) on KITTI Road and write inference images to '
                    'RUNS_DIR/<timestamp>/; or --evaluate a run; or overlay a --video.')
    p.add_argument('--epochs', type=int, default=None,
                   help='training epochs, default 50 (with --resume: the new total, default the run\'s own)')
    p.add_argument('--batch-size', type=int, default=10, help='images per training step')
    p.add_argument('--learning-rate', type=float, default=1e-4,
                   help='Adam learning rate (1e-4 beat 1e-3 on KITTI: MaxF1 88.2 vs 83.8 after 3 epochs)')
    p.add_argument('--keep-prob', type=float, default=0.5, help='dropout keep probability for fc6/fc7, in (0, 1]')
    p.add_argument('--image-shape', type=int, nargs=2, default=[160, 576], metavar=('HEIGHT', 'WIDTH'),
                   help='network input size; both multiples of 32')
    p.add_argument('--data-dir', default=os.path.join('data', 'data_road'),
                   help='KITTI data_road folder (training/, testing/); if the default is missing, the bundled '
                        'sample in data/sample is used')
    p.add_argument('--vgg-dir', default='data',
                   help='folder holding vgg/ (the VGG16 SavedModel), built there if missing')
    p.add_argument('--runs-dir', default='runs', help='where run folders are written')
    p.add_argument('--l2-scale', type=float, default=1e-3, help='L2 regularization weight of decoder kernels')
    p.add_argument('--skip-scaling', action='store_true',
                   help='scale pool4 by 0.01 and pool3 by 0.0001 (at-once FCN-8s)')
    p.add_argument('--fc-width', type=int, default=None,
                   help='fc6/fc7 channels when building vgg/ (default 1024; VGG16: 4096); must match an existing one')
    p.add_argument('--fc6-kernel', type=int, default=None,
                   help='fc6 kernel size when building vgg/ (default 3; VGG16: 7); must match an existing one')
    p.add_argument('--no-augment', action='store_true', help='train without flips/zoom/colour jitter')
    p.add_argument('--seed', type=int, default=0, help='random seed (data order, augmentation, init)')
    p.add_argument('--threads', type=int, default=0, help='TensorFlow intra-op threads (0: all cores)')
    p.add_argument('--bf16', action='store_true',
                   help='bfloat16 auto mixed precision on TF 2.x with oneDNN (CPUs with AVX512-BF16/AMX)')
    p.add_argument('--init-from', metavar='RUN',
                   help='start from the weights of RUN\'s best checkpoint (e.g. to fine-tune at another --image-shape)')
    p.add_argument('--resume', metavar='RUN', help='continue an interrupted run folder (runs/<timestamp>.partial)')
    p.add_argument('--evaluate', metavar='RUN', help='evaluate a run (or checkpoint) on the validation split')
    p.add_argument('--video', metavar='IN', help='overlay road predictions on this video (needs --checkpoint)')
    p.add_argument('--output', metavar='OUT', help='output video path for --video')
    p.add_argument('--checkpoint', metavar='RUN', help='run folder or checkpoint used by --video')
    p.add_argument('--export', metavar='RUN',
                   help='freeze a run\'s checkpoint into <run>/best/frozen_inference.pb (done after training too)')
    p.add_argument('--which', choices=('best', 'last'), default='best',
                   help='which checkpoint of a run --evaluate/--video use')
    return p


def check_args(args):
    """InputError for flag values that cannot work."""
    if args.epochs is not None and args.epochs <= 0:
        raise InputError('--epochs must be positive, got {}'.format(args.epochs))
    if args.batch_size <= 0:
        raise InputError('--batch-size must be positive, got {}'.format(args.batch_size))
    if not 0 < args.keep_prob <= 1:
        raise InputError('--keep-prob must be in (0, 1], got {}'.format(args.keep_prob))
    if not args.learning_rate > 0:
        raise InputError('--learning-rate must be > 0, got {}'.format(args.learning_rate))
    h, w = args.image_shape
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise InputError('--image-shape must be positive multiples of 32, got {} {} (try {} {})'.format(
            h, w, max(32, round(h / 32) * 32), max(32, round(w / 32) * 32)))
    if args.video and not args.output:
        raise InputError('--video needs --output OUT.mp4')
    if args.bf16:
        try:
            session_config(bf16=True)
        except ValueError as e:
            raise InputError('--bf16: {}'.format(e))


def resolve_data_dir(args, parser):
    """The data_road folder to use: the given one, or the bundled sample when the default is absent."""
    if os.path.isdir(os.path.join(args.data_dir, 'training')):
        return args.data_dir
    if args.data_dir == parser.get_default('data_dir') and os.path.isdir(SAMPLE_DIR):
        print('note: {} not found; training on the bundled sample {} (see data/README.md for the full set)'
              .format(args.data_dir, SAMPLE_DIR))
        return SAMPLE_DIR
    raise InputError('KITTI data not found: {} has no training/ folder (see data/README.md)'.format(args.data_dir))


def main(argv, m):
    """Entry point; m is the main module (load_vgg, layers, optimize, train_nn). Returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_args(args)
        if args.video:
            from .video import overlay_video
            overlay_video(args.checkpoint, args.video, args.output, which=args.which, bf16=args.bf16)
            return 0
        if args.export:
            print('Wrote {}'.format(export_frozen(m, args.export, args.which)))
            return 0
        data_dir = resolve_data_dir(args, parser)
        if args.evaluate:
            evaluation.evaluate_run(args.evaluate, data_dir, which=args.which, bf16=args.bf16)
            return 0
        return train(args, data_dir, m)
    except InputError as e:
        print('error: {}'.format(e), file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permissions, ... while writing outputs
        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM):
            raise
        print('error: cannot write {}: {}'.format(e.filename or 'output', e.strerror or e), file=sys.stderr)
        return 1


class Run:
    """A run folder: config.json, last/ and best/ checkpoints, TensorBoard logs, history, inference images."""

    def __init__(self, args, data_dir):
        self.partial = self.final = None
        if args.resume:
            self.partial = args.resume.rstrip('/')
            config = os.path.join(self.partial, 'config.json')
            if not os.path.isfile(config):
                raise InputError('--resume needs a run folder with config.json: {} not found'.format(config))
            with open(config) as f:
                self.config = json.load(f)
            if args.epochs is not None:
                self.config['epochs'] = args.epochs
            self.final = self.partial[:-len('.partial')] if self.partial.endswith('.partial') else self.partial
        else:
            self.config = {k: v for k, v in vars(args).items()
                           if k not in ('resume', 'evaluate', 'video', 'output', 'checkpoint', 'which', 'export')}
            self.config['data_dir'] = data_dir
            self.config['epochs'] = args.epochs or 50

    def create(self, runs_dir):
        """Reserve the folder (unless resuming) and write config.json; called once the inputs are checked."""
        if self.partial is None:
            self.partial, self.final = new_run_dir(runs_dir)
        write_bytes_atomic(self.path('config.json'), json.dumps(self.config, indent=2).encode())

    def path(self, *parts):
        return os.path.join(self.partial, *parts)


def build_graph(m, sess, vgg_path, cfg):
    """load_vgg + layers + optimize in sess.graph; returns a dict of the tensors and ops training uses."""
    image_input, keep_prob, layer3, layer4, layer7 = m.load_vgg(sess, vgg_path)
    pretrained = set(tf.global_variables())
    correct_label = tf.placeholder(tf.float32, [None, None, None, NUM_CLASSES], name='correct_label')
    learning_rate = tf.placeholder(tf.float32, [], name='learning_rate')
    output = m.layers(layer3, layer4, layer7, NUM_CLASSES, l2_scale=cfg['l2_scale'],
                      skip_scaling=cfg['skip_scaling'], crop_to=image_input)
    logits, train_op, loss = m.optimize(output, correct_label, learning_rate, NUM_CLASSES)
    road_prob = road_probability_op(logits, image_input)
    epochs_done = tf.Variable(0, trainable=False, name='epochs_done')
    best_f1 = tf.Variable(-1.0, trainable=False, name='best_val_max_f1')
    value = tf.placeholder(tf.float32, [])
    sess.run(tf.variables_initializer([v for v in tf.global_variables() if v not in pretrained]))
    return dict(logits=logits, image_input=image_input, keep_prob=keep_prob, correct_label=correct_label,
                learning_rate=learning_rate, train_op=train_op, loss=loss, road_prob=road_prob,
                epochs_done=epochs_done, best_f1=best_f1, value=value,
                set_epochs=tf.assign(epochs_done, tf.cast(value, tf.int32)), set_best=tf.assign(best_f1, value))


def restore(saver, sess, prefix):
    try:
        saver.restore(sess, prefix)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, ValueError) as e:
        raise InputError('checkpoint {} does not fit this model ({} classes, same flags as the run): {}'
                         .format(prefix, NUM_CLASSES, first_line(e)))


def train(args, data_dir, m):
    import helper
    check_writable_dir(args.runs_dir, 'runs folder')
    run = Run(args, data_dir)
    cfg = run.config
    data_dir = cfg['data_dir']
    image_shape = tuple(cfg['image_shape'])
    val_names = kitti.read_split()
    val_pairs = evaluation.validation_pairs(data_dir)
    get_batches_fn = helper.gen_batch_function(os.path.join(data_dir, 'training'), image_shape,
                                               exclude=val_names, augment=not cfg['no_augment'], seed=cfg['seed'])
    batch_size = cfg['batch_size']
    if batch_size > get_batches_fn.num_images:
        print('note: --batch-size {} is larger than the {} training images; using {}'.format(
            batch_size, get_batches_fn.num_images, get_batches_fn.num_images))
        batch_size = get_batches_fn.num_images
    vgg_path = helper.maybe_download_pretrained_vgg(args.vgg_dir, cfg['fc_width'], cfg['fc6_kernel'])
    run.create(args.runs_dir)
    print('Run folder: {} ({} training, {} validation images)'.format(
        run.partial, get_batches_fn.num_images, len(val_pairs)))

    tf.reset_default_graph()
    tf.set_random_seed(cfg['seed'])
    np.random.seed(cfg['seed'])
    with tf.Session(config=session_config(cfg['threads'], bf16=cfg.get('bf16', False))) as sess:
        g = build_graph(m, sess, vgg_path, cfg)
        step = tf.train.get_global_step()
        # last/: everything, Adam slots included, to resume; best/: the model only, for evaluation and video
        last_saver = tf.train.Saver(max_to_keep=1, save_relative_paths=True)
        best_saver = tf.train.Saver(tf.trainable_variables() + [g['epochs_done'], g['best_f1'], step],
                                    max_to_keep=1, save_relative_paths=True)
        last = tf.train.latest_checkpoint(run.path('last'))
        if last:
            restore(last_saver, sess, last)
            print('Resumed from {} (epoch {})'.format(last, sess.run(g['epochs_done'])))
        elif cfg.get('init_from'):
            start = find_checkpoint(cfg['init_from'], 'best')
            restore(tf.train.Saver(tf.trainable_variables()), sess, start)
            print('Weights initialised from {}'.format(start))
        writer = tf.summary.FileWriter(run.path('logs'), sess.graph if not last else None)

        def validate():
            if not val_pairs:
                return None
            evaluator, worst = evaluation.score(val_pairs, lambda ims: helper.predict_road(
                sess, g['road_prob'], g['image_input'], ims, image_shape, 4, {g['keep_prob']: 1.0}))
            return evaluator, worst

        def on_epoch_end(epoch, mean_loss):
            with deferred_sigint():  # validation, checkpoint and history stay consistent under Ctrl-C
                epoch_end(epoch, mean_loss)

        def epoch_end(epoch, mean_loss):
            t = time.time()
            result = validate()
            summary = [tf.Summary.Value(tag='loss/train', simple_value=mean_loss)]
            entry = {'epoch': epoch + 1, 'step': int(sess.run(step)), 'loss': mean_loss}
            improved = result is None
            if result is not None:
                metrics = result[0].results()['overall']
                entry.update(val_max_f1=metrics['max_f1'], val_ap=metrics['average_precision'],
                             val_iou=metrics['iou'])
                summary += [tf.Summary.Value(tag='val/' + k, simple_value=entry[k])
                            for k in ('val_max_f1', 'val_ap', 'val_iou')]
                f1, name, image, prob, classes = result[1][0]
                summary.append(tf.Summary.Value(tag='val/worst_overlay', image=_png_summary(
                    evaluation.error_overlay(image, prob, classes))))
                improved = metrics['max_f1'] > sess.run(g['best_f1'])
                print('  validation MaxF1 {:.2f} AP {:.2f} IoU {:.3f} ({:.0f} s){}'.format(
                    100 * metrics['max_f1'], 100 * metrics['average_precision'], metrics['iou'],
                    time.time() - t, ' best so far' if improved else ''))
                if improved:
                    sess.run(g['set_best'], {g['value']: metrics['max_f1']})
            sess.run(g['set_epochs'], {g['value']: epoch + 1})
            last_saver.save(sess, run.path('last', 'model'), global_step=step)
            if improved:
                best_saver.save(sess, run.path('best', 'model'), global_step=step,
                                latest_filename='checkpoint')
                if result is not None:
                    evaluation.write_report(run.path('best', 'evaluation'), *result,
                                            extra={'epoch': epoch + 1})
            writer.add_summary(tf.Summary(value=summary), entry['step'])
            writer.flush()
            _append_history(run.path('history.jsonl'), entry)

        try:
            with stop_signals_interrupt():
                m.train_nn(sess, cfg['epochs'], batch_size, get_batches_fn, g['train_op'], g['loss'],
                           g['image_input'], g['correct_label'], g['keep_prob'], g['learning_rate'],
                           keep_prob_value=cfg['keep_prob'], learning_rate_value=cfg['learning_rate'],
                           first_epoch=int(sess.run(g['epochs_done'])), on_epoch_end=on_epoch_end)
        except KeyboardInterrupt:
            last_saver.save(sess, run.path('last', 'model'), global_step=step)
            print('\nInterrupted: checkpoint saved in {}; continue with: python main.py --resume {}'.format(
                run.path('last'), run.partial), file=sys.stderr)
            return 130
        except m.TrainingDiverged as e:
            print('error: {}; the last good checkpoint is kept in {}'.format(e, run.path('last')), file=sys.stderr)
            return 1
        writer.close()
        best = tf.train.latest_checkpoint(run.path('best'))
        if best:
            best_saver.restore(sess, best)
            export_frozen(m, run.partial)
        evaluation.plot_history(run.path('loss_curve.png'), run.path('history.jsonl'))
        helper.save_inference_samples(args.runs_dir, data_dir, sess, image_shape, g['logits'],
                                      g['keep_prob'], g['image_input'], output_dir=run.path('test_images'))
    final = finish_run_dir(run.partial, run.final)
    print('Done: {}'.format(final))
    return 0


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _handlers(handler):
    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def stop_signals_interrupt():
    """Ctrl-C and SIGTERM (docker stop, kill) raise KeyboardInterrupt in the block, so training saves a
    checkpoint; this also holds for a background job, whose SIGINT the shell set to be ignored."""
    return _handlers(_raise_interrupt)


@contextlib.contextmanager
def deferred_sigint():
    """Hold Ctrl-C and SIGTERM until the block is done, then raise KeyboardInterrupt."""
    received = []
    with _handlers(lambda signum, frame: received.append(signum)):
        yield
    if received:
        raise KeyboardInterrupt


def _append_history(path, entry):
    with open(path, 'a') as f:
        f.write(json.dumps(entry) + '\n')


def _png_summary(image):
    import io
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format='PNG')
    return tf.Summary.Image(encoded_image_string=buf.getvalue(), height=image.shape[0], width=image.shape[1],
                            colorspace=3)

"""A training run as steps around the model's Udacity functions (main.py): open the run, prepare the data and
the encoder, build the graph, start or resume, train with validation and checkpoints, write the outputs
(outputs.py)."""
import collections
import functools
import json
import os
import sys
import time

from .. import task as tasks
from ..data import datasets
from ..data.batches import EpochBatches, TrainingSet, drawing_processes, half_shape
from ..model import decoders, graph as model_graph
from ..model.names import decoder_of
from ..model.vgg import check_stages
from ..model.vgg_sources import maybe_build_vgg
from ..runs import Run, TrainedRun, check_init_from, check_splits, record_commit, recorded_flips
from ..system import cpu
from ..system.commit import code_commit
from ..system.files import InputError, append_line
from ..system.tfcompat import session_config, tf
from . import schedule
from .checkpoints import Checkpoints, restore
from .outputs import write_outputs
from .validation import Validator, summarize

Data = collections.namedtuple('Data', 'dataset task batches batch_size choose report class_weights')


def open_run(config, workers, resume=None, given=None):
    """The run: a new one of config (the recorded settings), or the one at resume with the flags typed
    (given), with the commit of the code training it; read by the chief and shared with the other ranks, which
    never touch the folder."""
    run = None
    if workers.chief:
        run = Run.resume(resume, given or {}) if resume else Run(config)
        record_commit(run.config, code_commit(), resumed=bool(resume))
        trained_by = run.config.setdefault('workers', 1 if resume else workers.size)
        if trained_by != workers.size:
            raise InputError('{} was trained by {} process(es); resume it with as many: {}'.format(
                resume, trained_by, 'python main.py --resume RUN' if trained_by == 1 else
                'horovodrun -np {} python main.py --horovod --resume RUN'.format(trained_by)))
    config = workers.share(run.config if run else None)
    return run or Run(config)


def prepare_data(run, workers, resume):
    """The dataset, the run's task and this rank's training batches; records what the run is trained on."""
    config = run.config
    dataset = datasets.get_dataset(config.get('dataset'), config['data_dir'], **config.get('dataset_options', {}))
    task = tasks.for_dataset(dataset, dice=config['dice'])
    config.update(task.config(), dataset=dataset.name)
    if workers.chief:
        check_splits(config, dataset, resume)
        if config['init_from'] and not resume:
            check_init_from(config)
    report_samples, select_samples = dataset.samples('val'), dataset.samples(datasets.SELECT)
    class_weights = task.class_weights(config.get('class_weights'), dataset)
    processes = drawing_processes(dataset, workers.alone)
    training_set = TrainingSet(dataset.samples('train'), dataset.load, config['image_shape'], task.training_labels,
                               processes=processes)
    batches = EpochBatches(training_set, not config['no_augment'], config['seed'], config['repeat'],
                           rank=workers.rank, size=workers.size,
                           first=half_size_set(config, dataset, task, processes))
    batch_size = config['batch_size']
    if batch_size > batches.num_images:
        print('note: --batch-size {} is larger than the {} training images; using {}'.format(
            batch_size, batches.num_images, batches.num_images))
        batch_size = batches.num_images
    # the kept epoch is chosen on the selection split when there is one, else on the validation split
    choose, report_only = (select_samples, report_samples) if select_samples else (report_samples, [])
    return Data(dataset, task, batches, batch_size, choose, report_only, class_weights)


def half_size_set(config, dataset, task, processes=0):
    """(--half-size-epochs, the training samples at half --image-shape), or None when the run has none; the
    samples are drawn in `processes` processes, or threads with 0."""
    half = config.get('half_size_epochs', 0)
    if not half:
        return None
    shape = half_shape(config['image_shape'])
    return half, TrainingSet(dataset.samples('train'), functools.partial(dataset.load_for, image_shape=shape), shape,
                             task.training_labels, processes=processes)


def prepare_encoder(config, vgg_dir, workers):
    """vgg_dir/vgg (vgg_x<width> for --encoder-width), built at most once per machine (the machine's first rank
    builds it, the others wait)."""
    if workers.local_rank:
        workers.share(None)
    vgg_path, vgg_source = maybe_build_vgg(vgg_dir, config['fc_width'], config['fc6_kernel'],
                                           vgg_weights=config['vgg_weights'], width=config['encoder_width'])
    if not workers.local_rank:
        workers.share(None)
    check_stages(vgg_path, decoders.NEEDS.get(decoder_of(config), ()))  # graph.build names an unknown decoder
    print('Encoder: {} ({})'.format(vgg_path, vgg_source))
    config.setdefault('vgg_source', vgg_source)
    return vgg_path


def choose_precision(config):
    """Record the run's precision (the flag, else the default) and the arithmetic it means on this CPU; prints
    the CPU line with it."""
    machine = cpu.cpu_info()
    config['precision'] = config.get('precision') or cpu.default_precision()
    precision, why = cpu.choose_precision(config['precision'], machine)
    print('{}; precision {} ({})'.format(cpu.describe(machine), precision, why))
    config.update(cpu=machine, bf16=precision == 'bf16')


def learning_rate_value(config, learning_rate):
    """train_nn's learning_rate_value: the rate itself, or the run's schedule (a callable of its progress); with
    half-size epochs the schedule runs over them, then again over the full-size ones."""
    kind, warmup = config.get('lr_schedule', 'constant'), config.get('warmup', 0.0)
    if (kind, warmup) == ('constant', 0):
        return learning_rate
    rate, half = schedule.learning_rate_at(kind, learning_rate, warmup), config.get('half_size_epochs', 0)
    return schedule.restarted_at(rate, half / config['epochs']) if half else rate


def announce(run, data, workers, learning_rate, rate):
    """The lines that say what this run trains on, its recipe, and how the ranks share it."""
    steps = data.batches.steps_per_epoch(data.batch_size)
    config, dataset = run.config, data.dataset
    if workers.chief:
        print('Run folder: {} ({}: {} classes; {} training images x {} per epoch, {} steps of {}; {})'.format(
            run.partial, dataset.name, dataset.num_classes, data.batches.num_images, config['repeat'], steps,
            data.batch_size, '{} validation images'.format(len(data.choose)) if not data.report else
            '{} selection images choose the kept epoch, {} report-split images are only measured'.format(
                len(data.choose), len(data.report))))
        line = recipe_line(config, learning_rate, scheduled=rate is not learning_rate)
        if line:
            print(line)
    if workers.size > 1:
        print('Horovod: {} ranks, each {} steps of {} images per epoch ({} images per step); learning rate {:g} '
              'x sqrt({}) = {:g}'.format(workers.size, steps, data.batch_size, workers.size * data.batch_size,
                                         config['learning_rate'], workers.size, learning_rate))


def recipe_line(config, learning_rate, scheduled):
    """The "Recipe: ..." line of a run whose rate is scheduled (not constant), has frozen blocks or half-size
    epochs, else None; the schedule runs over the half-size epochs and again over the rest only if scheduled."""
    half, frozen = config.get('half_size_epochs', 0), config.get('freeze_blocks')
    if not (scheduled or frozen or half):
        return None
    return 'Recipe: learning rate {} {:g}{}{}{}'.format(
        config.get('lr_schedule', 'constant'), learning_rate,
        ', warm-up over {:.0%} of the run'.format(config['warmup']) if config.get('warmup') else '',
        ', conv1..conv{} frozen'.format(frozen) if frozen else '',
        ', {} at {}x{} and {} at {}x{}{}'.format(
            _epochs(1, half), *half_shape(config['image_shape']), _epochs(half + 1, config['epochs']),
            *config['image_shape'], ', the schedule over each' if scheduled else '') if half else '')


def _epochs(first, last):
    return 'epoch {}'.format(first) if first == last else 'epochs {}-{}'.format(first, last)


def start_weights(sess, graph, ckpt, run, data, workers, resume):
    """Restore last/ (resuming) or --init-from's best/ on the chief, give every rank its weights and set the
    batches to the first step to train; returns the number of epochs already done."""
    config, num_classes = run.config, data.dataset.num_classes
    last = tf.train.latest_checkpoint(run.path('last')) if workers.chief else None
    if last:
        restore(ckpt.last_saver, sess, last, num_classes, tf.global_variables())
    elif workers.chief and resume:
        print('note: {} has no checkpoint yet; starting from epoch 1'.format(run.path('last')))
    elif workers.chief and config['init_from']:
        source = TrainedRun(config['init_from'])
        start = source.checkpoint
        kind = source.task().name if os.path.isfile(source.config_path) else data.task.name  # a bare checkpoint
        if kind != data.task.name:
            raise InputError('--init-from {}: a {} run; this run is {} (its outputs mean something else)'.format(
                config['init_from'], kind, data.task.name))
        restore(tf.train.Saver(graph.model_vars), sess, start, num_classes, graph.model_vars)
        print('Weights initialised from {}'.format(start))
    workers.sync(sess)  # every rank starts from the chief's weights
    done, step = (int(v) for v in sess.run([graph.epochs_done, graph.step]))
    steps = data.batches.steps_per_epoch(data.batch_size)
    skip = step - done * steps
    data.batches.resume_at(done, max(skip, 0))
    if last:
        print('Resumed from {}: epoch {} of {}{}'.format(last, done, config['epochs'], ', continuing epoch {} at '
              'step {} of {}'.format(done + 1, skip + 1, steps) if 0 < skip < steps else ''))
    return done, bool(last)


class EpochEnd:
    """train_nn's on_epoch_end: every rank counts the epoch; the chief also validates it, keeps the best
    weights, writes checkpoints when due, TensorBoard and history.jsonl. Ctrl-C waits until it is done.

    An entry's `seconds` is the epoch's wall time: from the end of the previous entry (or from the start of
    training in this process) to its own end, steps, validation and checkpoints included; a run's training
    time is the sum over its entries, whatever the number of --resume segments (the graph build before the first
    epoch of each segment, the outputs after the last, and steps of an interrupted epoch trained before the
    interruption are not counted)."""

    def __init__(self, sess, graph, workers, run, ckpt, validator, resumed):
        self.sess, self.graph, self.workers = sess, graph, workers
        self.run, self.ckpt, self.validator = run, ckpt, validator
        self.since = time.time()
        self.writer = tf.summary.FileWriter(run.path('logs'), None if resumed else sess.graph) \
            if workers.chief else None

    def __call__(self, epoch, mean_loss):
        with self.workers.deferred():
            self.sess.run(self.graph.set_epochs, {self.graph.value: epoch + 1})
            if self.workers.chief:
                self.record(epoch, mean_loss)

    def record(self, epoch, mean_loss):
        sess, graph = self.sess, self.graph
        entry = {'epoch': epoch + 1, 'step': int(sess.run(graph.step)), 'loss': mean_loss}
        result, keep = self.validator.run(entry)
        if result is None or keep > sess.run(graph.best_metric):
            sess.run(graph.set_best, {graph.value: keep})
            self.ckpt.mark_best(result, {'epoch': epoch + 1, 'threshold': tasks.THRESHOLD})
            entry['best'] = True
        self.validator.print_line(entry)
        if self.ckpt.due():
            self.ckpt.save()
        self.writer.add_summary(tf.Summary(value=self.validator.summary(entry, result)), entry['step'])
        self.writer.flush()
        entry['seconds'] = round(time.time() - self.since, 1)
        append_line(self.run.path('history.jsonl'), json.dumps(entry))
        self.since = time.time()


def train(config, model, runs_dir, vgg_dir, workers, resume=None, given=None):
    """Train a new run of config (the recorded settings) or resume one; returns the exit code.

    model: the module with the Udacity functions (main). workers: distributed.Solo(), or distributed.Horovod()
    when this process is one rank of a horovodrun job: then every rank trains on its shard, and rank 0 (the
    chief) alone reads and writes the run folder.
    """
    run = open_run(config, workers, resume, given)
    config = run.config
    choose_precision(config)
    data = prepare_data(run, workers, resume)
    vgg_path = prepare_encoder(config, vgg_dir, workers)
    learning_rate = workers.learning_rate(config['learning_rate'])
    rate = learning_rate_value(config, learning_rate)
    if workers.chief:
        run.create(runs_dir)
    announce(run, data, workers, learning_rate, rate)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph, config=workers.session_config(
            session_config(config['threads'], bf16=config['bf16']))) as sess:
        tf.set_random_seed(config['seed'])
        net = model_graph.build(model, sess, vgg_path, config, data.task, data.class_weights,
                                workers.optimizer if workers.size > 1 else None)
        workers.build()
        ckpt = Checkpoints(sess, run, net, data.task, config['checkpoint_minutes'])
        done, resumed = start_weights(sess, net, ckpt, run, data, workers, resume)
        validator = Validator(sess, net, data.dataset, data.task, data.choose, data.report,
                              tuple(config['image_shape']), recorded_flips(config))
        epoch_end = EpochEnd(sess, net, workers, run, ckpt, validator, resumed)
        code = train_epochs(model, sess, net, run, data, workers, ckpt, epoch_end, rate, done)
        if code is not None:
            return code
        flipped = write_outputs(sess, net, run, data, ckpt, epoch_end.writer, validator)
    final = run.finish()
    summarize(os.path.join(final, 'history.jsonl'), len(data.choose), data.task, flipped)
    print('Done: {}'.format(final))
    return 0


def train_epochs(model, sess, net, run, data, workers, ckpt, epoch_end, learning_rate, done):
    """model.train_nn from epoch done on (learning_rate: a rate or a schedule); the exit code when training
    stopped early or this rank is done, None when the chief goes on to write the outputs."""
    config = run.config
    try:
        with workers.stop_guard():
            model.train_nn(sess, config['epochs'], data.batch_size, data.batches, net.train_op, net.loss,
                           net.image_input, net.correct_label, net.keep_prob, net.learning_rate,
                           keep_prob_value=config['keep_prob'], learning_rate_value=learning_rate,
                           first_epoch=done, on_epoch_end=epoch_end, on_step=workers.on_step(sess))
    except KeyboardInterrupt:
        if workers.chief:
            ckpt.save()
            print('\nInterrupted: checkpoint saved in {}; continue with: {}--resume {}'.format(
                run.path('last'), 'python main.py ' if workers.size == 1 else
                'horovodrun -np {} python main.py --horovod '.format(workers.size), run.partial), file=sys.stderr)
        workers.barrier(sess)  # the other ranks leave once the chief's checkpoint is written
        return 130
    except model.TrainingDiverged as e:
        if workers.chief:
            kept = tf.train.latest_checkpoint(run.path('last'))
            print('error: {}; {}'.format(e, 'the last good checkpoint is kept in {}'.format(kept) if kept else
                                         'no checkpoint was written yet'), file=sys.stderr)
        return 1
    same = workers.check_identical(sess, [v for v in tf.global_variables() if v is not net.best_metric])
    if same:
        print('Horovod: the {} ranks ended with identical weights and optimizer state (sha256 {})'.format(
            workers.size, same[:16]))
    return None if workers.chief else 0

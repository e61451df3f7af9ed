"""Horovod glue for data-parallel training (`horovodrun -np N python main.py --horovod ...`).

Imported only with --horovod; Horovod itself is imported on first use, so this module imports on
every stack without it. One process (rank) per GPU, or per CPU share; each rank reads its own shard of
every epoch, Horovod averages the gradients (ring allreduce), rank 0 (the chief) alone writes files.

Learning rate: `--batch-size` is per rank, so a step averages size * batch_size images. The default
rule multiplies Adam's learning rate by sqrt(size): k times the images per step cut the gradient
noise's standard deviation by sqrt(k), and for Adam, whose step is normalised by the gradient's size,
matching the training dynamics gives lr * sqrt(k) (Malladi et al., NeurIPS 2022, who also rescale the
betas; not done here), for SGD lr * k (the linear rule, Goyal et al. 2017, with warm-up). Here Adam at
1e-3 already trained worse than at 1e-4 (README): lr * 8 on 8 GPUs would overshoot.
"""
import collections
import math
import os
import signal

import numpy as np

from .files import InputError, first_line
from .signals import STOP_SIGNALS
from .tfcompat import tf

INSTALL_HINT = 'build it with scripts/install_horovod.sh (TF 1.15.5 / Python 3.7; see README)'
LR_RULES = ('sqrt', 'linear', 'none')


def _hvd():
    """horovod.tensorflow, imported on first use."""
    try:
        import horovod.tensorflow as hvd
    except Exception as e:  # ImportError, or tf.errors.NotFoundError when built against another TF
        raise InputError('--horovod needs Horovod with TensorFlow support ({}); {}'.format(
            first_line(e), INSTALL_HINT))
    return hvd


def init():
    """Start Horovod in this process (launched by horovodrun); returns (rank, size)."""
    hvd = _hvd()
    hvd.init()
    return hvd.rank(), hvd.size()


def rank():
    """This process's index in 0..size-1."""
    return _hvd().rank()


def size():
    """Number of processes in the job."""
    return _hvd().size()


def local_rank():
    """This process's index among the processes on its machine (its GPU)."""
    return _hvd().local_rank()


def is_chief():
    """True on rank 0, the one process that validates and writes the run folder."""
    return rank() == 0


def scaled_learning_rate(learning_rate, workers, rule='sqrt'):
    """The learning rate for `workers` ranks of --batch-size images each (module docstring):
    'sqrt' lr * sqrt(workers) (default, for Adam), 'linear' lr * workers (SGD), 'none' lr."""
    if rule not in LR_RULES:
        raise ValueError('learning-rate rule must be one of {}, got {!r}'.format(', '.join(LR_RULES), rule))
    return learning_rate * {'sqrt': math.sqrt(workers), 'linear': workers, 'none': 1}[rule]


def distributed_optimizer(optimizer):
    """`optimizer` (a tf.train.Optimizer) with its gradients averaged over all ranks before they are applied."""
    return _hvd().DistributedOptimizer(optimizer)


def broadcast_variables_op():
    """An op copying every global variable (weights, Adam slots, step, counters) from rank 0 to all ranks.

    Build it after the whole graph; run it once after initialising, and after rank 0 alone restored a
    checkpoint, so the other ranks never need the run folder.
    """
    return _hvd().broadcast_global_variables(0)


def broadcast_object(obj):
    """Rank 0's `obj` (anything picklable, e.g. the run config on --resume) on every rank.

    Uses a graph and session of its own, so it can be called before the training graph exists.
    """
    hvd = _hvd()
    with tf.Graph().as_default(), tf.Session(config=configure_session(tf.ConfigProto())) as sess:
        return hvd.broadcast_object(obj, 0, session=sess, name='broadcast_object')


def configure_session(config):
    """`config` (a ConfigProto) fitted to this rank and returned: GPU number local_rank only (one process
    per GPU; ignored without GPUs) and, if intra-op threads were left at 0, this machine's cores shared
    among its ranks (two ranks on 2 cores: 1 thread each, not 2 each)."""
    hvd = _hvd()
    config.gpu_options.visible_device_list = str(hvd.local_rank())
    if config.intra_op_parallelism_threads == 0:
        config.intra_op_parallelism_threads = max(1, (os.cpu_count() or 1) // hvd.local_size())
    return config


def shard(order, rank, size):
    """This rank's part of one epoch's sample order (N,): (ceil(N / size),) entries.

    `order` must be the same on every rank (e.g. batches.epoch_rng(seed, epoch).permutation(N)); it is
    wrapped round to a multiple of size (up to size-1 samples appear twice) and rank takes every size-th
    entry. Every rank thus runs the same number of steps, so none waits forever in an allreduce for a
    rank that finished its epoch. Augment with a random stream of each rank's own, not the order's.
    """
    per_rank = -(-len(order) // size)
    return np.resize(np.asarray(order), per_rank * size)[rank::size]


Vote = collections.namedtuple('Vote', 'interrupted diverged mean_loss')


class StopVote:
    """All ranks agree, after every step, on whether to stop; the step's loss is averaged on the way.

    Build it with the graph (on every rank), use it as a context manager around the training loop and
    call it after every step on every rank. Inside the block SIGINT and SIGTERM only raise a flag, so no
    rank leaves in the middle of a collective; one allreduce of (signal flag, non-finite loss flag, loss)
    then gives every rank the same Vote: interrupted (a signal on any rank), diverged (a NaN or infinite
    loss on any rank: the averaged gradients have already spread it to every rank's weights) and the
    loss averaged over ranks (NaN if diverged). After an interrupt rank 0 saves a checkpoint while the
    others wait in barrier(): horovodrun ends all ranks as soon as one exits with a non-zero status.
    """

    def __init__(self):
        hvd = _hvd()
        self._size = hvd.size()
        self._local = tf.placeholder(tf.float64, [3], name='stop_vote_local')
        self._total = hvd.allreduce(self._local, op=hvd.Sum, name='stop_vote')
        self._signals = []
        self._previous = {}

    def __enter__(self):
        self._previous = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc_info):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def _on_signal(self, signum, frame):
        self._signals.append(signum)

    def __call__(self, sess, loss):
        """The Vote after a step whose loss on this rank was `loss` (float); a collective: all ranks call it."""
        loss = float(loss)
        finite = math.isfinite(loss)
        total = sess.run(self._total, {self._local: [float(bool(self._signals)), float(not finite),
                                                     loss if finite else 0.0]})
        diverged = bool(total[1] > 0)
        return Vote(interrupted=bool(total[0] > 0), diverged=diverged,
                    mean_loss=float('nan') if diverged else float(total[2]) / self._size)

    def barrier(self, sess):
        """Return once every rank has called it (e.g. after rank 0 saved its checkpoint)."""
        sess.run(self._total, {self._local: [0.0, 0.0, 0.0]})

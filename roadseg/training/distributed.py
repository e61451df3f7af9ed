"""Horovod glue for data-parallel training (`horovodrun -np N python main.py --horovod ...`).

Horovod itself is imported on first use (Horovod() below), so this module imports on every stack without
it and training without --horovod (Solo) never imports it. One process (rank) per GPU, or per CPU share;
each rank reads its own shard of every epoch (batches.shard), Horovod averages the gradients (ring
allreduce), rank 0 (the chief) alone validates and writes files. train.py asks the same questions of Solo
and Horovod, so the single-process path runs exactly as before.

Learning rate: `--batch-size` is per rank, so a step averages size * batch_size images. The rule here
rule multiplies Adam's learning rate by sqrt(size): k times the images per step cut the gradient
noise's standard deviation by sqrt(k), and for Adam, whose step is normalised by the gradient's size,
matching the training dynamics gives lr * sqrt(k) (Malladi et al., NeurIPS 2022, who also rescale the
betas; not done here), for SGD lr * k (the linear rule, Goyal et al. 2017, with warm-up). Here Adam at
1e-3 already trained worse than at 1e-4 (docs/training.md): lr * 8 on 8 GPUs would overshoot.
"""
import collections
import contextlib
import hashlib
import math
import os
import signal
import sys

import numpy as np

from ..system.files import InputError, first_line
from ..system.signals import STOP_SIGNALS, deferred_stop, raise_on_stop
from ..system.tfcompat import tf

PEER_GONE = 'Horovod has been shut down'  # the error of a collective whose peers are gone
INSTALL_HINT = 'build it with scripts/install_horovod.sh (TF 1.15.5 / Python 3.7; see docs/horovod.md)'


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


def scaled_learning_rate(learning_rate, workers):
    """The learning rate for `workers` ranks of --batch-size images each: lr * sqrt(workers) (module docstring)."""
    return learning_rate * math.sqrt(workers)


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


def allgather_object(obj):
    """[rank 0's obj, rank 1's obj, ...] on every rank (a graph and session of its own, like broadcast_object)."""
    hvd = _hvd()
    with tf.Graph().as_default(), tf.Session(config=configure_session(tf.ConfigProto())) as sess:
        return hvd.allgather_object(obj, session=sess, name='allgather_object')


def configure_session(config):
    """`config` (a ConfigProto) fitted to this rank and returned: GPU number local_rank only (one process
    per GPU; ignored without GPUs) and, if intra-op threads were left at 0, this machine's cores shared
    among its ranks (two ranks on 2 cores: 1 thread each, not 2 each)."""
    hvd = _hvd()
    config.gpu_options.visible_device_list = str(hvd.local_rank())
    if config.intra_op_parallelism_threads == 0:
        config.intra_op_parallelism_threads = max(1, (os.cpu_count() or 1) // hvd.local_size())
    return config


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


def digest(values):
    """sha256 hex digest of a list of numpy arrays (e.g. sess.run(variables)), the same for equal values."""
    h = hashlib.sha256()
    for v in values:
        h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()


class Solo:
    """The whole job in this one process (training without --horovod): what train.py asks of its workers,
    each a no-op or the plain single-process behaviour."""
    rank, size, local_rank, chief = 0, 1, 0, True
    alone = True  # no other rank shares this machine's cores or holds live connections (Horovod: False)

    def session_config(self, config):
        return config

    def learning_rate(self, learning_rate):
        return learning_rate

    def optimizer(self, optimizer):
        return optimizer

    def build(self):
        """Call once the training graph is complete."""

    def sync(self, sess):
        """Make every rank's variables rank 0's (after initialising, and after rank 0 restored a checkpoint)."""

    def share(self, obj):
        return obj

    def quiet(self):
        """Context around this process's whole job: nothing to do alone (Horovod.quiet silences the other ranks
        and stops them with one line when a rank fails)."""
        return contextlib.nullcontext()

    def stop_guard(self):
        """Context around the training loop deciding how Ctrl-C/SIGTERM stop it (here: KeyboardInterrupt at once)."""
        return raise_on_stop()

    def deferred(self):
        """Context holding Ctrl-C/SIGTERM while the chief validates and saves (deferred_stop)."""
        return deferred_stop()

    def on_step(self, sess):
        """train_nn's per-step callback, loss -> the loss to report; None when there is nothing to agree on."""
        return None

    def barrier(self, sess):
        """Return once every rank got here."""

    def check_identical(self, sess, variables):
        """None: one process has nothing to compare (Horovod: the digest all ranks share, else RuntimeError)."""
        return None


class Horovod(Solo):
    """This process as one rank of a `horovodrun -np N python main.py --horovod` job (module docstring)."""
    alone = False

    def __init__(self):
        self.rank, self.size = init()
        self.local_rank, self.chief = _hvd().local_rank(), self.rank == 0
        self._vote = self._sync = None
        self._devnull = None

    def session_config(self, config):
        return configure_session(config)

    def learning_rate(self, learning_rate):
        return scaled_learning_rate(learning_rate, self.size)

    def optimizer(self, optimizer):
        return distributed_optimizer(optimizer)

    def build(self):
        self._vote, self._sync = StopVote(), broadcast_variables_op()

    def sync(self, sess):
        sess.run(self._sync)

    def share(self, obj):
        return broadcast_object(obj)

    @contextlib.contextmanager
    def quiet(self):
        """Ranks other than the chief print nothing to stdout. When another rank ended (its `error:` line says
        why), Horovod shuts down and this rank's collective fails: it prints one `stopped:` line instead of
        Horovod's traceback and exits with status 1."""
        if not self.chief:
            self._devnull = self._devnull or open(os.devnull, 'w')
        try:
            with contextlib.redirect_stdout(self._devnull) if self._devnull else contextlib.nullcontext():
                yield
        except tf.errors.OpError as e:
            if PEER_GONE not in e.message:
                raise
            print('stopped: rank {} of {}: another rank failed (see its error: line)'.format(self.rank, self.size),
                  file=sys.stderr)
            raise SystemExit(1)

    def stop_guard(self):
        return self._vote

    def deferred(self):
        return contextlib.nullcontext()  # the StopVote already holds the signals until the next step's vote

    def on_step(self, sess):
        def vote(loss):
            result = self._vote(sess, loss)
            if result.interrupted:
                raise KeyboardInterrupt
            return result.mean_loss  # NaN on every rank when any rank diverged: train_nn stops them all

        return vote

    def barrier(self, sess):
        self._vote.barrier(sess)

    def check_identical(self, sess, variables):
        digests = allgather_object(digest(sess.run(variables)))
        if len(set(digests)) != 1:
            raise RuntimeError('the {} Horovod ranks ended with different weights (sha256 {})'.format(
                self.size, ', '.join(d[:12] for d in digests)))
        return digests[0]

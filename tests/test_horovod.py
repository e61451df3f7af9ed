"""Data-parallel training with Horovod (roadseg/distributed.py): two Gloo ranks on the CPU.

The two-process tests run where horovod.tensorflow imports (the TF 1.15 stack after
scripts/install_horovod.sh); the glue's Horovod-free parts are tested on every stack.
"""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import ROOT, SAMPLE
from roadseg import distributed
from roadseg.files import InputError, first_line


def _horovod_problem():
    try:
        import horovod.tensorflow  # noqa: F401
    except Exception as e:  # ImportError, or a build for another TensorFlow
        return 'horovod.tensorflow does not import ({}); scripts/install_horovod.sh builds it (TF 1.15.5, ' \
               'Python 3.7)'.format(first_line(e))
    return None


needs_horovod = pytest.mark.skipif(_horovod_problem() is not None, reason=str(_horovod_problem()))

# What main.py --horovod will do, on the tiny model: argv vgg_path data_dir runs_dir epochs fault.
# fault: none; nan (rank 1 feeds a NaN image at step 2); signal (rank 1 gets SIGTERM before step 2).
SCRIPT = textwrap.dedent('''
    import hashlib, os, signal, sys
    import numpy as np
    import main
    from roadseg import batches, datasets, distributed
    from roadseg.files import new_run_dir
    from roadseg.tfcompat import tf

    vgg_path, data_dir, runs_dir, epochs, fault = sys.argv[1:]
    rank, size = distributed.init()
    dataset = datasets.get_dataset(None, data_dir)
    data = batches.TrainingSet(dataset.samples('train'), dataset.load, (64, 192))


    def digest(sess):
        values = sess.run(tf.global_variables())
        return hashlib.sha256(b''.join(np.ascontiguousarray(v).tobytes() for v in values)).hexdigest()[:16]


    with tf.Session(config=distributed.configure_session(tf.ConfigProto())) as sess:
        image_input, keep_prob, l3, l4, l7 = main.load_vgg(sess, vgg_path)
        pretrained = set(tf.global_variables())
        labels = tf.placeholder(tf.float32, [None, None, None, 2])
        learning_rate = tf.placeholder(tf.float32, [])
        output = main.layers(l3, l4, l7, 2, crop_to=image_input)
        adam = tf.train.AdamOptimizer  # main.optimize makes its own Adam: wrap it until it takes an optimizer
        tf.train.AdamOptimizer = lambda lr: distributed.distributed_optimizer(adam(lr))
        _, train_op, loss = main.optimize(output, labels, learning_rate, 2)
        tf.train.AdamOptimizer = adam
        vote = distributed.StopVote()
        sync = distributed.broadcast_variables_op()
        saver = tf.train.Saver()
        sess.run(tf.variables_initializer([v for v in tf.global_variables() if v not in pretrained]))
        if rank:  # other weights than rank 0's, as when rank 0 alone restored a checkpoint
            sess.run([tf.assign_add(v, tf.random_normal(tf.shape(v))) for v in tf.trainable_variables()])
        print('rank', rank, 'before', digest(sess))
        sess.run(sync)
        print('rank', rank, 'after', digest(sess))
        run_dir = new_run_dir(runs_dir)[0] if distributed.is_chief() else None
        lr = distributed.scaled_learning_rate(1e-3, size)
        step = 0
        with vote:
            for epoch in range(int(epochs)):
                order = distributed.shard(batches.epoch_rng(0, epoch).permutation(len(data)), rank, size)
                print('rank', rank, 'epoch', epoch, 'samples', ' '.join(str(i) for i in order))
                losses = []
                for i in order:
                    step += 1
                    images = data.images[[i]].astype(np.float32)
                    if fault == 'nan' and rank == 1 and step == 2:
                        images[:] = np.nan
                    if fault == 'signal' and rank == 1 and step == 2:
                        os.kill(os.getpid(), signal.SIGTERM)
                    _, value = sess.run([train_op, loss], {image_input: images, keep_prob: 1.0, learning_rate: lr,
                                                           labels: batches.one_hot(data.classes[[i]])})
                    result = vote(sess, value)
                    if result.diverged:
                        print('rank', rank, 'diverged at step', step)
                        sys.exit(1)
                    if result.interrupted:
                        if run_dir:
                            saver.save(sess, os.path.join(run_dir, 'model'), global_step=step)
                        vote.barrier(sess)
                        print('rank', rank, 'interrupted at step', step)
                        sys.exit(130)
                    losses.append(result.mean_loss)
                if run_dir:
                    saver.save(sess, os.path.join(run_dir, 'model'), global_step=step)
                    print('epoch', epoch, 'loss', np.mean(losses))
        print('rank', rank, 'final', digest(sess))
''')


def horovodrun(tmp_path, vgg_dir, epochs, fault='none'):
    """Run SCRIPT on 2 local Gloo ranks; returns (exit code, {rank: [stdout lines]}, runs folder, output)."""
    script = tmp_path / 'train_hvd.py'
    script.write_text(SCRIPT)
    runs = tmp_path / 'runs'
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, '-m', 'horovod.runner.launch', '--gloo', '-np', '2', '-H', 'localhost:2',
                           sys.executable, '-u', str(script), os.path.join(vgg_dir, 'vgg'), SAMPLE, str(runs),
                           str(epochs), fault],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, env=env,
                          cwd=str(tmp_path), timeout=600)
    lines = {0: [], 1: []}
    for line in proc.stdout.splitlines():
        m = re.match(r'\[(\d)\]<stdout>:(.*)$', line)
        if m:
            lines[int(m.group(1))].append(m.group(2).strip())
    return proc.returncode, lines, runs, proc.stdout


def value(lines, prefix):
    """The rest of the one line starting with prefix."""
    (found,) = [line[len(prefix):].strip() for line in lines if line.startswith(prefix)]
    return found


@needs_horovod
def test_two_ranks_train_one_model(tmp_path, tiny_vgg_dir):
    code, lines, runs, out = horovodrun(tmp_path, tiny_vgg_dir, epochs=4)
    assert code == 0, out
    assert value(lines[0], 'rank 0 before') != value(lines[1], 'rank 1 before'), 'the ranks start apart'
    assert value(lines[0], 'rank 0 after') == value(lines[1], 'rank 1 after'), 'the broadcast syncs them'
    assert value(lines[0], 'rank 0 final') == value(lines[1], 'rank 1 final'), \
        'identical weights and Adam slots after training'
    shards = [value(lines[r], 'rank {} epoch 0 samples'.format(r)).split() for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 3 and not set(shards[0]) & set(shards[1]), \
        'each rank reads its own half of the 6 training images'
    losses = [float(value(lines[0], 'epoch {} loss'.format(e))) for e in range(4)]
    assert losses[-1] < losses[0], losses
    assert not any(line.startswith('epoch') for line in lines[1]), 'rank 1 keeps quiet'
    written = [os.path.relpath(os.path.join(d, f), str(tmp_path)) for d, _, files in os.walk(str(tmp_path))
               for f in files if f != 'train_hvd.py']
    (run,) = os.listdir(str(runs))
    assert written and all(p.startswith(os.path.join('runs', run) + os.sep) for p in written), \
        'only rank 0 wrote, into its one run folder: {}'.format(written)


@needs_horovod
@pytest.mark.parametrize('fault, code, outcome', [('nan', 1, 'diverged'), ('signal', 130, 'interrupted')])
def test_a_fault_on_one_rank_stops_all_at_the_same_step(tmp_path, tiny_vgg_dir, fault, code, outcome):
    from roadseg.tfcompat import tf
    exit_code, lines, runs, out = horovodrun(tmp_path, tiny_vgg_dir, epochs=3, fault=fault)
    assert exit_code != 0, 'horovodrun reports the stop'
    assert 'Exit code: {}'.format(code) in out, out
    for r in (0, 1):
        assert 'rank {} {} at step 2'.format(r, outcome) in lines[r], out
    (run,) = os.listdir(str(runs))
    saved = tf.train.latest_checkpoint(str(runs / run))
    if fault == 'signal':
        assert saved and saved.endswith('-2'), 'rank 0 saved the interrupted step before anyone left'
    else:
        assert saved is None, 'no NaN weights saved'


def test_no_horovod_import_without_the_flag():
    code = ('import sys; import main, helper, roadseg.cli, roadseg.train, roadseg.distributed; '
            'print(sorted(m for m in sys.modules if m.split(".")[0] == "horovod"))')
    out = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE, universal_newlines=True,
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), timeout=300).stdout
    assert out.strip().splitlines()[-1] == '[]'


def test_missing_horovod_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, 'horovod.tensorflow', None)
    with pytest.raises(InputError, match=r'--horovod needs Horovod .*scripts/install_horovod\.sh'):
        distributed.init()


@pytest.mark.parametrize('n, size', [(6, 2), (9, 2), (10, 4), (3, 8), (7, 1)])
def test_shard_gives_every_rank_the_same_number_of_samples(n, size):
    order = np.random.RandomState(n).permutation(n)
    shards = [distributed.shard(order, r, size) for r in range(size)]
    assert {len(s) for s in shards} == {-(-n // size)}, 'equal steps on every rank'
    assert set(np.concatenate(shards)) == set(range(n)), 'every sample is read'
    if n % size == 0:
        assert sorted(np.concatenate(shards)) == list(range(n)), 'each exactly once'


def test_learning_rate_rules():
    assert distributed.scaled_learning_rate(1e-4, 4) == pytest.approx(2e-4)
    assert distributed.scaled_learning_rate(1e-4, 4, 'linear') == pytest.approx(4e-4)
    assert distributed.scaled_learning_rate(1e-4, 4, 'none') == pytest.approx(1e-4)
    with pytest.raises(ValueError, match='one of sqrt, linear, none'):
        distributed.scaled_learning_rate(1e-4, 4, 'cubic')

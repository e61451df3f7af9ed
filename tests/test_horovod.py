"""Data-parallel training with Horovod: `horovodrun -np 2 python main.py --horovod` on the CPU with Gloo.

The two-process tests run where horovod.tensorflow imports (the TF 1.15 stack after
scripts/install_horovod.sh; CI builds it there); the Horovod-free parts are tested on every stack.
"""
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from conftest import ROOT, SAMPLE, TINY_SHAPE, error_line, run_cli
from roadseg.data import batches
from roadseg.system.files import InputError, first_line
from roadseg.system.tfcompat import tf
from roadseg.training import distributed


def _horovod_problem():
    try:
        import horovod.tensorflow  # noqa: F401
    except Exception as e:  # ImportError, or a build for another TensorFlow
        return 'horovod.tensorflow does not import ({}); scripts/install_horovod.sh builds it (TF 1.15.5, ' \
               'Python 3.7)'.format(first_line(e))
    return None


# CI sets ROADSEG_REQUIRE_HOROVOD=1 on the TF 1.15 stack, where it builds Horovod: a missing build fails there.
needs_horovod = pytest.mark.skipif(_horovod_problem() is not None and os.environ.get('ROADSEG_REQUIRE_HOROVOD') != '1',
                                   reason=str(_horovod_problem()))


def horovodrun(cwd, *argv, **popen):
    """`horovodrun --gloo -np 2 -H localhost:2 python -u ARGV...` started in cwd (a Popen, stdout and stderr merged)."""
    return subprocess.Popen([sys.executable, '-m', 'horovod.runner.launch', '--gloo', '-np', '2', '-H', 'localhost:2',
                             sys.executable, '-u'] + [str(a) for a in argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, cwd=str(cwd),
                            env=dict(os.environ, PYTHONPATH=ROOT), **popen)


def by_rank(output):
    """{rank: [lines]} of horovodrun's '[rank]<stdout>:line' / '[rank]<stderr>:line' output."""
    lines = {0: [], 1: []}
    for line in output.splitlines():
        m = re.match(r'\[(\d)\]<std(?:out|err)>:(.*)$', line)
        if m:
            lines[int(m.group(1))].append(m.group(2).strip())
    return lines


def train_main(tmp_path, tiny_vgg_dir, *flags):
    return horovodrun(tmp_path, os.path.join(ROOT, 'main.py'), '--horovod', '--data-dir', SAMPLE, '--vgg-dir',
                      tiny_vgg_dir, '--runs-dir', tmp_path / 'runs', '--batch-size', 1, '--learning-rate', 1e-3,
                      *(TINY_SHAPE + list(flags)))


def written_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), str(root)) for d, _, files in os.walk(str(root)) for f in files)


def history(run):
    with open(os.path.join(run, 'history.jsonl')) as f:
        return [json.loads(line) for line in f]


@needs_horovod
def test_two_ranks_train_one_model(tmp_path, tiny_vgg_dir):
    proc = train_main(tmp_path, tiny_vgg_dir, '--epochs', 4, '--no-augment')
    out = proc.communicate(timeout=900)[0]
    assert proc.returncode == 0, out
    lines = by_rank(out)
    assert 'Horovod: 2 ranks, each 3 steps of 1 images per epoch (2 images per step); learning rate 0.001 x ' \
           'sqrt(2) = 0.00141421' in lines[0], out
    assert any(line.startswith('Horovod: the 2 ranks ended with identical weights and optimizer state') for line in
               lines[0]), 'the ranks compared their weights and optimizer slots at the end:\n' + out
    assert not any(line.startswith(('Epoch', 'Run folder', 'Done')) for line in lines[1]), 'rank 1 keeps quiet'
    (run,) = os.listdir(str(tmp_path / 'runs'))
    assert not run.endswith('.partial')
    losses = [e['loss'] for e in history(str(tmp_path / 'runs' / run))]
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    files = written_files(tmp_path)
    assert files and all(f.startswith(os.path.join('runs', run) + os.sep) for f in files), \
        'only rank 0 wrote, into its one run folder: {}'.format(files)
    with open(str(tmp_path / 'runs' / run / 'config.json')) as f:
        assert json.load(f)['workers'] == 2


def rank_pid(launcher, rank, timeout=300):
    """The pid of the process horovodrun (pid launcher) started as `rank` (found by its HOROVOD_RANK)."""
    end = time.time() + timeout
    while time.time() < end:
        for pid in filter(str.isdigit, os.listdir('/proc')):
            try:
                with open('/proc/{}/environ'.format(pid), 'rb') as f:
                    env = f.read().split(b'\0')
                with open('/proc/{}/cmdline'.format(pid), 'rb') as f:
                    cmd = f.read()
            except OSError:
                continue
            if 'HOROVOD_RANK={}'.format(rank).encode() in env and b'main.py' in cmd and int(pid) != launcher:
                return int(pid)
        time.sleep(0.5)
    raise AssertionError('no rank {} process'.format(rank))


@needs_horovod
def test_sigterm_on_one_rank_stops_all_and_the_run_resumes(tmp_path, tiny_vgg_dir):
    runs = tmp_path / 'runs'
    proc = train_main(tmp_path, tiny_vgg_dir, '--epochs', 500, '--checkpoint-minutes', 0)
    pid = rank_pid(proc.pid, 1)
    end = time.time() + 600
    while not list(runs.glob('*.partial/history.jsonl')) and time.time() < end and proc.poll() is None:
        time.sleep(0.5)
    os.kill(pid, signal.SIGTERM)
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode != 0 and 'Exit code: 130' in out, out
    (partial,) = runs.glob('*.partial')
    assert any(line.startswith('Interrupted: checkpoint saved in') for line in by_rank(out)[0]), out
    epochs = len(history(str(partial)))
    assert 1 <= epochs < 500

    resumed = train_main(tmp_path, tiny_vgg_dir, '--resume', partial, '--epochs', epochs + 2)
    out = resumed.communicate(timeout=900)[0]
    assert resumed.returncode == 0, out
    assert any(line.startswith('Resumed from') for line in by_rank(out)[0]), out
    (run,) = os.listdir(str(runs))
    assert [e['epoch'] for e in history(str(runs / run))] == list(range(1, epochs + 3))

    assert run_cli('--resume', runs / run, '--vgg-dir', tiny_vgg_dir) == 2, 'a finished run is not resumed'


# A NaN on one rank: main.train_nn with the Horovod workers' step vote, rank 1 feeding a NaN image at step 2.
NAN_SCRIPT = textwrap.dedent('''
    import sys
    import numpy as np
    import main
    from roadseg.data import batches, datasets
    from roadseg.training import distributed
    from roadseg.system.tfcompat import tf

    vgg_path, data_dir = sys.argv[1:]
    workers = distributed.Horovod()
    dataset = datasets.get_dataset(None, data_dir)
    data = batches.TrainingSet(dataset.samples('train'), dataset.load, (64, 192))
    get_batches = batches.EpochBatches(data, rank=workers.rank, size=workers.size)
    steps = []


    def batch_fn(batch_size):
        for images, labels in get_batches(batch_size):
            steps.append(1)
            if workers.rank == 1 and len(steps) == 2:
                images[:] = np.nan
            yield images, labels


    with tf.Session(config=workers.session_config(tf.ConfigProto())) as sess:
        image_input, keep_prob, l3, l4, l7 = main.load_vgg(sess, vgg_path)
        pretrained = set(tf.global_variables())
        labels = tf.placeholder(tf.float32, [None, None, None, 2])
        learning_rate = tf.placeholder(tf.float32, [])
        output = main.layers(l3, l4, l7, 2, crop_to=image_input)
        _, train_op, loss = main.optimize(output, labels, learning_rate, 2, wrap_optimizer=workers.optimizer)
        workers.build()
        sess.run(tf.variables_initializer([v for v in tf.global_variables() if v not in pretrained]))
        workers.sync(sess)
        try:
            with workers.stop_guard():
                main.train_nn(sess, 3, 1, batch_fn, train_op, loss, image_input, labels, keep_prob, learning_rate,
                              on_step=workers.on_step(sess))
        except main.TrainingDiverged as e:
            print('rank', workers.rank, 'diverged at step', len(steps), ':', e)
            sys.exit(1)
''')


@needs_horovod
def test_a_nan_on_one_rank_stops_all_at_the_same_step(tmp_path, tiny_vgg_dir):
    script = tmp_path / 'nan.py'
    script.write_text(NAN_SCRIPT)
    proc = horovodrun(tmp_path, script, os.path.join(tiny_vgg_dir, 'vgg'), SAMPLE)
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode != 0 and 'Exit code: 1' in out, out
    lines = by_rank(out)
    for r in (0, 1):
        assert any(line.startswith('rank {} diverged at step 2 : loss became nan'.format(r)) for line in lines[r]), out


@needs_horovod
def test_a_rank_that_fails_stops_the_others_with_one_line(tmp_path, tiny_vgg_dir):
    broken = tmp_path / 'encoder'
    shutil.copytree(os.path.join(tiny_vgg_dir, 'vgg'), str(broken / 'vgg'))
    os.remove(str(broken / 'vgg' / 'variables' / 'variables.index'))
    proc = horovodrun(tmp_path, os.path.join(ROOT, 'main.py'), '--horovod', '--data-dir', SAMPLE, '--vgg-dir', broken,
                      '--runs-dir', tmp_path / 'runs', *TINY_SHAPE)
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode != 0, out
    lines = by_rank(out)
    assert [line for line in lines[0] if line.startswith('error: ')] == [
        'error: incomplete VGG SavedModel: {} is missing (delete {} to rebuild it)'.format(
            broken / 'vgg' / 'variables' / 'variables.index', broken / 'vgg')], out
    assert 'stopped: rank 1 of 2: another rank failed (see its error: line)' in lines[1], out
    assert not any('Traceback' in line for line in lines[0] + lines[1]), out


class Rank1(distributed.Horovod):
    """Rank 1 of 2 without starting Horovod."""

    def __init__(self):
        self.rank, self.size, self.local_rank, self.chief, self._devnull = 1, 2, 1, False, None


def test_another_rank_gone_stops_this_one_with_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        with Rank1().quiet():
            print('rank 1 keeps quiet')
            raise tf.errors.UnknownError(None, None, distributed.PEER_GONE + '. This was caused by an exception on '
                                                                             'one of the ranks ...')
    assert stop.value.code == 1
    assert capsys.readouterr() == ('', 'stopped: rank 1 of 2: another rank failed (see its error: line)\n')
    with pytest.raises(tf.errors.UnknownError, match='something else'):
        with Rank1().quiet():
            raise tf.errors.UnknownError(None, None, 'something else')


def test_no_horovod_import_without_the_flag():
    code = ('import sys; import main, helper, roadseg.cli, roadseg.training.train, roadseg.training.distributed; '
            'print(sorted(m for m in sys.modules if m.split(".")[0] == "horovod"))')
    out = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE, universal_newlines=True,
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), timeout=300).stdout
    assert out.strip().splitlines()[-1] == '[]'


def test_missing_horovod_is_one_clear_error(monkeypatch, capsys, tiny_vgg_dir, tmp_path):
    monkeypatch.setitem(sys.modules, 'horovod.tensorflow', None)
    with pytest.raises(InputError, match=r'--horovod needs Horovod .*scripts/install_horovod\.sh'):
        distributed.init()
    assert run_cli('--horovod', '--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--runs-dir', tmp_path) == 2
    assert capsys.readouterr().err.startswith('error: --horovod needs Horovod')
    assert os.listdir(str(tmp_path)) == [], 'nothing written'


@pytest.mark.parametrize('n, size', [(6, 2), (9, 2), (10, 4), (3, 8), (7, 1)])
def test_shard_gives_every_rank_the_same_number_of_samples(n, size):
    order = np.random.RandomState(n).permutation(n)
    shards = [batches.shard(order, r, size) for r in range(size)]
    assert {len(s) for s in shards} == {-(-n // size)}, 'equal steps on every rank'
    assert set(np.concatenate(shards)) == set(range(n)), 'every sample is read'
    if n % size == 0:
        assert sorted(np.concatenate(shards)) == list(range(n)), 'each exactly once'


class Counted(batches.TrainingSet):
    """A training set whose images are filled with their own index, to see which samples a rank gets."""

    def __init__(self, n):
        self.images = np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1) * np.ones((1, 4, 4, 3), np.float32)
        self.classes = np.zeros((n, 4, 4), np.uint8)
        self.encode = batches.one_hot


@pytest.mark.parametrize('n, size, batch_size, repeat', [(7, 2, 2, 1), (6, 3, 4, 2)])
def test_each_rank_reads_its_own_shard_of_every_epoch(n, size, batch_size, repeat):
    seen = []
    for rank in range(size):
        ranked = batches.EpochBatches(Counted(n), augment=False, seed=3, repeat=repeat, rank=rank, size=size)
        per_rank = math.ceil(n * repeat / size)
        assert ranked.steps_per_epoch(batch_size) == math.ceil(per_rank / batch_size)
        got = [int(im[0, 0, 0]) for images, _ in ranked(batch_size) for im in images]
        assert len(got) == per_rank
        seen.append(got)
    assert set(sum(seen, [])) == set(range(n)), 'the ranks together read every sample of the epoch'
    whole = [int(im[0, 0, 0]) for images, _ in batches.EpochBatches(Counted(n), augment=False, seed=3,
                                                                     repeat=repeat)(n * repeat) for im in images]
    assert sorted(np.resize(whole, len(sum(seen, [])))) == sorted(sum(seen, [])), \
        'the shards are the single-process epoch order split among the ranks'


def test_learning_rate_rule():
    assert distributed.scaled_learning_rate(1e-4, 4) == pytest.approx(2e-4)
    assert distributed.scaled_learning_rate(1e-4, 1) == 1e-4


def test_resume_needs_as_many_processes_as_the_run_had(tiny_run, tiny_vgg_dir, tmp_path, capsys):
    partial = str(tmp_path / (os.path.basename(tiny_run) + '.partial'))
    shutil.copytree(tiny_run, partial)
    config = os.path.join(partial, 'config.json')
    with open(config) as f:
        settings = json.load(f)
    assert settings['workers'] == 1
    settings['workers'] = 2
    with open(config, 'w') as f:
        json.dump(settings, f)
    assert run_cli('--resume', partial, '--vgg-dir', tiny_vgg_dir, '--epochs', 2) == 2
    assert error_line(capsys) == 'error: {} was trained by 2 process(es); resume it with as many: horovodrun -np 2 ' \
                                 'python main.py --horovod --resume RUN'.format(partial)


@needs_horovod
def test_two_ranks_train_one_multi_label_model(tmp_path, tiny_vgg_dir):
    """A multi-label run (sigmoid labels, the task's own loss and loss mask) trains on two ranks as one model."""
    from PIL import Image
    data = tmp_path / 'labels'
    rng = np.random.RandomState(0)
    for sub in ('images', 'masks/a', 'masks/b'):
        os.makedirs(str(data / sub))
    for i in range(6):
        image = rng.randint(0, 255, (64, 192, 3)).astype(np.uint8)
        Image.fromarray(image).save(str(data / 'images' / '{}.png'.format(i)))
        a, b = np.zeros((64, 192), np.uint8), np.zeros((64, 192), np.uint8)
        a[:, :96], b[16:48] = 255, 255  # overlapping labels
        Image.fromarray(a).save(str(data / 'masks' / 'a' / '{}.png'.format(i)))
        Image.fromarray(b).save(str(data / 'masks' / 'b' / '{}.png'.format(i)))
    with open(str(data / 'classes.json'), 'w') as f:
        json.dump({'multi_label': True, 'names': ['a', 'b']}, f)
    proc = horovodrun(tmp_path, os.path.join(ROOT, 'main.py'), '--horovod', '--data-dir', data, '--vgg-dir',
                      tiny_vgg_dir, '--runs-dir', tmp_path / 'runs', '--batch-size', 1, '--epochs', 2,
                      '--class-weights', 'balanced', *TINY_SHAPE)
    out = proc.communicate(timeout=900)[0]
    assert proc.returncode == 0, out
    assert any(line.startswith('Horovod: the 2 ranks ended with identical weights and optimizer state') for line in
               by_rank(out)[0]), out
    (run,) = os.listdir(str(tmp_path / 'runs'))
    with open(str(tmp_path / 'runs' / run / 'config.json')) as f:
        assert json.load(f)['task'] == 'labels'
    assert all('val_iou' in e for e in history(str(tmp_path / 'runs' / run)))

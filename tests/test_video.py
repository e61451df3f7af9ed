"""Video overlay round trip: frame count, frame size and fps survive; memory is streamed."""
import imageio
import numpy as np
import pytest

from conftest import run_cli
from roadseg.serving import video


def make_video(path, frames, size, fps):
    """A synthetic H.264 video of `frames` frames of size (w, h) at fps; returns its path as str."""
    w, h = size
    pixfmt = 'yuv420p' if w % 2 == 0 and h % 2 == 0 else 'yuv444p'
    with imageio.get_writer(str(path), format='ffmpeg', fps=fps, codec='libx264', pixelformat=pixfmt,
                            macro_block_size=1) as writer:
        for i in range(frames):
            frame = np.zeros((h, w, 3), np.uint8)
            frame[h // 2:] = 90 + 10 * i
            writer.append_data(frame)
    return str(path)


def read_back(path):
    reader = imageio.get_reader(path, 'ffmpeg')
    meta = reader.get_meta_data()
    frames = [f for f in reader]
    reader.close()
    return meta, frames


@pytest.mark.parametrize('size,fps,frames', [((33, 17), 7, 5), ((64, 48), 25, 3)])
def test_video_round_trip(tmp_path, tiny_run, size, fps, frames):
    src = make_video(tmp_path / 'in.mp4', frames, size, fps)
    out = tmp_path / 'out.mp4'
    assert run_cli('--video', src, '--output', out, '--checkpoint', tiny_run) == 0
    meta, got = read_back(str(out))
    assert len(got) == frames
    assert got[0].shape == (size[1], size[0], 3)
    assert meta['fps'] == pytest.approx(fps)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.mp4', 'out.mp4'], 'no temporary files left'


def test_video_streams_frames(tmp_path, tiny_run, monkeypatch):
    """Never more than one batch of frames in flight: the model sees batches of at most batch_size."""
    from roadseg import Segmenter
    model = Segmenter(tiny_run)
    seen = []
    real = model.predict_iter
    monkeypatch.setattr(model, 'predict_iter',
                        lambda images, batch_size=4: (seen.append(len(images)), real(images, batch_size))[1])
    src = make_video(tmp_path / 'in.mp4', 7, (40, 24), 10)
    count, _ = video.overlay_video(None, src, str(tmp_path / 'out.mp4'), batch_size=3, model=model)
    model.close()
    assert count == 7 and seen == [3, 3, 1]

"""Video overlay: frame count, frame size and fps survive; memory is streamed; each frame is painted where the
model (on either backend, with or without --flip) says road, and nowhere else."""

import imageio
import numpy as np
import pytest

from conftest import ROAD, iou, road_scene, run_cli
from roadseg.serving import video
from roadseg.serving.inference import Segmenter


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


def road_video(path, frames, fps=5, size=(64, 192)):
    """An H.264 video of synthetic road scenes (road_scene); returns (its path as str, the true road per frame)."""
    rng = np.random.RandomState(7)
    scenes = [road_scene(rng, size) for _ in range(frames)]
    with imageio.get_writer(str(path), format='ffmpeg', fps=fps, codec='libx264', pixelformat='yuv420p',
                            quality=9, macro_block_size=1) as writer:
        for image, _ in scenes:
            writer.append_data(image)
    return str(path), [parts == ROAD for _, parts in scenes]


def inner(mask, margin=2):
    """The pixels of mask at least margin pixels inside it (away from the chroma subsampling at its edges)."""
    out = mask.copy()
    for dy in range(-margin, margin + 1):
        for dx in range(-margin, margin + 1):
            out[max(dy, 0):out.shape[0] + min(dy, 0), max(dx, 0):out.shape[1] + min(dx, 0)] &= \
                mask[max(-dy, 0):mask.shape[0] + min(-dy, 0), max(-dx, 0):mask.shape[1] + min(-dx, 0)]
    return out


@pytest.mark.parametrize('backend,flip', [('tensorflow', False), ('onnxruntime', False), ('tensorflow', True),
                                          ('onnxruntime', True)])
def test_frames_are_painted_where_the_model_says_road(learned_onnx_run, tmp_path, monkeypatch, backend, flip):
    """--video runs the model with the backend and flip asked (the frames alone cannot tell: the backends agree
    within 1e-4 and flipping changes only the road's edges); road pixels move halfway to green (0, 255, 0), the
    others stay (within H.264's error), where the same Segmenter finds road in the decoded input frames; and
    that is the true road."""
    ran = []

    class Recording(Segmenter):
        def _run(self, batch):
            ran.append((self.backend, self.flips))
            return super(Recording, self)._run(batch)

    monkeypatch.setattr(video, 'Segmenter', Recording)
    src, truths = road_video(tmp_path / 'in.mp4', 5)
    out = str(tmp_path / 'out.mp4')
    assert run_cli('--video', src, '--output', out, '--checkpoint', learned_onnx_run, '--backend', backend,
                   *(['--flip'] if flip else [])) == 0
    assert ran and set(ran) == {(backend, 'h' if flip else 'none')}, ran
    _, frames_in = read_back(src)
    _, frames_out = read_back(out)
    assert len(frames_out) == len(frames_in) == 5
    with Segmenter(learned_onnx_run, backend=backend, flip=flip) as model:
        _, classes = model.predict(np.stack(frames_in))
    for n, (before, after, road, truth) in enumerate(zip(frames_in, frames_out, classes == 1, truths)):
        change = after.astype(np.float32) - before
        toward_green = (np.float32([0, 255, 0]) - before) / 2
        painted, kept = inner(road), inner(~road)
        error_painted = np.abs(change - toward_green)[painted].mean()
        error_kept = np.abs(change)[kept].mean()
        print('frame {}: {:.1%} road (IoU {:.3f} with the truth); mean error {:.1f} on road, {:.1f} elsewhere'.format(
            n, road.mean(), iou(road, truth), error_painted, error_kept))
        assert 0.05 < road.mean() < 0.95 and iou(road, truth) > 0.7
        assert error_painted < 8 and error_kept < 8
        assert np.abs(toward_green)[painted].mean() > 40, 'painting road is a visible change'

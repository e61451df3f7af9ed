"""Prediction overlays on driving video (the run's task paints them), streamed frame by frame through imageio's
bundled ffmpeg."""
import os
import re
import subprocess
import tempfile
import time

from ..system.files import InputError, atomic_path, check_writable_dir, first_line
from ..system.progress import bar
from .inference import Segmenter


def _reader(path):
    import imageio
    if not os.path.isfile(path):
        raise InputError('video not found: {}'.format(path))
    if os.path.getsize(path) == 0:
        raise InputError('{}: empty file (0 bytes), not a video'.format(path))
    try:
        reader = imageio.get_reader(path, 'ffmpeg')
        meta = reader.get_meta_data()
    except Exception as e:  # imageio raises OSError/RuntimeError/IndexError for non-videos
        raise InputError('{}: not a readable video or has no frames ({})'.format(path, first_line(e, 160)))
    if not meta.get('size') or not meta.get('fps'):
        reader.close()
        raise InputError('{}: no video stream'.format(path))
    return reader, meta


def check_output(video_in, video_out):
    """InputError unless video_out names a video file other than video_in (compared by real path) in a container
    ffmpeg writes H.264 into; OutputError (exit 1) when its folder is not writable. Reads no frame, loads no
    model, leaves no file behind."""
    if video_out.endswith(('/', os.sep)) or os.path.isdir(video_out):
        raise InputError('output {} is a folder; --video writes a video file, e.g. {}'.format(
            video_out, os.path.join(video_out, 'overlay.mp4')))
    if os.path.realpath(video_out) == os.path.realpath(video_in) or (
            os.path.exists(video_out) and os.path.exists(video_in) and os.path.samefile(video_out, video_in)):
        raise InputError('output {} is the input video {}: the overlay would overwrite it; choose another '
                         '--output'.format(video_out, video_in))
    ext = os.path.splitext(video_out)[1]
    if not ext:
        raise InputError('output {} has no extension: ffmpeg picks the container by it; use e.g. {}.mp4'.format(
            video_out, video_out))
    problem = _encode_problem(ext)
    if problem:
        raise InputError('output {}: cannot write H.264 video into a {} file ({}); use .mp4, .mkv, .mov or .avi'
                         .format(video_out, ext, problem))
    check_writable_dir(os.path.dirname(os.path.abspath(video_out)), 'output folder for the video')


def _encode_problem(ext):
    """Why imageio's ffmpeg cannot write one H.264 frame into an `ext` file (tried in a temporary folder), or
    None."""
    import imageio
    import imageio_ffmpeg
    with tempfile.TemporaryDirectory(prefix='roadseg-probe-') as folder:
        probe = os.path.join(folder, 'probe' + ext)
        try:  # imageio's ffmpeg plugin accepts a name by its extension
            imageio.get_writer(probe, format='ffmpeg', codec='libx264').close()
        except Exception as e:
            return first_line(e, 160)
        proc = subprocess.run(  # the container must take H.264 (WebM does not)
            [imageio_ffmpeg.get_ffmpeg_exe(), '-nostdin', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i',
             'color=c=black:s=16x16:r=1', '-frames:v', '1', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', probe],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    if proc.returncode:
        lines = [re.sub(r'^\[[^\]]*\]\s*', '', line) for line in proc.stderr.splitlines() if line.strip()]
        return (lines or ['ffmpeg exit status {}'.format(proc.returncode)])[0][:160]
    return None


def _frames(reader, path):
    """Frames as uint8 (H, W, 3); InputError when the stream is broken mid-way."""
    try:
        for frame in reader:
            yield frame[:, :, :3]
    except (OSError, RuntimeError) as e:
        raise InputError('{}: cannot decode frames ({})'.format(path, first_line(e, 160)))


def overlay_video(checkpoint, video_in, video_out, which='best', batch_size=4, model=None, precision=None,
                  flip=None, backend='auto', threads=0):
    """Write video_out: video_in with the run's predictions painted on (road in translucent green, or class
    colours), same fps and frame size.

    Streams frames (memory stays flat), batches them through the model (a Segmenter of the checkpoint run
    on backend unless one is given), writes to a temporary file in video_out's folder that is renamed to
    video_out only when complete. An output that is the input or that ffmpeg cannot write is refused first
    (check_output).
    Returns (frames written, frames per second).
    """
    import imageio
    check_output(video_in, video_out)
    reader, meta = _reader(video_in)
    own_model = model is None
    model = model or Segmenter(checkpoint, which, threads=threads, backend=backend, precision=precision,
                               flip=flip)
    paint = model.task.paint
    fps = meta['fps']
    width, height = meta['size']
    # yuv420p needs even sizes; odd frames keep their size with full-resolution chroma instead
    pixfmt = 'yuv420p' if width % 2 == 0 and height % 2 == 0 else 'yuv444p'
    count, start = 0, time.time()
    try:
        with atomic_path(video_out) as tmp:
            writer = imageio.get_writer(tmp, format='ffmpeg', fps=fps, codec='libx264', quality=7,
                                        pixelformat=pixfmt, macro_block_size=1)
            try:
                progress = bar(desc='Video', unit='frame', total=_frame_count(meta))
                frames = _frames(reader, video_in)
                batch = []
                for frame in frames:
                    batch.append(frame)
                    if len(batch) == batch_size:
                        count += _write(writer, model, batch, progress, paint)
                        batch = []
                if batch:
                    count += _write(writer, model, batch, progress, paint)
                progress.close()
            finally:
                writer.close()
            if count == 0:
                raise InputError('{}: the video has no frames'.format(video_in))
    finally:
        reader.close()
        if own_model:
            model.close()
    rate = count / max(time.time() - start, 1e-9)
    print('Wrote {} ({} frames, {}x{}, {:g} fps; {:.2f} frames/s)'.format(video_out, count, width, height, fps, rate))
    return count, rate


def _write(writer, model, batch, progress, paint):
    for frame, (probs, _) in zip(batch, model.predict_iter(batch, len(batch))):
        writer.append_data(paint(frame, probs))
    progress.update(len(batch))
    progress.set_postfix(fps='{:.2f}'.format(progress.format_dict['n'] / max(progress.format_dict['elapsed'], 1e-9)))
    return len(batch)


def _frame_count(meta):
    n = meta.get('nframes')
    if n and n != float('inf'):
        return int(n)
    duration = meta.get('duration')
    return int(round(duration * meta['fps'])) if duration else None

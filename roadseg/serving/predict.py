"""Prediction over many images: --predict's class maps, overlays and KITTI submission files for every image of a
folder.

    python main.py --predict IN_DIR --checkpoint RUN --output OUT_DIR [--which best|last]

For each image of IN_DIR (sorted), at its original size, the files the run's task names (roadseg/task/):
a softmax run's OUT_DIR/<stem>.png (8-bit class indices) and OUT_DIR/<stem>_overlay.png (classes translucent
over the image); a KITTI road run also the KITTI benchmark file OUT_DIR/<category>_road_<number>.png (8-bit
road probability, round(255 p)) for KITTI-named images (um_, umm_, uu_); OUT_DIR/legend.png when the task
has a legend.
"""
import os
import sys

from ..data.images import image_files, read_image
from ..system.files import InputError, check_writable_dir, save_image_atomic
from ..system.progress import bar
from .inference import Segmenter


def _check_collisions(paths, task):
    """InputError when two inputs would write the same output file (a.png and a.jpg, a.png and a_overlay.png),
    or one would write over the legend.png of a run that has one."""
    owner = {} if task.legend() is None else {'legend.png': 'the class legend'}
    for path in paths:
        for name in task.output_names(path):
            if name in owner:
                raise InputError('{} and {} would both write {}; rename one'.format(owner[name], path, name))
            owner[name] = path


def _read_chunk(paths, progress):
    """[(path, uint8 RGB image)] of the readable images among paths; one `error:` line each on stderr for
    the others (the progress bar counts them as done). Returns (pairs, bad count)."""
    pairs, bad = [], 0
    for path in paths:
        try:
            pairs.append((path, read_image(path)))
        except InputError as e:
            progress.write('error: {}'.format(e), file=sys.stderr)
            progress.update(1)
            bad += 1
    return pairs, bad


def predict_folder(run, in_dir, out_dir, which='best', batch_size=4, precision=None, backend='auto',
                   flip=None):
    """Write the outputs (module docstring) of every image in in_dir to out_dir with run's `which` checkpoint
    (backend: see inference.Segmenter).

    Streams: images are read batch_size at a time. Unreadable or over-limit images get one `error:` line each
    on stderr and are skipped; the others are still written. Returns the exit code: 0, or 1 if any image was
    bad. InputError for an in_dir that is a file, missing or empty, an out_dir that is a file or in_dir, or two
    inputs whose outputs would share a name; OutputError when out_dir is not writable.
    """
    if os.path.isfile(in_dir):
        raise InputError('--predict {} is a file; --predict takes a folder and predicts every image in it'
                         .format(in_dir))
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError('--output {} is a file, not a folder; --predict writes class maps and overlays into a '
                         'folder'.format(out_dir))
    paths = image_files(in_dir)
    if not paths:
        raise InputError('no images (.png, .jpg, .jpeg) in {}'.format(in_dir))
    if os.path.realpath(in_dir) == os.path.realpath(out_dir):
        raise InputError('--output {} is the input folder: the outputs would overwrite or join its images'
                         .format(out_dir))
    check_writable_dir(out_dir, 'output folder')
    with Segmenter(run, which, backend=backend, precision=precision, flip=flip) as model:
        task = model.task
        _check_collisions(paths, task)
        legend = task.legend()
        if legend is not None:
            save_image_atomic(os.path.join(out_dir, 'legend.png'), legend)
        written = extras = bad = 0
        progress = bar(total=len(paths), desc='Predict', unit='image')
        try:
            for start in range(0, len(paths), batch_size):
                pairs, failed = _read_chunk(paths[start:start + batch_size], progress)
                bad += failed
                results = model.predict_iter([image for _, image in pairs], batch_size)
                for (path, image), (probs, decision) in zip(pairs, results):
                    extras += task.write_outputs(out_dir, path, image, probs, decision)
                    written += 1
                    progress.update(1)
        finally:
            progress.close()
    print('Wrote {} of {} images to {} ({}){}'.format(
        written, len(paths), out_dir, task.outputs_note(extras),
        '; {} unreadable, skipped (see the error lines)'.format(bad) if bad else ''))
    return 1 if bad else 0

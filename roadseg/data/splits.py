"""Splits: the stratified every-n-th split maker, the split files' sha256 (a run records them in config.json
as 'splits'), and the check that refuses --resume / --init-from across a changed split."""
import os
from itertools import groupby

from ..system.bundled import ROOT
from ..system.files import InputError, file_digest


def every_nth(items, start, step, group=None):
    """Sorted items taken from index start every step-th, within each group (group(item) -> key; one group
    when None) of the sorted items: a split spread evenly over every group."""
    key = group or (lambda item: None)
    taken = []
    for _, members in groupby(sorted(items, key=lambda item: (str(key(item)), item)), key=lambda i: str(key(i))):
        taken += list(members)[start::step]
    return sorted(taken)


def file_name(path):
    """'splits/val.txt' for a file inside the project (the same in every clone), else its absolute path."""
    path = os.path.abspath(path)
    rel = os.path.relpath(path, ROOT)
    return path if rel.split(os.sep)[0] == os.pardir else rel.replace(os.sep, '/')


def split_files(dataset):
    """{name: path} of the files that decide the dataset's splits (KITTI: splits/val.txt and
    splits/select.txt); {} for datasets split by their folders alone."""
    return {file_name(path): path for path in dataset.split_paths}


def sha256(path):
    """Hex sha256 of the file's bytes; InputError naming a file that cannot be read."""
    try:
        return file_digest(path)
    except (IOError, OSError) as e:
        raise InputError('split file {}: {}'.format(path, e.strerror or e))


def checksums(dataset):
    """{name: sha256 hex} of split_files(dataset), for a run's config['splits']."""
    return {name: sha256(path) for name, path in split_files(dataset).items()}


def check_unchanged(recorded, current, run_config_path, flag):
    """Raise InputError unless the split files are those the run was trained with.

    recorded: the run's config['splits'] ({name: sha256 hex}), or None for a run older than these
    checksums: such runs pass unchecked. current: checksums() of the data now. run_config_path: the run's
    config.json (named in the message). flag: '--resume' or '--init-from'. A recorded file that differs or
    is not a split file of the data now is a change, and so is a split file the run did not record: images
    the run trained on could now be validated or selected on, or the reverse.
    """
    if recorded is None:
        return
    run = os.path.dirname(run_config_path)
    for name in sorted(set(recorded) | set(current)):
        old, new = recorded.get(name), current.get(name)
        if old == new:
            continue
        if old is None:
            what = '{} is new since {} was trained (not in {})'.format(name, run, run_config_path)
        else:
            what = '{} changed since {} was trained (sha256 {} recorded in {}, now {})'.format(
                name, run, old[:12], run_config_path, 'not a split file of this data' if new is None else new[:12])
        raise InputError('{} {}: {}; its images would mix with those the run trained on: restore the file, or '
                         'train a new run without {}'.format(flag, run, what, flag))

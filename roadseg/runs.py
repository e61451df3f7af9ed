"""A run folder, read and written here alone: config.json (the run's settings and what it was trained on),
best/ and last/ checkpoints, export/ paths, the split checksums a continued run must match.

    RUN/config.json  history.jsonl  loss_curve.png  logs/  test_images/
    RUN/best/        the kept model (checkpoint, frozen_inference.pb, evaluation/)
    RUN/last/        everything, Adam slots included, for --resume
    RUN/export/      --export of best/ (export_last/ of last/)

A run being trained is RUN.partial until it is complete. Importing this module loads no TensorFlow.
"""
import json
import os

from .data import datasets, splits
from .system.files import InputError, finish_run_dir, first_line, new_run_dir, write_bytes_atomic

CONFIG = 'config.json'
RESUMABLE_CHANGES = ('epochs', 'threads', 'checkpoint_minutes', 'precision')  # what --resume may set anew


def read_config(run_dir, missing=None):
    """The run's config.json as a dict. InputError when it is missing (the message `missing`, else one naming
    the file) or damaged (not a JSON object: cut short, edited by hand)."""
    path = os.path.join(run_dir, CONFIG)
    try:
        with open(path) as f:
            config = json.load(f)
    except FileNotFoundError:
        raise InputError(missing or '{} not found'.format(path))
    except (OSError, ValueError) as e:
        raise InputError('{} is damaged ({}); the run\'s settings cannot be read'.format(path, first_line(e)))
    if not isinstance(config, dict):
        raise InputError('{} is damaged (not a JSON object); the run\'s settings cannot be read'.format(path))
    return config


def write_config(run_dir, config):
    """Write config.json atomically."""
    write_bytes_atomic(os.path.join(run_dir, CONFIG), json.dumps(config, indent=2).encode())


class Run:
    """The run being trained: its config (the recorded settings, completed as training learns them) and,
    on the rank that writes it, its folder (partial while training, final once complete)."""

    def __init__(self, config, partial=None):
        self.config = config
        self.partial = partial
        self.final = partial[:-len('.partial')] if partial else None

    @classmethod
    def resume(cls, path, given):
        """The interrupted run at path; given: the recorded settings typed on the command line."""
        path = path.rstrip('/\\')
        config_path = os.path.join(path, CONFIG)
        config = read_config(path, '--resume needs a run folder with config.json: {} not found'.format(config_path))
        if not path.endswith('.partial'):
            raise InputError('run {} is complete (its folder has no .partial suffix), nothing to resume; to train '
                             'further start a new run with --init-from {}'.format(path, path))
        config.setdefault('precision', 'bf16' if config.get('bf16') else 'fp32')  # runs from before --precision
        config.setdefault('decoder', decoder_of(config))  # runs from before --decoder
        for key, value in sorted(given.items()):
            if key not in RESUMABLE_CHANGES and value != config.get(key):
                raise InputError('--{} {} conflicts with the run\'s {} ({}); --resume continues a run with its '
                                 'own settings'.format(key.replace('_', '-'), _flag_value(value), config_path,
                                                       _flag_value(config.get(key))))
        config.update((key, given[key]) for key in RESUMABLE_CHANGES if given.get(key) is not None)
        return cls(config, path)

    def create(self, runs_dir):
        """Reserve the folder (unless resuming) and write config.json; called once the inputs are checked."""
        if self.partial is None:
            self.partial, self.final = new_run_dir(runs_dir)
        write_config(self.partial, self.config)

    def finish(self):
        """Rename the complete run to its final name; returns it."""
        return finish_run_dir(self.partial, self.final)

    def path(self, *parts):
        return os.path.join(self.partial, *parts)


def decoder_of(config):
    """The decoder a run's settings name (roadseg/model/decoders.py): `decoder`, else for runs from before
    --decoder fcn<N> from their `fcn` (8, 16 or 32), fcn8 when neither is recorded."""
    return config.get('decoder') or 'fcn{}'.format(config.get('fcn', 8))


def _flag_value(value):
    return ' '.join(str(v) for v in value) if isinstance(value, (list, tuple)) else value


def find_checkpoint(path, which='best'):
    """Checkpoint prefix from a run folder (its best/ or last/ checkpoint), a checkpoint folder or a prefix.
    A run without best/ uses last/, with a note saying so."""
    from .system.tfcompat import tf  # here: reading config.json needs no TensorFlow
    if path is None:
        raise InputError('no checkpoint given: pass --checkpoint runs/<timestamp>')
    for folder in (os.path.join(path, which), os.path.join(path, 'last'), path):
        if os.path.isdir(folder):
            prefix = tf.train.latest_checkpoint(folder)
            if not prefix:  # a folder moved after training: its `checkpoint` file names the old place
                indexes = sorted((f for f in os.listdir(folder) if f.endswith('.index')),
                                 key=lambda f: os.path.getmtime(os.path.join(folder, f)))
                if indexes and os.path.exists(os.path.join(folder, indexes[-1][:-len('.index')] + '.meta')):
                    prefix = os.path.join(folder, indexes[-1][:-len('.index')])
            if prefix:
                if folder == os.path.join(path, 'last') and which != 'last':
                    print('note: {} has no {}/ checkpoint; using last/ ({})'.format(path, which, prefix))
                return prefix
    if os.path.exists(path + '.index') and os.path.exists(path + '.meta'):
        return path
    raise InputError('no checkpoint found at {} (expected a training run folder with best/ or last/)'
                     .format(path))


def run_folder(prefix):
    """The run folder of a checkpoint prefix: the parent of its best/ or last/ folder, else its own folder."""
    folder = os.path.dirname(os.path.abspath(prefix))
    return os.path.dirname(folder) if os.path.basename(folder) in ('best', 'last') else folder


def export_dir(prefix):
    """Where --export writes checkpoint prefix's exports: RUN/export/, or RUN/export_last/ for a last/ one."""
    from_last = os.path.basename(os.path.dirname(os.path.abspath(prefix))) == 'last'
    return os.path.join(run_folder(prefix), 'export_last' if from_last else 'export')


def read_image_shape(run_dir):
    """(height, width) the run was trained at, from its config.json; InputError if it is missing or broken."""
    path = os.path.join(run_dir, CONFIG)
    config = read_config(run_dir, '{} not found: the run\'s config.json gives the image size the model was '
                                  'trained at'.format(path))
    try:
        height, width = config['image_shape']
        return int(height), int(width)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError('{}: no readable image_shape ({})'.format(path, first_line(e)))


def run_dataset(run, data_dir=None):
    """The dataset a run was trained on (from its config.json), reading data_dir when given."""
    config = read_config(run, '{} has no config.json to say which data it was trained on'.format(run))
    name = config.get('dataset', 'kitti_road')
    data_dir = data_dir or config.get('data_dir')
    if name != 'shapes' and (not data_dir or not os.path.isdir(data_dir)):
        raise InputError('data for evaluation not found: {} (pass --data-dir)'.format(data_dir))
    return datasets.get_dataset(name, data_dir, **config.get('dataset_options', {}))


def check_init_from(config):
    """InputError when --init-from's run was trained with another decoder than config's (its weights would not
    fit); a checkpoint without a run folder's config.json is checked when restored."""
    source_dir = run_folder(find_checkpoint(config['init_from'], 'best'))
    if os.path.isfile(os.path.join(source_dir, CONFIG)):
        theirs, ours = decoder_of(read_config(source_dir)), decoder_of(config)
        if theirs != ours:
            raise InputError('--init-from {} was trained with --decoder {}, this run has --decoder {}: its weights '
                             'start the same decoder only'.format(config['init_from'], theirs, ours))


def check_splits(config, dataset, resume):
    """Record the dataset's split checksums in config['splits']; InputError when --resume or --init-from would
    continue a run of the same dataset across a changed split file (roadseg/data/splits.py)."""
    current = splits.checksums(dataset)
    if resume:
        splits.check_unchanged(config.get('splits'), current, os.path.join(resume.rstrip('/\\'), CONFIG), '--resume')
    elif config['init_from']:
        source_dir = run_folder(find_checkpoint(config['init_from'], 'best'))
        source = read_config(source_dir)
        if source.get('dataset', 'kitti_road') == dataset.name:
            splits.check_unchanged(source.get('splits'), current, os.path.join(source_dir, CONFIG), '--init-from')
    config['splits'] = current

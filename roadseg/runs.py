"""A run folder, read and written here alone: config.json (the run's settings and what it was trained on),
best/ and last/ checkpoints, export/ paths, the split checksums a continued run must match.

    RUN/config.json  history.jsonl  loss_curve.png  logs/  test_images/
    RUN/best/        the kept model (checkpoint, frozen_inference.pb, evaluation/)
    RUN/last/        everything, Adam slots included, for --resume
    RUN/export/      --export of best/ (export_last/ of last/)

A run being trained is RUN.partial until it is complete (Run); a trained one is parsed once into a TrainedRun,
which serving and evaluation receive. Importing this module loads no TensorFlow.
"""
import json
import os

from . import task as tasks
from .data import datasets, splits
from .model.names import decoder_of
from .system.files import InputError, finish_run_dir, first_line, new_run_dir, write_bytes_atomic

CONFIG = 'config.json'
FROZEN = 'frozen_inference.pb'  # the kept model frozen for inference, in best/ (and export/)
CHECKPOINTS = ('best', 'last')  # the checkpoint folders of a run
EXPORT_DIRS = {'best': 'export', 'last': 'export_last'}  # checkpoint folder -> where --export writes its files
RESUMABLE_CHANGES = ('epochs', 'threads', 'checkpoint_minutes', 'precision')  # what --resume may set anew


def recorded_flips(config):
    """The test-time flips a run's config predicts with (--flip; model/prediction.py FLIPS), 'none' by default."""
    return config.get('flip') or 'none'


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
        config.setdefault('encoder_width', 1.0)  # runs from before --encoder-width
        config.setdefault('dice', False)  # runs from before --dice
        config.setdefault('flip', 'none')  # runs from before --flip was recorded
        for key, value in sorted(given.items()):
            if key not in RESUMABLE_CHANGES and value != config.get(key):
                raise InputError('--{} {} conflicts with the run\'s {} ({}); --resume continues a run with its '
                                 'own settings'.format(key.replace('_', '-'), _flag_value(value), config_path,
                                                       _flag_value(config.get(key))))
        config.update((key, given[key]) for key in RESUMABLE_CHANGES if given.get(key) is not None)
        if config.get('half_size_epochs', 0) >= config['epochs']:
            raise InputError('--epochs {} must be more than the run\'s {} half-size epochs ({})'.format(
                config['epochs'], config['half_size_epochs'], config_path))
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


def record_commit(config, commit, resumed):
    """Record in config the commit of the code training the run (system/commit.py code_commit(); None when that
    code is not a git checkout): `commit`, that of a new run; `resumed_commits`, other code that resumed it."""
    if not resumed:
        config['commit'] = commit
    elif commit != config.get('commit') and commit not in config.get('resumed_commits', []):
        config['resumed_commits'] = config.get('resumed_commits', []) + [commit]


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


class TrainedRun:
    """A trained run folder, parsed once: what serving and evaluation receive instead of a path.

    path names the run folder, its best/ or last/ folder (which checkpoint: that one, whatever which says), or
    a checkpoint prefix. Attributes: path (the run folder), which ('best' or 'last', as asked), and, read on
    first use: config (config.json as a dict), config_path, image_shape (h, w) the network runs at,
    num_classes (None where the run did not record it), flips, dataset_name, checkpoint (the prefix; last/ with a note
    when best/ is missing), export_dir (RUN/export/ of best/, RUN/export_last/ of last/). InputError naming
    the file when config.json is missing or broken, or there is no checkpoint.
    """

    def __init__(self, path, which='best'):
        if path is None:
            raise InputError('no checkpoint given: pass --checkpoint runs/<timestamp>')
        path = os.path.normpath(str(path))
        self._prefix = self._config = self._image_shape = None
        folder = os.path.dirname(path) or '.'
        if os.path.exists(path + '.index') and os.path.exists(path + '.meta'):  # a checkpoint prefix
            self._prefix = path
            if os.path.basename(folder) in CHECKPOINTS:  # RUN/best/ or RUN/last/
                path, which = os.path.dirname(folder) or '.', os.path.basename(folder)
            else:
                path = folder
        elif os.path.basename(path) in CHECKPOINTS and not os.path.isfile(os.path.join(path, CONFIG)):
            path, which = folder, os.path.basename(path)
        self.path, self.which = path, which
        self.config_path = os.path.join(path, CONFIG)

    @classmethod
    def of(cls, run, which='best'):
        """run itself when it is a TrainedRun, else the TrainedRun at the path run (with which)."""
        return run if isinstance(run, cls) else cls(run, which)

    @property
    def config(self):
        if self._config is None:
            self._config = read_config(self.path, '{} not found: {} has no config.json to give the image size the '
                                                  'model was trained at and the data it was trained on'
                                       .format(self.config_path, self.path))
        return self._config

    @property
    def image_shape(self):
        if self._image_shape is None:
            try:
                height, width = self.config['image_shape']
                self._image_shape = int(height), int(width)
            except (KeyError, TypeError, ValueError) as e:
                raise InputError('{}: no readable image_shape ({})'.format(self.config_path, first_line(e)))
        return self._image_shape

    @property
    def num_classes(self):
        return self.config.get('num_classes')

    @property
    def flips(self):
        """recorded_flips of the run's config."""
        return recorded_flips(self.config)

    @property
    def dataset_name(self):
        return self.config.get('dataset', 'kitti_road')

    @property
    def checkpoint(self):
        if self._prefix is None:
            self._prefix = find_checkpoint(self.path, self.which)
        return self._prefix

    @property
    def export_dir(self):
        folder = os.path.basename(os.path.dirname(os.path.abspath(self.checkpoint)))
        return os.path.join(self.path, EXPORT_DIRS['last' if folder == 'last' else 'best'])

    def task(self, num_classes=None):
        """What the run predicts (roadseg/task/, config.json's "task"); num_classes: its model's outputs,
        checked when given. InputError naming config.json when they do not fit."""
        return tasks.for_config(self.config, self.config_path, num_classes)

    def dataset(self, data_dir=None):
        """The dataset the run was trained on, read from data_dir when given, else from where config.json says."""
        data_dir = data_dir or self.config.get('data_dir')
        if self.dataset_name != 'shapes' and (not data_dir or not os.path.isdir(data_dir)):
            raise InputError('data for evaluation not found: {} (pass --data-dir)'.format(data_dir))
        return datasets.get_dataset(self.dataset_name, data_dir, **self.config.get('dataset_options', {}))


def check_init_from(config):
    """InputError when --init-from's run was trained with another decoder than config's (its weights would not
    fit); a checkpoint without a run folder's config.json is checked when restored."""
    source = TrainedRun(find_checkpoint(config['init_from'], 'best'))
    if os.path.isfile(source.config_path):
        theirs, ours = decoder_of(source.config), decoder_of(config)
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
        source = TrainedRun(find_checkpoint(config['init_from'], 'best'))
        if source.dataset_name == dataset.name:
            splits.check_unchanged(source.config.get('splits'), current, source.config_path, '--init-from')
    config['splits'] = current

"""How a record (docs/results/NAME.json, roadseg/evaluation/results.py) reads in the generated docs
(scripts/results_doc.py, scripts/decoder_tables.py): loading it, percentages, durations, the machine, the model
scored, the commits. Needs no TensorFlow."""
import json
import os

from recipes import RESULTS_DIR


class MissingField(ValueError):
    """A field the docs read is not in a record (edited by hand); names the file and the field."""


class Fields(dict):
    """A JSON object of the record at path, `where` its place in it ('' the record, 'cpu', 'curve[0].validation'):
    reading a field it lacks raises MissingField naming path and the field."""

    def __init__(self, items, path, where):
        super(Fields, self).__init__(items)
        self.path, self.where = path, where

    def __missing__(self, key):
        raise MissingField('{}: the field {} is missing'.format(self.path, _inner(self.where, key)))


def _inner(where, key):
    """The dotted name of field key inside where ('' at the top)."""
    return '{}.{}'.format(where, key) if where else str(key)


def _fields(value, path, where=''):
    """value with each JSON object (at any depth) a Fields of path."""
    if isinstance(value, dict):
        return Fields({k: _fields(v, path, _inner(where, k)) for k, v in value.items()}, path, where)
    if isinstance(value, list):
        return [_fields(v, path, '{}[{}]'.format(where, i)) for i, v in enumerate(value)]
    return value


def load(name, results_dir=RESULTS_DIR):
    """The record of recipe `name` (Fields: a field it lacks raises MissingField), or None when it has not been
    written; ValueError naming the file when it is not a JSON object (cut short, edited by hand)."""
    path = os.path.join(results_dir, name + '.json')
    if not os.path.exists(path):
        return None
    with open(path) as f:
        try:
            record = json.load(f)
        except ValueError as e:
            raise ValueError('{} is not a result record: {}'.format(path, e))
    if not isinstance(record, dict):
        raise ValueError('{} is not a result record: not a JSON object'.format(path))
    return _fields(record, path)


def pct(value, digits=2):
    return '-' if value is None else '{:.{}f}'.format(100 * value, digits)


def duration(seconds):
    minutes = int(round(seconds / 60))
    return '{} h {:02d} min'.format(minutes // 60, minutes % 60) if minutes >= 60 else '{} min'.format(max(minutes, 1))


def machine(r):
    """'2-core Intel(R) Xeon(R) ... (AVX-512 without BF16), TensorFlow 2.21.0, fp32'."""
    return '{}-core {} ({}), TensorFlow {}, {}'.format(r['cpu']['cores'], r['cpu']['model'], r['cpu']['class'],
                                                       r['tensorflow'], r['precision'])


def scored(r):
    """('kept' or 'last', epoch): the model the record's evaluation scored (records written before `scored` was
    recorded scored the kept one)."""
    return (r['scored'], r['scored_epoch']) if 'scored' in r else ('kept', r['kept_epoch'])


def scored_phrase(r):
    """'kept epoch 33 of 40' or 'last epoch 33 of 33'."""
    return '{} epoch {} of {}'.format(*scored(r) + (r['epochs'],))


def short_commit(commit):
    """'`b6444af970d8`' in backquotes (with '-dirty' when the checkout had changes), 'unknown' for None."""
    if not commit:
        return 'unknown'
    return '`{}{}`'.format(commit[:12], '-dirty' if commit.endswith('-dirty') else '')


def commits(r):
    """(trained, resumed, recorded): the commit of the code that trained the run (None when its config.json did
    not record one), those that resumed it, and that of the code that wrote the record (records written before
    `trained_commit` named it `git_commit`)."""
    return r.get('trained_commit'), r.get('resumed_commits', []), r.get('commit', r.get('git_commit'))


def commits_phrase(r):
    """'Trained at commit `X` (resumed at `Y`), recorded at `Z`', 'Trained and recorded at commit `X`', or
    'Recorded at commit `Z` (the training's commit not recorded)'."""
    trained, resumed, recorded = commits(r)
    if trained is None and not resumed:
        return 'Recorded at commit {} (the training\'s commit not recorded)'.format(short_commit(recorded))
    if trained == recorded and not resumed:
        return 'Trained and recorded at commit {}'.format(short_commit(recorded))
    return 'Trained at commit {}{}, recorded at {}'.format(
        short_commit(trained), ' (resumed at {})'.format(', '.join(map(short_commit, resumed))) if resumed else '',
        short_commit(recorded))

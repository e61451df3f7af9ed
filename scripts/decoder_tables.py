"""docs/decoders.md's comparison tables (scripts/results_doc.py writes them between its markers), from the records
of the compared recipes (scripts/recipes.py COMPARISONS, compared): docs/results/camvid-DECODER.json and
kitti-DECODER.json, then the variants' (camvid-fcn8-median.json), one row per recipe whose record exists, in
--decoder's order, then the variants'. Needs no TensorFlow."""
from record_text import commits_phrase, duration, load, machine, pct, scored_phrase
from recipes import COMPARISONS, RESULTS_DIR, compared

BASELINE = 'fcn8'  # the decoder the others' training cost is a multiple of
CALLED_OUT = ('Pole', 'SignSymbol', 'Pedestrian', 'Bicyclist')  # CamVid's thin classes, lost at 1/8 resolution
TITLES = {'camvid': 'CamVid, 352x480', 'kitti': 'KITTI Road, 160x576'}
SCORED = {  # by the compared recipe's `which` (recipes.py), filled in from a record's splits
    'last': 'Each run\'s last model, the end of the fixed budget, scored on the {report_images} validation images (no '
            'epoch was chosen: they are the only images scored).',
    'best': 'Each run\'s kept epoch, chosen on the {choose_images} selection images (`splits/select.txt`), scored on '
            'the {report_images} report-split images (`splits/val.txt`), which chose nothing.'}
COST_HEADINGS = ['train s/image', 'x ' + BASELINE, 'validation s/image', 'parameters (M)']


def comparison_records(dataset, results_dir=RESULTS_DIR):
    """{row label: record} of the dataset's compared recipes whose record exists, in recipes.compared's order."""
    records = ((label, load(name, results_dir)) for label, name in compared(dataset))
    return {label: r for label, r in records if r is not None}


def _row(cells):
    return '| ' + ' | '.join(cells) + ' |'


def _heading(names, numeric_from=1):
    return [_row(names), '|' + '|'.join('---' if i < numeric_from else '---:' for i in range(len(names))) + '|']


def cost_cells(r, base):
    """[train s/image, its multiple of base's (with * when base ran on another machine or precision), validation
    s/image, parameters in millions] of a record; base: the BASELINE's record or None."""
    seconds = r['seconds_per_image']
    ratio = '-'
    if base is not None:
        ratio = '{:.2f}x{}'.format(seconds['training'] / base['seconds_per_image']['training'],
                                   '' if machine(r) == machine(base) else ' *')
    validation = seconds['validation']
    return ['{:.3f}'.format(seconds['training']), ratio, '-' if validation is None else '{:.3f}'.format(validation),
            '{:.2f}'.format(r['parameters'] / 1e6)]


def camvid_table(records):
    base = records.get(BASELINE)
    rows = _heading(['decoder', 'images', 'mIoU'] + list(CALLED_OUT) + ['pixel accuracy', 'mean class accuracy']
                    + COST_HEADINGS)
    for decoder, r in records.items():
        e = r['evaluation']['plain']
        iou = dict(zip(e['classes'], e['class_iou']))
        rows.append(_row(['`{}`'.format(decoder), '{:,}'.format(r['images_trained']), pct(e['mean_iou'], 1)]
                         + [pct(iou.get(c), 1) for c in CALLED_OUT]
                         + [pct(e['pixel_accuracy'], 1), pct(e['mean_class_accuracy'], 1)] + cost_cells(r, base)))
    return rows


def class_table(records):
    """Every class's IoU per decoder (the classes of the first record)."""
    classes = next(iter(records.values()))['evaluation']['plain']['classes']
    rows = _heading(['decoder'] + classes + ['mean'])
    for decoder, r in records.items():
        e = r['evaluation']['plain']
        iou = dict(zip(e['classes'], e['class_iou']))
        rows.append(_row(['`{}`'.format(decoder)] + [pct(iou.get(c), 1) for c in classes] + [pct(e['mean_iou'], 1)]))
    return rows


def kitti_table(records):
    base = records.get(BASELINE)
    rows = _heading(['decoder', 'images', 'MaxF1', 'AP', 'road IoU', 'kept epoch'] + COST_HEADINGS)
    for decoder, r in records.items():
        o = r['evaluation']['plain']['overall']
        rows.append(_row(['`{}`'.format(decoder), '{:,}'.format(r['images_trained']), pct(o['max_f1']),
                          pct(o['average_precision']), '{:.3f}'.format(o['iou']),
                          '{} of {}'.format(r['kept_epoch'], r['epochs'])] + cost_cells(r, base)))
    return rows


def runs_table(records):
    """Per row: the command, the model scored, the training wall time, the machine, the date and the commits."""
    rows = _heading(['decoder', 'command', 'scored', 'wall time', 'machine', 'date', 'commits'], numeric_from=7)
    for decoder, r in records.items():
        rows.append(_row(['`{}`'.format(decoder), '`{}`'.format(r['command']), scored_phrase(r),
                          duration(r['wall_time_seconds']), machine(r), r['date'], commits_phrase(r)]))
    return rows


def section(dataset, records):
    comparison = COMPARISONS[dataset]
    rows = compared(dataset)
    lines = ['### {}, {} epochs each'.format(TITLES[dataset], comparison.epochs), '']
    if not records:
        return lines + ['Not yet run: `python scripts/reproduce.py {}` trains them one after the other and writes '
                        '`docs/results/NAME.json` for each, from which this table is generated.'.format(
                            ' '.join(name for _, name in rows)), '']
    missing = [name for label, name in rows if label not in records]
    lines += [SCORED[comparison.recipe.which].format_map(next(iter(records.values()))['splits']), '']
    lines += (camvid_table(records) + [''] + class_table(records) if dataset == 'camvid' else kitti_table(records))
    lines += ['', 'train s/image: the epochs\' wall time less their validation (steps and checkpoints) over the images '
              'trained; x {0}: that as a multiple of `{0}`\'s (* where `{0}` ran on another machine or precision: not '
              'comparable); validation s/image: the validation passes during training (prediction, reading, resizing '
              'and scoring) over the images they scored; parameters: the weights in the scored checkpoint, encoder '
              'included.'.format(BASELINE), '']
    lines += runs_table(records) + ['']
    if missing:
        lines += ['Not yet run: `python scripts/reproduce.py {}`.'.format(' '.join(missing)), '']
    return lines


def decoders_text(comparisons, generated_note):
    """The text between docs/decoders.md's markers; comparisons: {dataset: comparison_records(dataset)}."""
    lines = [generated_note, '']
    for dataset in COMPARISONS:
        lines += section(dataset, comparisons.get(dataset, {}))
    return '\n'.join(lines).rstrip('\n')


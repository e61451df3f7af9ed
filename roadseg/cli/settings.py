"""The training settings of main.py: what a run records in its config.json and their defaults, the recipes of the
bundled sample and of --dataset shapes, and training_settings(), the flags given with all of these filled in."""
import os

from ..data.batches import half_shape
from ..data.datasets import detect
from ..model.names import FULL_LADDER, LADDERS
from ..model.prediction import check_flips
from ..system import bundled
from ..system.files import InputError

SAMPLE_DIR = bundled.path('data', 'sample')
DEFAULT_DATA = os.path.join('data', 'data_road')

# The training settings a run records in its config.json, with their defaults; the parser's own defaults are
# None so that what the user typed is known.
# The training defaults are the best full-budget KITTI recipe measured (docs/results.md): poly decay from 3e-4
# after a 5% warm-up, 40 epochs of batch 4.
RECORDED = dict(epochs=40, batch_size=4, learning_rate=3e-4, keep_prob=0.5, image_shape=[160, 576],
                l2_scale=1e-3, skip_scaling=False, fc_width=None, fc6_kernel=None, no_augment=False, seed=0,
                threads=0, precision=None, init_from=None, repeat=1, checkpoint_minutes=10.0, data_dir=DEFAULT_DATA,
                vgg_weights=None, dataset=None, decoder='fcn8', class_weights=None, lr_schedule='poly', warmup=0.05,
                freeze_blocks=0, encoder_width=1.0, dice=False, ladder_stages=FULL_LADDER, half_size_epochs=0,
                flip='none')
DEFAULTS = dict(RECORDED, vgg_dir='data', runs_dir='runs', which='best')
# The bundled sample (6 training images): what makes `python main.py` on a fresh clone end with a usable model
# within minutes (measured in docs/training.md, "First run on the sample"). Flags given on the command line still win.
SAMPLE_RECIPE = dict(epochs=6, batch_size=2, repeat=4, learning_rate=3e-4, lr_schedule='poly', warmup=0.0)
# --dataset shapes --multi-label: the recipe meant to finish within 5 minutes on 2 cores at 128x128
# (docs/multi-label.md); flags given on the command line still win. SHAPES_IMAGES: training, validation, test and
# selection images generated; many distinct training images seen few times each learn more than few seen many
# times. The 64 selection images choose the kept epoch; the 256 validation images only measure it (32 of them gave
# a mean IoU 0.03-0.05 off the one of 1,024).
SHAPES_RECIPE = dict(encoder_width=0.25, decoder='unet', ladder_stages=3, dice=True, keep_prob=1.0, no_augment=True,
                     l2_scale=0.0, epochs=8, half_size_epochs=3, batch_size=4, learning_rate=1e-3, lr_schedule='poly',
                     warmup=0.0, image_shape=[128, 128], flip='d8')
SHAPES_IMAGES = (3072, 256, 8, 64)
# Shapes in each training image, fewest and most: more than the 2-4 of the validation and test images, so more of
# the training pixels are overlaps, where the labels are hardest (docs/multi-label.md).
SHAPES_TRAIN_SHAPES = (4, 7)
SHAPES_FLAGS = ('multi_label', 'grayscale')
DATASET_FLAGS = SHAPES_FLAGS + ('classes',)  # recorded as the run's dataset_options; --resume keeps the run's own


def recipe_flags(recipe):
    """The flags of a recipe (setting -> value), e.g. '--batch-size 2 --epochs 4 --learning-rate 0.0003'."""
    return ' '.join('--{} {}'.format(k.replace('_', '-'), '{:g}'.format(v) if isinstance(v, (int, float)) else v)
                    for k, v in sorted(recipe.items()))


def training_settings(args):
    """The training flags with defaults filled in; the bundled sample's recipe when the default KITTI data is
    absent. The dataset is detected from the data folder's layout unless --dataset names it."""
    settings = _settings(args)
    half = settings['half_size_epochs']
    if half and half >= settings['epochs']:
        raise InputError('--half-size-epochs {} must be fewer than --epochs ({})'.format(half, settings['epochs']))
    if half and half_shape(settings['image_shape']) is None:
        raise InputError('--half-size-epochs trains at half --image-shape, so that must be multiples of 64; got '
                         '{} {}'.format(*settings['image_shape']))
    check_flips(settings['flip'], settings['image_shape'], '--image-shape')
    if settings['decoder'] not in LADDERS:
        if args.ladder_stages is not None:
            raise InputError('--ladder-stages applies to --decoder {}, not {}'.format(' or '.join(LADDERS),
                                                                                     settings['decoder']))
        settings['ladder_stages'] = FULL_LADDER  # the shapes recipe's is its U-Net's
    return settings


def _settings(args):
    given = {k: v for k, v in vars(args).items() if v is not None and k != 'bf16'}  # modes.merge_bf16 folded it in
    settings = dict(DEFAULTS, **given)
    options = {k: True for k in SHAPES_FLAGS if given.get(k)}
    if options and (settings['dataset'] != 'shapes' or 'multi_label' not in options):
        raise InputError('--{} is for --dataset shapes --multi-label (a folder dataset is multi-label when its '
                         'classes.json says "multi_label": true)'.format(sorted(options)[-1].replace('_', '-')))
    if 'classes' in given:  # checked against the data when the dataset is built (roadseg/data/datasets/)
        settings['dataset_options'] = dict(classes=given['classes'])
    if settings['dataset'] == 'shapes':
        settings['data_dir'] = None
        if options:
            settings.update({k: v for k, v in SHAPES_RECIPE.items() if k not in given})
            if 'half_size_epochs' not in given:
                settings['half_size_epochs'] = _shapes_half_size_epochs(settings['epochs'], settings['image_shape'])
            if 'flip' not in given and settings['image_shape'][0] != settings['image_shape'][1]:
                print('note: --flip hv: the shapes recipe\'s d8 flips swap rows and columns, which only a square '
                      '--image-shape allows')
                settings['flip'] = 'hv'
            settings['dataset_options'] = dict(settings.get('dataset_options', {}), counts=list(SHAPES_IMAGES),
                                               size=settings['image_shape'], train_shapes=list(SHAPES_TRAIN_SHAPES),
                                               **options)
        return settings
    if settings['dataset'] not in (None, 'kitti_road') and 'data_dir' not in given:
        raise InputError('--dataset {} needs --data-dir, the folder holding it (the default {} is KITTI Road\'s; '
                         'see docs/data.md)'.format(settings['dataset'], DEFAULT_DATA))
    data_dir = settings['data_dir']
    if os.path.isdir(data_dir):
        settings['dataset'] = settings['dataset'] or detect(data_dir)
        if settings['dataset'] is None:
            raise InputError('{}: not a known dataset layout; see docs/data.md (KITTI: training/image_2 and '
                             'training/gt_image_2)'.format(data_dir))
        return settings
    if 'data_dir' in given or settings['dataset'] not in (None, 'kitti_road') or not os.path.isdir(SAMPLE_DIR):
        raise InputError('data not found: {} is not a folder (see data/README.md)'.format(data_dir))
    recipe = {k: v for k, v in SAMPLE_RECIPE.items() if k not in given}
    print('note: {} not found; training on the bundled sample {} (see data/README.md for the full set){}'.format(
        data_dir, SAMPLE_DIR, ', with ' + recipe_flags(recipe) if recipe else ''))
    settings.update(recipe, data_dir=SAMPLE_DIR, dataset='kitti_road')
    return settings


def _shapes_half_size_epochs(epochs, image_shape):
    """The shapes recipe's half-size epochs in a run of `epochs` at image_shape: its share of them (3 of 8, rounded
    down), none (with a note) where image_shape is not a multiple of 64."""
    half = epochs * SHAPES_RECIPE['half_size_epochs'] // SHAPES_RECIPE['epochs']
    if half and half_shape(image_shape) is None:
        print('note: all epochs at {}x{}: the shapes recipe trains {} of {} at half size only where --image-shape is '
              'a multiple of 64'.format(image_shape[0], image_shape[1], half, epochs))
        return 0
    return half

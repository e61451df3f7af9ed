"""The modes of main.py (training or one of MODES), which flags fit each, and the checks that the flags given
fit the chosen mode and hold values that can work: InputError otherwise."""
from ..model.names import SKIP_SCALING
from ..system.files import InputError
from .settings import DATASET_FLAGS, RECORDED

MODES = ('resume', 'evaluate', 'video', 'predict', 'export')
TRAINING_FLAGS = set(RECORDED) | {'vgg_dir', 'runs_dir', 'horovod', 'fcn'} | set(DATASET_FLAGS)
ALLOWED = {  # mode -> the flags that mean something in it
    'train': TRAINING_FLAGS,
    'resume': TRAINING_FLAGS - {'init_from'} - set(DATASET_FLAGS) | {'resume'},
    'evaluate': {'evaluate', 'flip', 'which', 'data_dir', 'threads', 'precision', 'backend'},
    'video': {'video', 'flip', 'output', 'checkpoint', 'which', 'threads', 'precision', 'backend'},
    'predict': {'predict', 'flip', 'output', 'checkpoint', 'which', 'precision', 'backend'},
    'export': {'export', 'which', 'format', 'data_dir', 'calibration_images'},
}


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
    if args.half_size_epochs is not None and args.half_size_epochs < 0:
        raise InputError('--half-size-epochs must be 0 or more, got {}'.format(args.half_size_epochs))
    if args.checkpoint_minutes is not None and args.checkpoint_minutes < 0:
        raise InputError('--checkpoint-minutes must be 0 (every epoch) or more, got {}'.format(args.checkpoint_minutes))
    if args.warmup is not None and not 0 <= args.warmup < 1:
        raise InputError('--warmup is a fraction of the run in [0, 1), got {}'.format(args.warmup))
    if args.keep_prob is not None and not 0 < args.keep_prob <= 1:
        raise InputError('--keep-prob must be in (0, 1], got {}'.format(args.keep_prob))
    if args.encoder_width is not None and not 0 < args.encoder_width <= 1:
        raise InputError('--encoder-width must be in (0, 1], got {}'.format(args.encoder_width))
    if args.encoder_width not in (None, 1) and args.vgg_weights:
        raise InputError('--vgg-weights {} is for the full VGG16; an --encoder-width {:g} encoder has no pretrained '
                         'weights and learns from scratch'.format(args.vgg_weights, args.encoder_width))
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise InputError('--learning-rate must be > 0, got {}'.format(args.learning_rate))
    if args.image_shape is not None:
        h, w = args.image_shape
        if h <= 0 or w <= 0 or h % 32 or w % 32:
            raise InputError('--image-shape must be positive multiples of 32, got {} {} (try {} {})'.format(
                h, w, max(32, round(h / 32) * 32), max(32, round(w / 32) * 32)))
    if args.precision == 'bf16':
        from ..system.cpu import bf16_warning, cpu_info
        from ..system.tfcompat import session_config
        try:
            session_config(bf16=True)
        except ValueError as e:
            raise InputError('--{}: {}'.format('bf16' if args.bf16 else 'precision bf16', e))
        warning = bf16_warning(cpu_info())
        if warning:
            print(warning)

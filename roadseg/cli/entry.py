"""main.py's entry point: main() parses the flags, dispatch() runs the chosen mode; errors become one
`error:` line and an exit code."""
import errno
import sys

from ..serving.layout import DEFAULT_FORMATS
from ..system.files import InputError, OutputError, check_writable_dir
from ..system.signals import raise_on_stop
from .flags import build_parser
from .modes import check_flags, merge_bf16, merge_fcn, mode_of
from .settings import DEFAULTS, RECORDED, training_settings


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
    """Run the mode the parsed flags ask for; returns the exit code."""
    mode = mode_of(args)
    merge_bf16(args)
    check_flags(args, mode)
    merge_fcn(args)
    which = args.which or DEFAULTS['which']
    if mode == 'video':
        from ..serving.video import overlay_video
        overlay_video(args.checkpoint, args.video, args.output, which=which, precision=args.precision,
                      flip=args.flip, backend=args.backend or 'auto', threads=args.threads or 0)
        return 0
    if mode == 'predict':
        from ..serving.predict import predict_folder
        return predict_folder(args.checkpoint, args.predict, args.output, which=which, precision=args.precision,
                              flip=args.flip, backend=args.backend or 'auto')
    if mode == 'export':
        from ..runs import TrainedRun
        from ..serving.export import export_run
        run = TrainedRun(args.export, which)
        written = export_run(run, tuple(args.format or DEFAULT_FORMATS), data_dir=args.data_dir,
                             calibration_images=args.calibration_images)
        for path in written.values():
            print('Wrote {}'.format(path))
        if 'onnx-int8' in written:
            from ..evaluation.int8 import record_accuracy
            record_accuracy(run, args.data_dir)
        return 0
    if mode == 'evaluate':
        from ..evaluation.evaluate import evaluate_run
        evaluate_run(args.evaluate, args.data_dir, which=which, precision=args.precision, flip=args.flip,
                     backend=args.backend or 'auto',
                     threads=args.threads or 0)
        return 0
    from ..training.distributed import Horovod, Solo
    from ..training.train import train
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

"""The ONNX Runtime backend of Segmenter, and the choice between it and TensorFlow.

It runs the run's ONNX export (`python main.py --export RUN --format onnx`: RUN/export/model.onnx of best/,
RUN/export_last/model.onnx of last/), or with precision int8 its quantized copy (`--format onnx-int8`:
model-int8.onnx, roadseg/serving/quantize.py), in an ONNX Runtime CPU session, fed like the frozen graph: float32
(N, h, w, 3) RGB 0..255 at the training size.
"""
import os

from ..model.names import IMAGE_INPUT, PROBABILITIES
from ..runs import EXPORT_DIRS, TrainedRun
from ..system import cpu
from ..system.files import InputError, first_line
from .layout import FILE_NAMES, FORMAT_OF

BACKENDS = ('auto', 'tensorflow', 'onnxruntime')
# The backend 'auto' takes per CPU class (cpu.cpu_class), measured with bench/benchmark.py (batch 4, 160x576,
# TF 2.21 frozen graph with the project's inference settings against this backend on the same weights'
# export; docs/speed.md, "Inference backends"). ONNX Runtime only where it measured faster; classes not listed,
# and bf16 (TensorFlow's alone), take tensorflow.
AUTO = {
    # AMD EPYC Zen 1, AVX2 + FMA, oneDNN on (chosen for inference), ONNX Runtime 1.31.1, 2026-11-22:
    # a tie. `--part infer --batches 4 --repeats 8 --runs 1`: TF 2.254 s/image, ONNX Runtime 2.191 (TF speed
    # 0.97x; per-round ratios 0.91-1.02x, median 0.99x; sgemm 23-24 GFLOP/s: shared with another benchmark and a
    # nice-19 training); idle, one round (11:40): 0.789 vs 0.772 (0.98x). Two runs of 5 and 3 coarse rounds
    # under that shifting load gave 1.48x and 0.66x: load, not the engines.
    'avx2': 'tensorflow',
    # AMD EPYC Zen 4, AVX-512 + AVX512-BF16, 2026-11-21: TF frozen / ONNX Runtime (the PyTorch peer's export)
    # 0.96x, 1.00x, 0.98x at batch 1, 4, 10: a tie; bf16 (1.8-1.9x) runs on TensorFlow only.
    'avx512_bf16': 'tensorflow',
}


def export_path(run, precision='fp32'):
    """Where export_run writes the ONNX model of precision ('fp32': model.onnx, 'int8': model-int8.onnx) of
    run's (a runs.TrainedRun) checkpoint: RUN/export/ (RUN/export_last/ for last/)."""
    return os.path.join(run.export_dir, FILE_NAMES[FORMAT_OF[precision]])


def _export_command(run, precision='fp32'):
    last = os.path.basename(run.export_dir) == EXPORT_DIRS['last']
    return 'python main.py --export {} --format {}{}'.format(run.path, FORMAT_OF[precision],
                                                             ' --which last' if last else '')


def resolve(run, which, precision, backend):
    """(runs.TrainedRun, precision, backend) for Segmenter and --evaluate. run: a TrainedRun (kept as it is),
    a path parsed by TrainedRun with which, or a path to an export's ONNX model (RUN/export/model-int8.onnx,
    RUN/export_last/model.onnx, ...): its run, checkpoint (best for export/, last for export_last/, whatever
    which says), precision and the onnxruntime backend. InputError when backend or precision ask for something
    else, or for another .onnx file."""
    if isinstance(run, TrainedRun) or not str(run).endswith('.onnx'):
        return TrainedRun.of(run, which), precision, backend
    folder = os.path.dirname(os.path.abspath(run))
    named_which = {d: w for w, d in EXPORT_DIRS.items()}.get(os.path.basename(folder))
    named = {FILE_NAMES[fmt]: p for p, fmt in FORMAT_OF.items()}.get(os.path.basename(run))
    if named_which is None or named is None:
        raise InputError('{}: not an export of a run (RUN/export/ or RUN/export_last/ with {}); pass the run '
                         'folder'.format(run, ' or '.join(FILE_NAMES[f] for f in FORMAT_OF.values())))
    for flag, given, wanted in (('--backend', backend, 'onnxruntime'), ('--precision', precision, named)):
        if given not in (None, 'auto', wanted):
            raise InputError('{} is the {} model for ONNX Runtime: {} {} does not apply to it'.format(
                run, named, flag, given))
    return TrainedRun(os.path.dirname(folder), named_which), named, 'onnxruntime'


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:
        raise InputError('the onnxruntime backend needs the onnxruntime package ({}): pip install onnxruntime, '
                         'or use --backend tensorflow'.format(first_line(e)))
    return onnxruntime


def current_export(run, precision='fp32'):
    """The path of run's (a runs.TrainedRun) ONNX export of precision ('fp32', 'int8'); InputError saying how
    to write it when it is missing or older than the checkpoint."""
    path = export_path(run, precision)
    if not os.path.isfile(path):
        raise InputError('{} not found: the onnxruntime backend runs the run\'s {}ONNX export; write it with {}'
                         .format(path, 'int8 ' if precision == 'int8' else '', _export_command(run, precision)))
    if os.path.getmtime(path) < os.path.getmtime(run.checkpoint + '.index'):
        raise InputError('{} is older than the checkpoint {}: export it again with {}'.format(
            path, run.checkpoint, _export_command(run, precision)))
    return path


def choose(backend, run, bf16=False, info=None, int8=False):
    """'tensorflow' or 'onnxruntime' for Segmenter's backend argument (one of BACKENDS) and run (a TrainedRun).

    'auto' takes AUTO's entry for this CPU (info: cpu.cpu_info()) when onnxruntime is installed and the export
    is current, else tensorflow. InputError for an unknown name, 'onnxruntime' with bf16 (a TensorFlow
    rewrite), int8 with another backend than 'onnxruntime' (int8 changes the results: only when asked for),
    without the package, or without a current export (saying how to write it).
    """
    if backend not in BACKENDS:
        raise InputError('backend must be one of {}, got {!r}'.format(', '.join(BACKENDS), backend))
    if int8:
        if backend != 'onnxruntime':
            raise InputError('--precision int8 runs the run\'s int8 ONNX export ({}) in ONNX Runtime: add --backend '
                             'onnxruntime'.format(FILE_NAMES['onnx-int8']))
        _onnxruntime()
        current_export(run, 'int8')
        return 'onnxruntime'
    if backend == 'tensorflow' or (backend == 'auto' and bf16):
        return 'tensorflow'
    if backend == 'onnxruntime':
        if bf16:
            raise InputError('--bf16 is TensorFlow\'s bfloat16 rewrite: it does not apply to --backend onnxruntime '
                             '(drop --bf16, or use --backend tensorflow)')
        _onnxruntime()
        current_export(run)
        return 'onnxruntime'
    if AUTO.get(cpu.cpu_class(info or cpu.cpu_info())) != 'onnxruntime':
        return 'tensorflow'
    try:
        _onnxruntime()
        current_export(run)
    except InputError:
        return 'tensorflow'
    return 'onnxruntime'


class OnnxRuntime:
    """run's (a runs.TrainedRun) ONNX export of precision ('fp32': model.onnx, 'int8': model-int8.onnx) in an
    ONNX Runtime CPU session with all graph optimizations and threads intra-op threads (0: ONNX Runtime's
    choice, one per physical core). Attributes: path, num_classes. InputError when the export does not take
    the run's training size."""

    def __init__(self, run, threads=0, precision='fp32'):
        ort = _onnxruntime()
        image_shape = run.image_shape
        self.path = current_export(run, precision)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(self.path, options, providers=['CPUExecutionProvider'])
        except Exception as e:  # onnxruntime's InvalidProtobuf, Fail, ...
            raise InputError('{}: not a readable ONNX model ({})'.format(self.path, first_line(e)))
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        if IMAGE_INPUT not in inputs or PROBABILITIES not in outputs or not isinstance(outputs[PROBABILITIES][-1], int):
            raise InputError('{}: no {} input or {} output with a known class count: not an export of this '
                             'project; export it again with {}'.format(self.path, IMAGE_INPUT, PROBABILITIES,
                                                                       _export_command(run, precision)))
        if tuple(inputs[IMAGE_INPUT][1:3]) != tuple(image_shape):
            raise InputError('{} takes {} images, the run was trained at {}: export it again with {}'.format(
                self.path, 'x'.join(map(str, inputs[IMAGE_INPUT][1:3])), 'x'.join(map(str, image_shape)),
                _export_command(run, precision)))
        self.num_classes = outputs[PROBABILITIES][-1]

    def run(self, batch):
        """float32 (N, h, w, 3) RGB 0..255 at the training size -> float32 (N, h, w, C) probabilities."""
        return self.session.run([PROBABILITIES], {IMAGE_INPUT: batch})[0]

    def close(self):
        self.session = None

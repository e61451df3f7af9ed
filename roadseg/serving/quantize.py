"""The int8 deployment model: static quantization of a run's ONNX export with ONNX Runtime's tools.

`python main.py --export RUN --format onnx-int8` starts from RUN/export/model.onnx (written first when it is
missing or older than the checkpoint), calibrates the activation ranges (MinMax) on N training images of the
run's own dataset and writes model-int8.onnx beside it in QDQ format: int8 weights per output channel, uint8
activations (ONNX Runtime's u8s8 kernels, the fast ones on AVX512-VNNI, AVX-VNNI and AMX-INT8), for the
encoder's convolutions, ReLUs and pools. The decoder (1x1 scores, transposed convolutions, a few percent of
the work) and the softmax stay float32. It writes model-int8.json beside it: the settings and the calibration
images; the command line then adds the accuracy change, measured by roadseg/evaluation/int8.py.
"""
import contextlib
import json
import logging
import os
import shutil
import tempfile

import numpy as np

from ..data.batches import resize_rgb
from ..model.names import IMAGE_INPUT
from ..system import cpu
from ..system.files import InputError, atomic_path, file_digest, first_line, write_bytes_atomic
from ..system.progress import bar
from .layout import FILE_NAMES, INT8_SUMMARY
from .onnx_backend import current_export

CALIBRATION_IMAGES = 32
QUANTIZED_OPS = ('Conv', 'Relu', 'MaxPool')
FLOAT_SCOPES = ('decoder/',)  # main.layers' scope: kept float32
VNNI_FEATURES = ('avx512_vnni', 'avx_vnni', 'amx_int8')


def tools():
    """onnxruntime.quantization, or InputError saying what is missing (the package, or QDQ static
    quantization: onnxruntime 1.8+)."""
    try:
        import onnxruntime
        from onnxruntime import quantization
    except ImportError as e:
        raise InputError('the int8 export needs onnxruntime ({}): pip install onnxruntime'.format(first_line(e)))
    if not hasattr(getattr(quantization, 'QuantFormat', None), 'QDQ'):
        raise InputError('onnxruntime {} has no QDQ static quantization (1.8+): pip install -U onnxruntime'
                         .format(onnxruntime.__version__))
    return quantization


def has_vnni(info):
    """True where the CPU has int8 dot-product instructions (VNNI or AMX-INT8); None when unknown."""
    if info['flags'] is None:
        return None
    return any(info['flags'].get(name) for name in VNNI_FEATURES)


def float_nodes(nodes, ort_version, float_scopes=FLOAT_SCOPES):
    """Names of the nodes (onnx NodeProtos) quantize_static is to leave float32: those under float_scopes and,
    with ONNX Runtime (ort_version: (major, minor)) before 1.11, every ReLU that no quantized node reads.

    ONNX Runtime 1.10's QDQ quantizer drops a ReLU after a quantized Conv (the uint8 range, zero point 0, is
    to clamp in its place) but quantizes the ReLU's output only for quantized readers: fc7's ReLU, read by
    decoder/score7 alone, vanished and its negative values reached the float decoder (the learned test model:
    validation IoU 93.9 -> 72.0). 1.11 quantizes that output itself, but needs numpy >= 1.21, which TF 1.15
    excludes. Kept float, the ReLU runs on the dequantized output of the still-int8 Conv (IoU 93.9 -> 93.9).
    """
    kept = [n.name for n in nodes if n.name.startswith(tuple(float_scopes))]
    if ort_version < (1, 11):
        read = {t for n in nodes if n.op_type in QUANTIZED_OPS and n.name not in kept for t in n.input}
        kept += [n.name for n in nodes if n.op_type == 'Relu' and n.name not in kept and n.output[0] not in read]
    return kept


@contextlib.contextmanager
def _quiet_working_folder():
    """A temporary working folder for ONNX Runtime's quantizer, which writes its side files (1.10: the
    augmented model, model-opt.onnx) into the current folder and beside its input, and logs advice on the
    root logger."""
    cwd, root = os.getcwd(), logging.getLogger()
    level = root.level
    work = tempfile.mkdtemp(prefix='roadseg-int8-')
    try:
        os.chdir(work)
        root.setLevel(logging.ERROR)
        yield work
    finally:
        root.setLevel(level)
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)


def quantize_model(source, target, batches, input_name=IMAGE_INPUT, float_scopes=FLOAT_SCOPES,
                   reduce_range=False, desc='Calibrating int8'):
    """Write target (atomically): the ONNX model source quantized to int8 (QDQ, see the module docstring),
    its activation ranges calibrated on batches (float32 arrays fed to input_name, one call each). The nodes
    float_nodes names stay float32 (those under float_scopes; on ONNX Runtime 1.10 also ReLUs that only float
    nodes read); reduce_range uses 7-bit weights (for CPUs without VNNI, whose u8s8 instructions can
    saturate). Returns the names of the convolutions left float32."""
    q = tools()
    import onnx
    import onnxruntime
    source, target = os.path.abspath(source), os.path.abspath(target)
    nodes = onnx.load(source).graph.node
    kept = float_nodes(nodes, tuple(int(p) for p in onnxruntime.__version__.split('.')[:2]), float_scopes)
    progress = bar(total=len(batches), desc=desc, unit='batch')

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            batch = next(self.batches, None)
            if batch is None:
                progress.close()  # calibrated; the quantizer's own work follows
                return None
            progress.update(1)
            return {input_name: batch}

    with atomic_path(target) as tmp, _quiet_working_folder() as work:
        model = os.path.join(work, 'model.onnx')
        shutil.copyfile(source, model)
        q.quantize_static(model, os.path.join(work, 'int8.onnx'), Reader(), quant_format=q.QuantFormat.QDQ,
                          op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=kept, per_channel=True,
                          reduce_range=reduce_range, activation_type=q.QuantType.QUInt8,
                          weight_type=q.QuantType.QInt8, calibrate_method=q.CalibrationMethod.MinMax)
        shutil.move(os.path.join(work, 'int8.onnx'), tmp)
    return [n.name for n in nodes if n.name in kept and n.op_type in ('Conv', 'ConvTranspose')]


def calibration_samples(dataset, count):
    """Up to count training samples of dataset spread evenly over its training split; InputError if it has none."""
    samples = dataset.samples('train')
    if not samples:
        raise InputError('no training images in {} to calibrate int8 with (pass --data-dir)'.format(dataset.data_dir))
    step = max(1, len(samples) // count)
    return samples[::step][:count]


def calibration_batches(dataset, samples, image_shape):
    """float32 (1, h, w, 3) RGB 0..255 per sample of dataset (read as training reads it: generated data such as
    shapes has no files), resized to image_shape as inference resizes."""
    batches = []
    for sample in bar(samples, desc='Loading calibration images', unit='image'):
        image = dataset.load(sample)[0]  # InputError naming the file when it is not a readable image
        batches.append(resize_rgb(image, image_shape)[None].astype(np.float32))
    return batches


def export_int8(run, target, data_dir=None, images=None):
    """Write target (RUN/export*/model-int8.onnx) from the current model.onnx beside it, calibrated on `images`
    training images (None: CALIBRATION_IMAGES) of the run's dataset (data_dir, else the one in its
    config.json), and the summary model-int8.json (settings and calibration; evaluation/int8.py adds the
    accuracy). run: a runs.TrainedRun. Prints what it does; returns the summary."""
    tools()
    images = CALIBRATION_IMAGES if images is None else images
    if images < 1:
        raise InputError('--calibration-images must be at least 1, got {}'.format(images))
    source = current_export(run)
    summary_path = os.path.join(os.path.dirname(target), INT8_SUMMARY)
    if data_dir is not None and not os.path.isdir(data_dir):
        raise InputError('calibration data not found: {} (pass the folder of the run\'s dataset)'.format(data_dir))
    dataset = run.dataset(data_dir)
    samples = calibration_samples(dataset, images)
    info = cpu.cpu_info()
    reduce_range = has_vnni(info) is False
    print('Calibrating int8 on {} training images of {}{}'.format(
        len(samples), dataset.data_dir, ' (7-bit weights: this CPU has no VNNI)' if reduce_range else ''))
    batches = calibration_batches(dataset, samples, run.image_shape)
    if os.path.exists(summary_path):  # describes the model about to be replaced
        os.remove(summary_path)
    kept = quantize_model(source, target, batches, reduce_range=reduce_range)
    import onnxruntime
    summary = {
        'model': os.path.basename(target), 'sha256': file_digest(target), 'source': FILE_NAMES['onnx'],
        'source_sha256': file_digest(source), 'checkpoint': run.checkpoint, 'onnxruntime': onnxruntime.__version__,
        'cpu': cpu.describe(info),
        'quantization': {'format': 'QDQ', 'weights': 'int8, per output channel', 'activations': 'uint8',
                         'calibration': 'MinMax', 'reduce_range': reduce_range, 'ops': list(QUANTIZED_OPS),
                         'float32_convolutions': kept},
        'calibration': {'split': 'train', 'data_dir': dataset.data_dir, 'images': len(samples),
                        'files': [os.path.basename(s.image) for s in samples]},
    }
    write_bytes_atomic(summary_path, json.dumps(summary, indent=2).encode())
    return summary

#!/usr/bin/env python
"""Speed of FCN-8s/VGG16 training and inference on this machine: TensorFlow against its strongest peers.

    python bench/benchmark.py --batches 4   # the README/docs tables: batch 4, 160x576
    python bench/benchmark.py --short       # tiny shapes, seconds (CI)
    python bench/benchmark.py --decoders fcn8 segnet unet linknet psp --shape 352 480 --batches 4
                                            # TensorFlow rows per decoder (docs/decoders.md)

The first line names the CPU, its instruction sets and TensorFlow's oneDNN setting (roadseg/system/cpu.py). Rows,
per precision: TensorFlow (the project's graph: training step, live and frozen inference graph; bf16 = its
auto mixed precision rewrite, where TF 2.9+ has it); PyTorch eager in NCHW and channels_last, fp32 and, where
the CPU has AVX512-BF16 or AMX-BF16, torch.autocast bf16 (inference under torch.inference_mode); ONNX Runtime
with all graph optimizations on the PyTorch peer's export and on this project's own (--export: the weights
and graph of the frozen row), fp32 and int8 (static QDQ quantization as `--format onnx-int8` does it,
roadseg/serving/quantize.py, calibrated on the random images). Each TensorFlow row is compared with the fastest peer
row of the same part and precision, and TensorFlow's fastest with the fastest peer in any precision.

Training and inference rows run with the settings the project chooses for each (cpu.recommended_settings):
where those differ from the ones this process started with (oneDNN off for training, on for inference on
AVX2), each part runs in its own process, since TensorFlow reads them at import. Within a part every row is
interleaved (A B C ... A B C ...) over --repeats rounds in one process, each round's figure the median of
--runs calls after a warm-up call, each row's figure the median of its rounds; the JSON keeps every round,
the CPU line, /proc/cpuinfo's model and flags, the versions and the settings. Random weights (speed does
not depend on them). A NumPy sgemm calibration runs before and after, since a shared machine's speed drifts.
FLOPs are counted analytically (2 per multiply-add): convs 2*H*W*k*k*Cin*Cout at their output size,
transposed convs at their input size; a training step is forward + 2x forward (gradients for inputs and
weights) minus the input gradient of conv1_1, which is never computed. With --decoders, the TensorFlow rows
(training step, frozen inference) of each decoder (roadseg/model/decoders.py) are interleaved instead, with
each one's parameters and forward GFLOP per image counted on its frozen graph (bench/graph_cost.py).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from roadseg.system import cpu  # noqa: E402  (before TensorFlow: it describes the build TensorFlow will load)
from roadseg.system.tfcompat import tf  # noqa: E402
from roadseg import runs  # noqa: E402
from roadseg.model import decoders, freeze, vgg  # noqa: E402
from roadseg.serving import export, onnx_backend, quantize  # noqa: E402
from roadseg.system.files import write_bytes_atomic  # noqa: E402
import graph_cost  # noqa: E402
import peers  # noqa: E402
from contenders import Frozen, OrtBackend, TFModel, interleaved  # noqa: E402
from speed_tables import (PARTS, TF, export_ratios, print_decoder_table, print_export_ratios,  # noqa: E402
                          print_ratios, print_table, ratios)


def fcn8_flops(height, width, widths, fc_width, fc6_kernel, num_classes=2):
    """(forward FLOPs per image, FLOPs of conv1_1's input gradient)."""
    flops, cin, h, w = 0, 3, height, width
    for n, c in zip(vgg.CONVS_PER_BLOCK, widths):
        for _ in range(n):
            flops += 2 * h * w * 9 * cin * c
            cin = c
        h, w = (h + 1) // 2, (w + 1) // 2
    flops += 2 * h * w * fc6_kernel ** 2 * cin * fc_width + 2 * h * w * fc_width ** 2      # fc6, fc7
    flops += 2 * num_classes * (h * w * fc_width + 4 * h * w * widths[3] + 16 * h * w * widths[2])  # scores
    flops += 2 * num_classes ** 2 * (h * w * 16 + 4 * h * w * 16 + 16 * h * w * 256)      # transposed convs
    return flops, 2 * height * width * 9 * 3 * widths[0]


def sgemm_gflops(n=2048, runs=5):
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    a @ b
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def versions():
    """{package: version} of the engines this process can load."""
    out = {'tensorflow': tf.__version__}
    for name in ('torch', 'onnxruntime'):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = None
    return out


def run_benchmark(args):
    """Both parts in this process, or each in a child process with its own settings; prints the tables."""
    info = cpu.cpu_info()
    print(cpu.describe(info))
    parts = [args.part] if args.part else list(PARTS)
    envs = {part: dict(os.environ) for part in parts}
    for part in parts:
        cpu.apply_environment(cpu.recommended_settings(info, part), envs[part])
    model, flags = cpu.read_cpuinfo()
    result = {'cpu': info, 'cpu_line': cpu.describe(info), 'cpuinfo': {'model': model, 'flags': sorted(flags or ())},
              'versions': versions(), 'settings': dict(vars(args), argv=sys.argv[1:]), 'rows': [], 'parts': {}}
    if args.child or all(env == dict(os.environ) for env in envs.values()):  # this process runs with them
        result.update(measure(args, info, parts))
    else:
        for part in parts:
            chosen = {k: v for k, v in envs[part].items() if os.environ.get(k) != v and k != cpu.CHOSEN_ENV}
            print('\n=== {} part, in a process with {}'.format(part, chosen))
            # as the user's own (no CHOSEN_ENV): nothing in the child chooses over them (cpu.choose_settings)
            env = {k: v for k, v in envs[part].items() if k != cpu.CHOSEN_ENV}
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, 'part.json')
                subprocess.run([sys.executable, os.path.abspath(__file__)] + sys.argv[1:] +
                               ['--part', part, '--json', out, '--child'], env=env, check=True)
                with open(out) as f:
                    child = json.load(f)
            result['rows'] += child['rows']
            result['parts'][part] = dict(child['parts'][part], cpu=child['cpu'])
        print('\n=== {} parts'.format(' and '.join(parts)))
    print_table(result['rows'])
    if args.decoders:
        print_decoder_table(result['rows'])
    result['ratios'] = ratios(result['rows'])
    print_ratios(result['ratios'])
    result['export_ratios'] = export_ratios(result['rows'])
    print_export_ratios(result['export_ratios'])
    if args.json:
        write_bytes_atomic(args.json, json.dumps(result, indent=2).encode())
    return result['rows']


def contenders_for(kind, batch, models, rng, h, w):
    """{row name: (engine, precision, fn () -> seconds)} of one part at one batch size."""
    images = rng.uniform(0, 255, (batch, h, w, 3)).astype(np.float32)
    onehot = np.zeros((batch, h, w, 2), np.float32)
    onehot[:, h // 2:, :, 1] = 1
    onehot[:, :h // 2, :, 0] = 1
    labels = onehot[..., 1].astype(np.int64)
    m = models
    rows = {}
    if kind == 'train':
        rows['TF train'] = (TF, 'fp32', lambda: m['tf'].train_step(images, onehot))
        if m.get('tf_bf16'):
            rows['TF train bf16'] = (TF, 'bf16', lambda: m['tf_bf16'].train_step(images, onehot))
    else:
        rows['TF infer (live graph)'] = (TF, 'fp32', lambda: m['tf'].forward(images))
        rows['TF infer (frozen)'] = (TF, 'fp32', lambda: m['frozen'].forward(images))
        if m.get('frozen_bf16'):
            rows['TF infer bf16 (frozen)'] = (TF, 'bf16', lambda: m['frozen_bf16'].forward(images))
    for precision in m.get('torch_precisions', ()):
        for layout, peer in m['torch'].items():
            bf16 = precision == 'bf16'
            if kind == 'train':
                fn = (lambda p, b: lambda: p.train_step(images, labels, b))(peer, bf16)
            else:
                fn = (lambda p, b: lambda: p.forward(images, b))(peer, bf16)
            rows['PyTorch {} {} ({})'.format(kind, precision, layout)] = ('PyTorch', precision, fn)
    if kind == 'infer':
        for (precision, source), ort in sorted(m.get('ort', {}).items()):
            rows['ONNX Runtime infer {} ({})'.format(precision, source)] = ('ONNX Runtime', precision,
                                                                           (lambda o: lambda: o.forward(images))(ort))
    return rows


def build_models(args, info, parts, tmp, h, w, widths, fc_width, fc6_kernel, use_bf16, rng):
    """The contenders' models, built once: TensorFlow's graphs, the PyTorch peers, the ONNX Runtime sessions."""
    vgg_path = vgg.build_vgg_savedmodel(os.path.join(tmp, 'vgg'), None, widths, fc_width, fc6_kernel)
    m = {'tf': TFModel(vgg_path, args.threads, args.inter)}
    if use_bf16 and 'train' in parts:
        m['tf_bf16'] = TFModel(vgg_path, args.threads, args.inter, bf16=True)
    run = os.path.join(tmp, 'run')
    if 'infer' in parts:
        m['tf'].export(run, (h, w))
        m['frozen'] = Frozen(run, args.threads, args.inter)
        if use_bf16:
            m['frozen_bf16'] = Frozen(run, args.threads, args.inter, bf16=True)
    if args.no_peers:
        return m
    threads = args.threads or os.cpu_count()
    calibration = [rng.uniform(0, 255, (1, h, w, 3)).astype(np.float32) for _ in range(args.calibration)]
    reduce_range = quantize.has_vnni(info) is False
    if peers.installed('torch'):
        m['torch'] = {layout: peers.TorchPeer(widths, fc_width, fc6_kernel, threads, channels_last=layout != 'NCHW')
                      for layout in ('NCHW', 'channels_last')}
        m['torch_precisions'] = ['fp32'] + (['bf16'] if cpu_bf16(info) and not args.no_bf16 else [])
    if 'infer' not in parts or not peers.installed('onnxruntime'):
        return m
    # the product's ONNX export and its int8 copy, where the product's backend finds them
    trained = runs.TrainedRun(run)
    export.export_run(trained, ('onnx',))
    quantize.quantize_model(onnx_backend.export_path(trained), onnx_backend.export_path(trained, 'int8'),
                            calibration, reduce_range=reduce_range, desc='Calibrating the project export')
    m['ort'] = {('fp32', 'project export'): OrtBackend(run, args.threads),
                ('int8', 'project export'): OrtBackend(run, args.threads, 'int8')}
    if 'torch' in m:
        torch_onnx = os.path.join(tmp, 'fcn8.onnx')
        m['torch']['NCHW'].export_onnx(torch_onnx, h, w)
        quantize.quantize_model(torch_onnx, os.path.join(tmp, 'fcn8-int8.onnx'),
                                [np.ascontiguousarray(x.transpose(0, 3, 1, 2)) for x in calibration], input_name='x',
                                float_scopes=peers.FLOAT_SCOPES, reduce_range=reduce_range,
                                desc='Calibrating the PyTorch export')
        m['ort'].update({('fp32', 'PyTorch export'): peers.OrtPeer(torch_onnx, threads),
                         ('int8', 'PyTorch export'): peers.OrtPeer(os.path.join(tmp, 'fcn8-int8.onnx'), threads)})
    return m


def cpu_bf16(info):
    """True where the CPU has bf16 arithmetic (AVX512-BF16, AMX-BF16): where PyTorch's bf16 rows mean something."""
    return any((info['flags'] or {}).get(name) for name in cpu.BF16_FEATURES)


def decoder_models(args, parts, tmp, h, w, widths, fc_width, fc6_kernel, use_bf16):
    """{decoder: {'tf', 'tf_bf16', 'frozen', 'frozen_bf16': models, 'cost': (parameters, forward FLOPs)}}."""
    vgg_path = vgg.build_vgg_savedmodel(os.path.join(tmp, 'vgg'), None, widths, fc_width, fc6_kernel)
    out = {}
    for name in args.decoders:
        m = out[name] = {'tf': TFModel(vgg_path, args.threads, args.inter, decoder=name)}
        if use_bf16 and 'train' in parts:
            m['tf_bf16'] = TFModel(vgg_path, args.threads, args.inter, bf16=True, decoder=name)
        run = os.path.join(tmp, 'run-' + name)
        m['tf'].export(run, (h, w))
        frozen = freeze.read_frozen(os.path.join(run, 'best', runs.FROZEN))
        m['cost'] = graph_cost.parameters(frozen), graph_cost.forward_flops(frozen, h, w)
        print('{}: {:.2f} M parameters, forward {:.2f} GFLOP/image'.format(name, m['cost'][0] / 1e6,
                                                                            m['cost'][1] / 1e9))
        if 'infer' in parts:
            m['frozen'] = Frozen(run, args.threads, args.inter)
            if use_bf16:
                m['frozen_bf16'] = Frozen(run, args.threads, args.inter, bf16=True)
    return out


def decoder_contenders(kind, batch, models, rng, h, w):
    """contenders_for's TensorFlow rows of every decoder, named '<row> (<decoder>)', and {row name: decoder}."""
    rows, of = {}, {}
    for name, m in models.items():
        for row, contender in contenders_for(kind, batch, m, rng, h, w).items():
            if row != 'TF infer (live graph)':
                rows['{} ({})'.format(row, name)], of['{} ({})'.format(row, name)] = contender, name
    return rows, of


def measure(args, info, parts):
    """Time the given parts in this process; returns {'rows': [...], 'parts': {part: settings}}."""
    h, w = args.shape
    widths, fc_width, fc6_kernel = ((4, 8, 8, 16, 16), 16, 3) if args.short else \
        ((64, 128, 256, 512, 512), args.fc_width, args.fc6_kernel)
    fwd_flops, conv1_input_grad = fcn8_flops(h, w, widths, fc_width, fc6_kernel)
    flops = {'train': 3 * fwd_flops - conv1_input_grad, 'infer': fwd_flops}
    rng = np.random.RandomState(0)
    has_bf16 = 'auto_mixed_precision_onednn_bfloat16' in \
        type(tf.ConfigProto().graph_options.rewrite_options).DESCRIPTOR.fields_by_name
    use_bf16 = has_bf16 and not args.no_bf16
    if use_bf16 and cpu.bf16_warning(info):
        print(cpu.bf16_warning(info))
    if args.decoders:
        print('decoders {}: TensorFlow {}, {}x{}'.format(' '.join(args.decoders), tf.__version__, h, w))
    calib = [sgemm_gflops(1024 if args.short else 2048)]
    print('{}: TensorFlow {}, intra-op {} inter-op {} threads (0: TensorFlow\'s choice), {}x{}, forward {:.2f} '
          'GFLOP/image, train step {:.2f} GFLOP/image'.format(' and '.join(parts), tf.__version__, args.threads,
                                                             args.inter, h, w, fwd_flops / 1e9, flops['train'] / 1e9))
    print('sgemm before: {:.0f} GFLOP/s'.format(calib[0]))
    rows, of = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.decoders:
            models = decoder_models(args, parts, tmp, h, w, widths, fc_width, fc6_kernel, use_bf16)
        else:
            models = build_models(args, info, parts, tmp, h, w, widths, fc_width, fc6_kernel, use_bf16, rng)
        for batch in args.batches:
            for kind in parts:
                if args.decoders:
                    contenders, of = decoder_contenders(kind, batch, models, rng, h, w)
                else:
                    contenders = contenders_for(kind, batch, models, rng, h, w)
                print('batch {}, {}: {} rows interleaved over {} rounds'.format(batch, kind, len(contenders),
                                                                                 args.repeats))
                for name, rounds in interleaved(contenders, args.repeats, args.runs).items():
                    seconds = statistics.median(rounds)
                    engine, precision, _ = contenders[name]
                    rows.append({'what': name, 'part': kind, 'engine': engine, 'precision': precision, 'batch': batch,
                                 's_per_image': seconds / batch, 'rounds_s_per_image': [t / batch for t in rounds],
                                 'gflops': flops[kind] * batch / seconds / 1e9})
                    if name in of:  # a decoder's row: its own cost
                        params, forward = models[of[name]]['cost']
                        work = forward if kind == 'infer' else 3 * forward - conv1_input_grad
                        rows[-1].update(decoder=of[name], parameters=params, gflop_per_image=forward / 1e9,
                                        gflops=work * batch / seconds / 1e9)
    calib.append(sgemm_gflops(1024 if args.short else 2048))
    print('sgemm after: {:.0f} GFLOP/s'.format(calib[1]))
    for r in rows:
        r['pct_of_sgemm'] = 100 * r['gflops'] / statistics.mean(calib)
    setting = {'threads': args.threads, 'inter_op_threads': args.inter, 'sgemm_gflops': calib, 'shape': [h, w],
               'widths': list(widths), 'fc_width': fc_width, 'fc6_kernel': fc6_kernel,
               'TF_ENABLE_ONEDNN_OPTS': os.environ.get('TF_ENABLE_ONEDNN_OPTS')}
    return {'cpu': info, 'rows': rows, 'parts': {part: setting for part in parts}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--short', action='store_true', help='tiny network and shapes, for CI')
    p.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                   help='input size (default 160 576; --short: 64 96)')
    p.add_argument('--batches', type=int, nargs='+', default=None, help='batch sizes (default 1 4 10; --short: 1 2)')
    p.add_argument('--fc-width', type=int, default=1024, help='fc6/fc7 channels (default 1024)')
    p.add_argument('--fc6-kernel', type=int, default=3, help='fc6 kernel size (default 3)')
    p.add_argument('--threads', type=int, default=0,
                   help='intra-op threads of every engine (default 0: each engine\'s choice, as main.py; peers: all '
                        'cores)')
    p.add_argument('--inter', type=int, default=0, help='TensorFlow inter-op threads (default 0: TensorFlow\'s choice)')
    p.add_argument('--repeats', type=int, default=None, help='interleaved rounds (default 3; --short: 1)')
    p.add_argument('--runs', type=int, default=None, help='timed calls per round (default 3; --short: 2)')
    p.add_argument('--calibration', type=int, default=4,
                   help='random images that calibrate the int8 models (default 4; speed does not depend on them)')
    p.add_argument('--no-bf16', action='store_true', help='skip the bf16 rows')
    p.add_argument('--no-peers', action='store_true', help='skip PyTorch and ONNX Runtime')
    p.add_argument('--decoders', nargs='+', choices=tuple(decoders.DECODERS), metavar='DECODER',
                   help='instead of the peers, TensorFlow rows of these decoders, with their parameters and GFLOP per '
                        'image: {}'.format(', '.join(decoders.DECODERS)))
    p.add_argument('--part', choices=PARTS, help='only the training or the inference rows (default both)')
    p.add_argument('--json', help='also write the results here')
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)  # a part's process: measure here
    args = p.parse_args(argv)
    args.shape = args.shape or ([64, 96] if args.short else [160, 576])
    args.batches = args.batches or ([1, 2] if args.short else [1, 4, 10])
    args.repeats = args.repeats or (1 if args.short else 3)
    args.runs = args.runs or (2 if args.short else 3)
    return args


if __name__ == '__main__':
    run_benchmark(parse_args())

#!/usr/bin/env python
"""Speed of FCN-8s/VGG16 training and inference on this machine, against PyTorch and ONNX Runtime.

    python bench/benchmark.py            # full table at 160x576 (several minutes)
    python bench/benchmark.py --short    # tiny shapes, seconds (CI)

The first line names the CPU, its instruction sets and TensorFlow's oneDNN setting (roadseg/system/cpu.py); the
JSON records them. bf16 rows are timed wherever TensorFlow has the bf16 rewrite (TF 2.9+), with the
project's warning where the CPU cannot make them faster. Training and inference rows run with the settings
the project chooses for each (cpu.recommended_settings): where those differ from the ones this process
started with (oneDNN off for training, on for inference on AVX2), each part runs in its own process,
since TensorFlow reads them at import.

Random weights (speed does not depend on them). Each part is measured in one process, interleaved
(A B A B ...) over --repeats rounds, and each figure is the median (the JSON keeps every round's); a
NumPy sgemm calibration runs before and after, since this machine's speed drifts by about 2x over
minutes. FLOPs are counted analytically (2 per multiply-add): convs 2*H*W*k*k*Cin*Cout at their output
size, transposed convs at their input size; a training step is forward + 2x forward (gradients for inputs
and weights) minus the input gradient of conv1_1, which is never computed.
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
from roadseg.system.tfcompat import session_config, tf  # noqa: E402
from roadseg import runs  # noqa: E402
from roadseg.model import graph as model_graph, heads, vgg  # noqa: E402
from roadseg.serving import export, inference  # noqa: E402
import main  # noqa: E402
import peers  # noqa: E402


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


DECODER = {'l2_scale': 1e-3, 'skip_scaling': False}  # the training defaults (FCN-8s)


class TFModel:
    """The project's training graph (model/graph.py) on a random VGG SavedModel, in its own tf.Graph."""

    def __init__(self, vgg_path, threads, inter, bf16=False):
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.sess = tf.Session(graph=self.graph, config=session_config(threads, inter, bf16))
            tf.set_random_seed(0)
            net = model_graph.build(main, self.sess, vgg_path, DECODER, 2)
            self.image, self.keep_prob, self.label, self.lr = net.image_input, net.keep_prob, net.correct_label, \
                net.learning_rate
            self.train_op, self.loss, self.prob = net.train_op, net.loss, net.probabilities

    def train_step(self, images, labels):
        with self.graph.as_default():
            feed = {self.image: images, self.label: labels, self.keep_prob: 0.5, self.lr: 1e-4}
            start = time.perf_counter()
            self.sess.run(self.train_op, feed)
            return time.perf_counter() - start

    def forward(self, images):
        with self.graph.as_default():
            feed = {self.image: images, self.keep_prob: 1.0}
            start = time.perf_counter()
            self.sess.run(self.prob, feed)
            return time.perf_counter() - start

    def export(self, folder, image_shape):
        """Checkpoint + frozen graph in a run folder, as training writes them."""
        os.makedirs(os.path.join(folder, 'best'))
        with self.graph.as_default():
            tf.train.Saver().save(self.sess, os.path.join(folder, 'best', 'model'))
            export.write_frozen(self.sess, os.path.join(folder, 'best', export.FROZEN), image_shape)
        runs.write_config(folder, {'image_shape': list(image_shape)})


class Frozen:
    """The frozen graph as the product loads it (inference.Segmenter), in a session with these settings."""

    def __init__(self, folder, threads, inter, bf16=False):
        model = inference.Segmenter(folder, backend='tensorflow')
        assert model.frozen
        model.close()
        self.graph = model.graph
        self.image = self.graph.get_tensor_by_name(heads.IMAGE_INPUT + ':0')
        self.prob = self.graph.get_tensor_by_name(heads.PROBABILITIES + ':0')
        self.sess = tf.Session(graph=self.graph, config=session_config(threads, inter, bf16))

    def forward(self, images):
        with self.graph.as_default():
            start = time.perf_counter()
            self.sess.run(self.prob, {self.image: images})
            return time.perf_counter() - start


class OrtBackend:
    """The product's ONNX Runtime backend (Segmenter(backend='onnxruntime')) on the folder's --export ONNX."""

    def __init__(self, folder, threads):
        self.model = inference.Segmenter(folder, threads=threads, backend='onnxruntime').model

    def forward(self, images):
        start = time.perf_counter()
        self.model.run(images)
        return time.perf_counter() - start


def timed(fn, runs, warmup=1):
    for _ in range(warmup):
        fn()
    return statistics.median(fn() for _ in range(runs))


def interleaved(contenders, repeats, runs):
    """{name: [seconds per round]} over repeats rounds of A B A B ..., each a median of `runs` calls."""
    per_round = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            per_round[name].append(timed(fn, runs))
    return per_round


PARTS = ('train', 'infer')


def run_benchmark(args):
    """Both parts in this process, or each in a child process with its own settings; prints the table."""
    info = cpu.cpu_info()
    print(cpu.describe(info))
    parts = [args.part] if args.part else list(PARTS)
    envs = {part: dict(os.environ) for part in parts}
    for part in parts:
        cpu.apply_environment(cpu.recommended_settings(info, part), envs[part])
    if args.child or all(env == dict(os.environ) for env in envs.values()):  # this process runs with them
        result = measure(args, info, parts)
    else:
        result = {'cpu': info, 'tensorflow': tf.__version__, 'rows': [], 'parts': {}}
        for part in parts:
            chosen = {k: v for k, v in envs[part].items() if os.environ.get(k) != v and k != cpu.CHOSEN_ENV}
            print('\n=== {} part, in a process with {}'.format(part, chosen))
            # given as the user's own: the child's start-up (roadseg/system/tfcompat.py) would choose for training
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
    print_ratios(result['rows'])
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return result['rows']


def measure(args, info, parts):
    """Time the given parts in this process; returns the JSON-ready result."""
    h, w = args.shape
    widths, fc_width, fc6_kernel = ((4, 8, 8, 16, 16), 16, 3) if args.short else \
        ((64, 128, 256, 512, 512), args.fc_width, args.fc6_kernel)
    fwd_flops, conv1_input_grad = fcn8_flops(h, w, widths, fc_width, fc6_kernel)
    train_flops = 3 * fwd_flops - conv1_input_grad
    rng = np.random.RandomState(0)
    has_bf16 = 'auto_mixed_precision_onednn_bfloat16' in \
        type(tf.ConfigProto().graph_options.rewrite_options).DESCRIPTOR.fields_by_name
    use_bf16 = has_bf16 and not args.no_bf16
    if use_bf16 and cpu.bf16_warning(info):
        print(cpu.bf16_warning(info))
    use_peers = peers.available() and not args.no_peers
    rows = []
    calib = [sgemm_gflops(1024 if args.short else 2048)]
    print('{}: TensorFlow {}, intra-op {} inter-op {} threads (0: TensorFlow\'s choice), {}x{}, forward {:.2f} '
          'GFLOP/image, train step {:.2f} GFLOP/image'.format(' and '.join(parts), tf.__version__, args.threads,
                                                             args.inter, h, w, fwd_flops / 1e9, train_flops / 1e9))
    print('sgemm before: {:.0f} GFLOP/s'.format(calib[0]))
    with tempfile.TemporaryDirectory() as tmp:
        vgg_path = vgg.build_vgg_savedmodel(os.path.join(tmp, 'vgg'), None, widths, fc_width, fc6_kernel)
        tf_model = TFModel(vgg_path, args.threads, args.inter)
        bf16 = TFModel(vgg_path, args.threads, args.inter, bf16=True) if use_bf16 else None
        frozen = torch_peer = ort_peer = own_ort = None
        if 'infer' in parts:
            tf_model.export(os.path.join(tmp, 'run'), (h, w))
            frozen = Frozen(os.path.join(tmp, 'run'), args.threads, args.inter)
        if use_peers:
            peer_threads = args.threads or os.cpu_count()
            torch_peer = peers.TorchPeer(widths, fc_width, fc6_kernel, peer_threads)
            if 'infer' in parts:
                torch_peer.export_onnx(os.path.join(tmp, 'fcn8.onnx'), h, w)
                ort_peer = peers.OrtPeer(os.path.join(tmp, 'fcn8.onnx'), peer_threads)
                # the product's ONNX Runtime backend on its own export: the weights and graph of 'TF infer (frozen)'
                export.export_run(os.path.join(tmp, 'run'), ('onnx',))
                own_ort = OrtBackend(os.path.join(tmp, 'run'), args.threads)

        for batch in args.batches:
            images = rng.uniform(0, 255, (batch, h, w, 3)).astype(np.float32)
            onehot = np.zeros((batch, h, w, 2), np.float32)
            onehot[:, h // 2:, :, 1] = 1
            onehot[:, :h // 2, :, 0] = 1
            labels = onehot[..., 1].astype(np.int64)
            train = {'TF train': lambda: tf_model.train_step(images, onehot)}
            if bf16:
                train['TF train bf16'] = lambda: bf16.train_step(images, onehot)
            if torch_peer:
                train['PyTorch train'] = lambda: torch_peer.train_step(images, labels)
            infer = {'TF infer (live graph)': lambda: tf_model.forward(images),
                     'TF infer (frozen)': lambda: frozen.forward(images)}
            if bf16:
                infer['TF infer bf16'] = lambda: bf16.forward(images)
            if ort_peer:
                infer['ONNX Runtime infer'] = lambda: ort_peer.forward(images)
                infer['ONNX Runtime infer (project export)'] = lambda: own_ort.forward(images)
            for kind, contenders, flops in (('train', train, train_flops), ('infer', infer, fwd_flops)):
                if kind not in parts:
                    continue
                for name, rounds in interleaved(contenders, args.repeats, args.runs).items():
                    seconds = statistics.median(rounds)
                    rows.append({'what': name, 'batch': batch, 's_per_image': seconds / batch,
                                 'rounds_s_per_image': [t / batch for t in rounds],
                                 'gflops': flops * batch / seconds / 1e9})
    calib.append(sgemm_gflops(1024 if args.short else 2048))
    print('sgemm after: {:.0f} GFLOP/s'.format(calib[1]))
    sgemm = statistics.mean(calib)
    for r in rows:
        r['pct_of_sgemm'] = 100 * r['gflops'] / sgemm
    setting = {'threads': args.threads, 'inter_op_threads': args.inter, 'sgemm_gflops': calib, 'shape': [h, w],
               'TF_ENABLE_ONEDNN_OPTS': os.environ.get('TF_ENABLE_ONEDNN_OPTS')}
    return {'cpu': info, 'tensorflow': tf.__version__, 'rows': rows, 'parts': {part: setting for part in parts}}


def print_table(rows):
    print('\n| what | batch | s/image | GFLOP/s | % of sgemm |')
    print('|---|---:|---:|---:|---:|')
    for r in rows:
        print('| {} | {} | {:.4f} | {:.1f} | {:.0f} |'.format(r['what'], r['batch'], r['s_per_image'], r['gflops'],
                                                          r['pct_of_sgemm']))


def print_ratios(rows):
    """Speed ratios (>1: the first is faster) between same-batch entries of this run: of the medians, and
    the range of the per-round ratios (each of two neighbouring measurements, so less moved by load drift)."""
    by = {(r['what'], r['batch']): r for r in rows}
    pairs = [('TF train', 'PyTorch train'), ('TF infer (frozen)', 'ONNX Runtime infer'),
             ('TF infer (frozen)', 'ONNX Runtime infer (project export)'),
             ('TF infer (frozen)', 'TF infer (live graph)'), ('TF train bf16', 'TF train'),
             ('TF infer bf16', 'TF infer (frozen)')]
    print()
    for batch in sorted({r['batch'] for r in rows}):
        for a, b in pairs:
            if (a, batch) in by and (b, batch) in by:
                first, second = by[(a, batch)], by[(b, batch)]
                rounds = [y / x for x, y in zip(first['rounds_s_per_image'], second['rounds_s_per_image'])]
                print('batch {:2d}: {} / {} speed = {:.2f}x (rounds {:.2f}-{:.2f}x)'.format(
                    batch, a, b, second['s_per_image'] / first['s_per_image'], min(rounds), max(rounds)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--short', action='store_true', help='tiny network and shapes, for CI')
    p.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                   help='input size (default 160 576; --short: 64 96)')
    p.add_argument('--batches', type=int, nargs='+', default=None, help='batch sizes (default 1 4 10)')
    p.add_argument('--fc-width', type=int, default=1024, help='fc6/fc7 channels')
    p.add_argument('--fc6-kernel', type=int, default=3, help='fc6 kernel size')
    p.add_argument('--threads', type=int, default=0,
                   help='intra-op threads of every engine (0: each engine\'s choice, as main.py; peers: all cores)')
    p.add_argument('--inter', type=int, default=0, help='TensorFlow inter-op threads (0: TensorFlow\'s choice)')
    p.add_argument('--repeats', type=int, default=None, help='interleaved rounds (default 3; --short: 1)')
    p.add_argument('--runs', type=int, default=None, help='timed calls per round (default 3; --short: 2)')
    p.add_argument('--no-bf16', action='store_true', help='skip the bf16 auto mixed precision rows (TF 2.9+)')
    p.add_argument('--no-peers', action='store_true', help='skip PyTorch and ONNX Runtime')
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

#!/usr/bin/env python
"""Issue #11's check: the KITTI road training step and inference against the code before the multi-class work.

    python bench/road_path.py            # batch 4, 160x576, 3 rounds x 3 timed calls (15-25 minutes)
    python bench/road_path.py --short    # tiny shapes, batch 1, one round: a self-check in about a minute

The baseline is `git archive` of --baseline (default e1c44f2^, the parent of the first multi-class commit),
the other contender this working tree. Each version runs in its own fresh Python on its own sources: its
main.load_vgg, main.layers(num_classes=2), main.optimize and road probabilities as its training built them
(baseline: roadseg.inference.road_probability_op, softmax of the (pixels, 2) logits, channel 1; current:
roadseg.model.heads.add_inference_outputs, softmax of the (N, H, W, 2) logits), its own tfcompat.py.
Random images and one-hot labels; the training step is sess.run(train_op) with keep_prob 0.5, inference
sess.run(probabilities) with keep_prob 1. Both versions get the same environment per part: the settings
roadseg.system.cpu recommends for this CPU today (oneDNN off for training and on for inference on AVX2), given as
the user's own so that neither version chooses again.

Per round and part, one process per version is started; once both are built, the parent has them make
their calls in turn (baseline, current, baseline, current, ...; one at a time, so they never compete),
warm-up calls first. A version's figure is the median of all its timed calls, and current/baseline
> 1 + --limit % fails. "paired" is the median of each timed call's ratio to its baseline neighbour.
"""
import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTS = ('train', 'infer')
VERSIONS = ('baseline', 'current')
MARK = '@road_path '  # prefixes the child's protocol lines on stdout


def road_graph(main, tf, sess, vgg_path):
    """The road training graph as this version's training built it: (image, keep_prob, label, lr, train_op,
    probabilities, name of the probability op)."""
    try:
        from roadseg import task
        from roadseg.model import graph
    except ImportError:  # the baseline, before model/graph.py: its training's own assembly
        return baseline_graph(main, tf, sess, vgg_path)
    net = graph.build(main, sess, vgg_path, {'l2_scale': 1e-3, 'skip_scaling': False}, task.kitti())
    return (net.image_input, net.keep_prob, net.correct_label, net.learning_rate, net.train_op, net.probabilities,
            'model.heads.add_inference_outputs')


def baseline_graph(main, tf, sess, vgg_path):
    """road_graph of the baseline version (e1c44f2^ and its like), assembled as its train.py did."""
    image, keep_prob, layer3, layer4, layer7 = main.load_vgg(sess, vgg_path)
    pretrained = set(tf.global_variables())
    label = tf.placeholder(tf.float32, [None, None, None, 2], name='correct_label')
    lr = tf.placeholder(tf.float32, [], name='learning_rate')
    output = main.layers(layer3, layer4, layer7, 2, l2_scale=1e-3, skip_scaling=False, crop_to=image)
    logits, train_op, _ = main.optimize(output, label, lr, 2)
    from roadseg.inference import road_probability_op
    prob, how = road_probability_op(logits, image), 'inference.road_probability_op'
    sess.run(tf.variables_initializer([v for v in tf.global_variables() if v not in pretrained]))
    return image, keep_prob, label, lr, train_op, prob, how


def child(args):
    """A version's process on the sources in args.child: builds the graph, says so on stdout, then makes one
    call per line read from stdin and answers with its time in seconds."""
    sys.path.insert(0, args.child)
    import main
    try:
        from roadseg.system.tfcompat import session_config, tf
    except ImportError:  # the baseline, before roadseg/system/
        from roadseg.tfcompat import session_config, tf
    h, w = args.shape
    rng = np.random.RandomState(0)
    images = rng.uniform(0, 255, (args.batch, h, w, 3)).astype(np.float32)
    labels = np.eye(2, dtype=np.float32)[rng.randint(0, 2, (args.batch, h, w))]
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph, config=session_config()) as sess:
        tf.set_random_seed(0)
        image, keep_prob, label, lr, train_op, prob, how = road_graph(main, tf, sess, args.vgg_dir)
        if args.part == 'train':
            fetch, feed = train_op, {image: images, label: labels, keep_prob: 0.5, lr: 1e-4}
        else:
            fetch, feed = prob, {image: images, keep_prob: 1.0}
        print(MARK + json.dumps({'probabilities': how, 'tensorflow': tf.__version__,
                                 'main': os.path.abspath(main.__file__)}), flush=True)
        for _ in sys.stdin:
            start = time.perf_counter()
            sess.run(fetch, feed)
            print(MARK + json.dumps(time.perf_counter() - start), flush=True)


def answer(proc):
    """The child's next protocol line, decoded; other output is passed through."""
    for line in proc.stdout:
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
        sys.stdout.write(line)
    raise RuntimeError('a measuring process ended early (exit code {})'.format(proc.wait()))


def measure_round(args, sources, part, env):
    """{version: {'times': [seconds per timed call], ...}} of one process per version, calls alternating."""
    procs = {v: subprocess.Popen([sys.executable, os.path.abspath(__file__)] + sys.argv[1:] +
                                 ['--vgg-dir', args.vgg_dir, '--child', sources[v], '--part', part],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=sources[v],
                                 universal_newlines=True) for v in VERSIONS}
    try:
        result = {v: dict(answer(procs[v]), times=[]) for v in VERSIONS}
        for call in range(args.warmup + args.runs):
            for v in VERSIONS:
                procs[v].stdin.write('\n')
                procs[v].stdin.flush()
                seconds = answer(procs[v])
                if call >= args.warmup:
                    result[v]['times'].append(seconds)
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
    return result


def git(*argv):
    return subprocess.run(['git', '-C', ROOT] + list(argv), stdout=subprocess.PIPE, check=True).stdout


def run(args):
    from roadseg.system import cpu
    info = cpu.cpu_info()
    print(cpu.describe(info))
    base_id = git('rev-parse', '--verify', args.baseline + '^{commit}').decode().strip()
    head_id = git('rev-parse', 'HEAD').decode().strip()
    dirty = bool(git('status', '--porcelain', '--untracked-files=no').strip())
    print('baseline: {} ({})'.format(base_id, args.baseline))
    print('current:  {} working tree{}'.format(head_id, ' with uncommitted changes' if dirty else ''))
    envs = {}
    for part in PARTS:
        env = dict(os.environ)
        chosen = cpu.apply_environment(cpu.recommended_settings(info, part), env)
        envs[part] = {k: v for k, v in env.items() if k != cpu.CHOSEN_ENV}  # the user's own to both versions
        print('{}: {}'.format(part, chosen or 'TensorFlow\'s defaults'))
    h, w = args.shape
    print('batch {}, {}x{}, {} rounds of a fresh process per version, {} warm-up and {} timed calls each, '
          'in turn'.format(args.batch, h, w, args.rounds, args.warmup, args.runs))
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(git('archive', base_id))) as tar:
            tar.extractall(tmp)
        sources = {'baseline': tmp, 'current': ROOT}
        for r in range(args.rounds):
            for part in PARTS:
                result = measure_round(args, sources, part, envs[part])
                rounds.append(dict(result, round=r + 1, part=part))
                for v in VERSIONS:
                    print('round {} {} {:8s} {} s/image ({})'.format(
                        r + 1, part, v, ' '.join('{:.4f}'.format(t / args.batch) for t in result[v]['times']),
                        result[v]['probabilities']), flush=True)
    summary = {}
    for part in PARTS:
        rows = [row for row in rounds if row['part'] == part]
        times = {v: [t / args.batch for row in rows for t in row[v]['times']] for v in VERSIONS}
        median = {v: statistics.median(times[v]) for v in VERSIONS}
        paired = [c / b for b, c in zip(times['baseline'], times['current'])]
        summary[part] = dict(median, ratio=median['current'] / median['baseline'], paired=statistics.median(paired),
                             paired_range=[min(paired), max(paired)])
    passed = all(s['ratio'] <= 1 + args.limit / 100 for s in summary.values())
    print('\n| part | baseline s/image | current s/image | current/baseline | paired (min-max) |')
    print('|---|---:|---:|---:|---|')
    for part, s in summary.items():
        print('| {} | {:.4f} | {:.4f} | {:.3f} | {:.3f} ({:.3f}-{:.3f}) |'.format(
            part, s['baseline'], s['current'], s['ratio'], s['paired'], *s['paired_range']))
    print('\n{}: training {:+.1f}%, inference {:+.1f}% (limit +{:g}%)'.format(
        'PASS' if passed else 'FAIL', 100 * (summary['train']['ratio'] - 1), 100 * (summary['infer']['ratio'] - 1),
        args.limit))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'cpu': info, 'baseline': base_id, 'current': head_id, 'dirty': dirty,
                       'settings': {part: {k: v for k, v in envs[part].items() if os.environ.get(k) != v}
                                    for part in PARTS},
                       'batch': args.batch, 'shape': [h, w], 'warmup': args.warmup, 'rounds': rounds,
                       'summary': summary, 'limit_pct': args.limit, 'pass': passed}, f, indent=2)
    return 0 if passed else 1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--short', action='store_true', help='tiny shapes, batch 1, one round of two calls: a self-check')
    p.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                   help='input size (default 160 576; --short: 64 96)')
    p.add_argument('--batch', type=int, default=None, help='images per call (default 4; --short: 1)')
    p.add_argument('--rounds', type=int, default=None, help='rounds of fresh processes (default 3; --short: 1)')
    p.add_argument('--runs', type=int, default=None, help='timed calls per process (default 3; --short: 2)')
    p.add_argument('--warmup', type=int, default=2, help='untimed calls first')
    p.add_argument('--baseline', default='e1c44f2^', help='commit of the code before the multi-class work')
    p.add_argument('--vgg-dir', default=os.path.join(ROOT, 'data', 'vgg'), help='the VGG16 SavedModel')
    p.add_argument('--limit', type=float, default=3.0, help='largest slow-down allowed, in percent')
    p.add_argument('--json', help='also write the results here')
    p.add_argument('--child', help=argparse.SUPPRESS)  # a version's process: the sources it runs
    p.add_argument('--part', choices=PARTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.shape = args.shape or ([64, 96] if args.short else [160, 576])
    args.batch = args.batch or (1 if args.short else 4)
    args.rounds = args.rounds or (1 if args.short else 3)
    args.runs = args.runs or (2 if args.short else 3)
    args.vgg_dir = os.path.abspath(args.vgg_dir)
    return args


if __name__ == '__main__':
    args = parse_args()
    if args.child:
        child(args)
    else:
        sys.path.insert(0, ROOT)
        sys.exit(run(args))

"""Shared fixtures: the tiny VGG SavedModel, a tiny training run, a tiny model that has learned to find road in
synthetic road scenes, synthetic KITTI trees, running main with a time limit."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# The suite's expectations (ONNX Runtime agreeing within 1e-4, seeded runs repeating their losses to the last digit:
# tests/test_determinism.py) are float32's;
# --precision auto would pick bf16 on a CPU with AVX512-BF16. Tests of auto and the first-run check override it.
os.environ.setdefault('ROADSEG_PRECISION', 'fp32')

import project_tests  # noqa: E402
from roadseg import cli  # noqa: E402
from roadseg.evaluation.report import read_history  # noqa: E402
from roadseg.model import vgg_weights  # noqa: E402
import main  # noqa: E402

vgg_weights.KERAS_URLS = ()  # tests never fetch the 550 MB ImageNet file, online or not

SAMPLE = os.path.join(ROOT, 'data', 'sample')
TINY_SHAPE = ['--image-shape', '64', '192']
# What the tiny encoder learns road from in seconds (measured on a 2-core Xeon at nice 19 under a full load: 3-8 s,
# kept validation IoU 0.92-0.95 on TF 2.21 and TF 1.15); the fixture fails below LEARNED_IOU.
LEARNED_RECIPE = ['--epochs', 12, '--batch-size', 5, '--learning-rate', 3e-3, '--lr-schedule', 'constant', '--warmup', 0,
                  '--keep-prob', 1.0] + TINY_SHAPE
LEARNED_IOU = 0.9
SUBPROCESS_SECONDS = 300  # the limit of each process a test starts (CI: pytest-timeout's limit is per test)


@pytest.fixture(scope='session')
def tiny_vgg_dir():
    """A folder holding vgg/, the tiny VGG-shaped SavedModel (pass it as --vgg-dir)."""
    return os.path.dirname(project_tests.tiny_vgg_path())


def run_cli(*argv):
    """main.py's entry point in-process; returns its exit code."""
    return cli.main([str(a) for a in argv], main)


@pytest.fixture(scope='session')
def tiny_run(tiny_vgg_dir, tmp_path_factory):
    """A finished one-epoch training run of the tiny model on the bundled sample."""
    runs = tmp_path_factory.mktemp('runs')
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--runs-dir', runs, '--epochs', 1,
                   '--batch-size', 3, *TINY_SHAPE) == 0
    (run,) = [p for p in runs.iterdir()]
    return str(run)


def kept_entry(run):
    """The history.jsonl entry of the epoch a finished run kept (the last marked best)."""
    return [e for e in read_history(os.path.join(run, 'history.jsonl')) if e.get('best')][-1]


def run_main(*argv, **kwargs):
    """main.py in a subprocess (unbuffered); returns the CompletedProcess."""
    return run_process([sys.executable, '-u', os.path.join(ROOT, 'main.py')] + [str(a) for a in argv], **kwargs)


def run_process(args, timeout=SUBPROCESS_SECONDS, **kwargs):
    """subprocess.run capturing text output, failing the test with one line when it outlives timeout seconds."""
    kwargs.setdefault('stdout', subprocess.PIPE)
    kwargs.setdefault('stderr', subprocess.PIPE)
    try:
        return subprocess.run([str(a) for a in args], universal_newlines=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as e:
        pytest.fail('subprocess timed out after {:g} s: {}'.format(timeout, ' '.join(map(str, args))[:300]),
                    pytrace=False)


SKY, GRASS, ROAD = 0, 1, 2  # the parts of a road_scene


def road_scene(rng, size):
    """(uint8 RGB (H, W, 3), uint8 parts (H, W): SKY, GRASS or ROAD) of a synthetic road scene, size = (H, W): sky
    above a random horizon (30-50% down), grass below, and a grey road narrowing from the bottom edge to the
    horizon, with pixel noise."""
    h, w = size
    horizon = int(h * rng.uniform(0.3, 0.5))
    image = np.empty((h, w, 3), np.float32)
    image[:horizon] = rng.uniform([90, 140, 200], [150, 190, 255])
    image[horizon:] = rng.uniform([30, 110, 20], [100, 190, 70])
    cx, top, bottom = w * rng.uniform(0.35, 0.65), w * rng.uniform(0.04, 0.12), w * rng.uniform(0.55, 0.9)
    shift = w * rng.uniform(-0.15, 0.15)
    parts = Image.new('L', (w, h), GRASS)
    draw = ImageDraw.Draw(parts)
    draw.rectangle([0, 0, w, horizon - 1], fill=SKY)
    draw.polygon([(cx - top, horizon), (cx + top, horizon), (cx + shift + bottom / 2, h),
                  (cx + shift - bottom / 2, h)], fill=ROAD)
    parts = np.asarray(parts)
    image[parts == ROAD] = rng.uniform(70, 130) + rng.uniform(-5, 5, 3)
    image += rng.normal(0, 8, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), parts


def road_mask(road):
    """KITTI colours of a boolean road map: (255, 0, 255) road, (255, 0, 0) background."""
    mask = np.empty(road.shape + (3,), np.uint8)
    mask[...] = (255, 0, 0)
    mask[road] = (255, 0, 255)
    return mask


def road_tree(root, train=6, test=2, size=(64, 192), seed=0):
    """A data_road tree of synthetic road scenes: per category (um, umm, uu) `train` training pairs (000004 is in
    the validation split) and `test` testing images, whose true masks go to testing/gt_image_2 (KITTI ships
    none; the tests compare with them)."""
    rng = np.random.RandomState(seed)
    for sub in ('training/image_2', 'training/gt_image_2', 'testing/image_2', 'testing/gt_image_2'):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for part, count in (('training', train), ('testing', test)):
        for category in ('um', 'umm', 'uu'):
            for i in range(count):
                image, parts = road_scene(rng, size)
                Image.fromarray(image).save(os.path.join(root, part, 'image_2', '{}_{:06d}.png'.format(category, i)))
                Image.fromarray(road_mask(parts == ROAD)).save(
                    os.path.join(root, part, 'gt_image_2', '{}_road_{:06d}.png'.format(category, i)))
    return str(root)


def road_test_images(data):
    """[(name, uint8 image, bool true road)] of a road_tree's testing images, sorted by name."""
    folder = os.path.join(data, 'testing', 'image_2')
    out = []
    for name in sorted(os.listdir(folder)):
        image = np.asarray(Image.open(os.path.join(folder, name)).convert('RGB'))
        stem, _ = os.path.splitext(name)
        category, number = stem.split('_')
        mask = np.asarray(Image.open(os.path.join(data, 'testing', 'gt_image_2', '{}_road_{}.png'.format(
            category, number))).convert('RGB'))
        out.append((name, image, np.all(mask == (255, 0, 255), axis=-1)))
    return out


def iou(predicted, truth):
    """|predicted & truth| / |predicted | truth| of two boolean maps (or lists of them), computed here by hand."""
    predicted = np.concatenate([np.ravel(p) for p in predicted]) if isinstance(predicted, list) else predicted
    truth = np.concatenate([np.ravel(t) for t in truth]) if isinstance(truth, list) else truth
    return np.sum(predicted & truth) / max(np.sum(predicted | truth), 1)


@pytest.fixture(scope='session')
def road_data(tmp_path_factory):
    """A road_tree: 15 training pairs, 3 validation pairs, 6 testing images with true masks, all 64x192."""
    return road_tree(str(tmp_path_factory.mktemp('road') / 'data_road'))


@pytest.fixture(scope='session')
def learned_run(tiny_vgg_dir, road_data, tmp_path_factory):
    """A finished run of the tiny model trained on road_data with LEARNED_RECIPE, built once per test session: its
    kept epoch's validation IoU is at least LEARNED_IOU (checked here), so its outputs have road in them."""
    runs = tmp_path_factory.mktemp('learned')
    start = time.time()
    assert run_cli('--data-dir', road_data, '--vgg-dir', tiny_vgg_dir, '--runs-dir', runs, *LEARNED_RECIPE) == 0
    (run,) = [str(p) for p in runs.iterdir()]
    with open(os.path.join(run, 'history.jsonl')) as f:
        kept = max(json.loads(line)['val_iou'] for line in f)
    print('learned_run: validation IoU {:.3f} after {:.1f} s'.format(kept, time.time() - start))
    assert kept >= LEARNED_IOU, 'the tiny model did not learn road: validation IoU {:.3f}'.format(kept)
    return run


@pytest.fixture(scope='session')
def learned_onnx_run(learned_run, tmp_path_factory):
    """A copy of learned_run with its ONNX export (learned_run itself stays without one)."""
    import shutil
    from roadseg.serving.export import export_run
    run = str(tmp_path_factory.mktemp('learned_onnx') / 'run')
    shutil.copytree(learned_run, run, ignore=shutil.ignore_patterns('test_images', 'logs', 'export*', 'evaluation*'))
    export_run(run, ('onnx',))
    return run


def kitti_tree(root, n=3, size=(96, 64)):
    """A synthetic data_road tree: n training pairs (road in the lower half) and n testing images."""
    rng = np.random.RandomState(0)
    for sub in ('training/image_2', 'training/gt_image_2', 'testing/image_2'):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for i in range(n):
        image = rng.randint(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        mask = np.zeros_like(image)
        mask[...] = (255, 0, 0)
        mask[size[1] // 2:] = (255, 0, 255)
        Image.fromarray(image).save(os.path.join(root, 'training/image_2/um_{:06d}.png'.format(i)))
        Image.fromarray(mask).save(os.path.join(root, 'training/gt_image_2/um_road_{:06d}.png'.format(i)))
        Image.fromarray(image).save(os.path.join(root, 'testing/image_2/um_{:06d}.png'.format(i)))
    return str(root)


def error_line(capsys):
    """The one `error: ...` line main printed on stderr (progress bars aside), asserting no traceback."""
    err = capsys.readouterr().err
    assert 'Traceback' not in err, err
    lines = [line for line in err.splitlines() if line.startswith('error: ')]
    assert len(lines) == 1, err
    return lines[0]


# CI's rules: a subprocess that outlives its timeout fails its test in one line; with ROADSEG_STRICT_SKIPS=1 (.ci/run
# sets it) a skip that tests/allowed_skips.txt does not allow this stack fails the run. pytest-timeout (pytest.ini)
# ends a test that hangs.
ALLOWED_SKIPS = os.path.join(ROOT, 'tests', 'allowed_skips.txt')
STACK = 'tf1' if project_tests.tf.__version__.startswith('1.') else 'tf2'
_skipped = []


def allowed_skips(stack=STACK, path=ALLOWED_SKIPS):
    """The test id patterns (fnmatch) allowed to skip on stack ('tf1' or 'tf2'): lines `STACKS PATTERN  why`,
    STACKS tf1, tf2 or tf1,tf2; # starts a comment."""
    patterns = []
    with open(path) as f:
        for line in f:
            fields = line.split('#', 1)[0].split()
            if fields and stack in fields[0].split(','):
                patterns.append(fields[1])
    return patterns


def unexpected_skips(reports, patterns):
    """[(test id, reason)] of the skipped reports no pattern allows."""
    import fnmatch
    out = []
    for report in reports:
        if not any(fnmatch.fnmatchcase(report.nodeid, p) for p in patterns):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            out.append((report.nodeid, reason))
    return out


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, 'wasxfail'):
        _skipped.append(report)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get('ROADSEG_STRICT_SKIPS') != '1':
        return
    unexpected = unexpected_skips(_skipped, allowed_skips())
    if unexpected:
        reporter = session.config.pluginmanager.get_plugin('terminalreporter')
        for nodeid, reason in unexpected:
            line = 'error: skipped, and {} does not allow it on {}: {} ({})'.format(
                os.path.relpath(ALLOWED_SKIPS, ROOT), STACK, nodeid, reason)
            reporter.write_line(line) if reporter else print(line)
        session.exitstatus = 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(subprocess.TimeoutExpired):
        e = call.excinfo.value
        command = ' '.join(map(str, e.cmd)) if isinstance(e.cmd, (list, tuple)) else str(e.cmd)
        report.longrepr = 'subprocess timed out after {:g} s: {}'.format(e.timeout, command[:300])

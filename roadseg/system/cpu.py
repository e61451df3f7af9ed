"""The CPU and TensorFlow build a run uses: instruction sets, oneDNN, and the settings chosen from them.

Importable before TensorFlow (nothing here imports it), so that environment variables it recommends can be
set before TensorFlow reads them; importing it sets nothing (choose_settings does, when called).
"""
import os
import platform
import sys

CPUINFO = '/proc/cpuinfo'
CPUINFO_ENV = 'ROADSEG_CPUINFO'  # read this file instead of CPUINFO (tests fake a CPU with it)
# /proc/cpuinfo flags that decide speed here: vector width, bf16 arithmetic, oneDNN's default
FEATURES = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile', 'amx_bf16', 'amx_int8')
# TF >= 2.9 on Linux turns oneDNN on by default when the CPU has one of these (DefaultOneDnnPolicy,
# tensorflow/core/util/util.cc); TF_ENABLE_ONEDNN_OPTS=0/1 overrides it.
ONEDNN_DEFAULT_FEATURES = ('avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile', 'amx_int8', 'amx_bf16')
BF16_FEATURES = ('avx512_bf16', 'amx_bf16')
TF_DISTRIBUTIONS = ('tensorflow', 'tensorflow-cpu', 'tensorflow-gpu', 'intel-tensorflow', 'nvidia-tensorflow')


def read_cpuinfo(path=None):
    """(model name, set of flags) of the first processor listed in a /proc/cpuinfo-format file (path, else
    $ROADSEG_CPUINFO, else /proc/cpuinfo).

    Where the file is missing or unreadable (macOS, Windows), (platform.processor() or 'unknown CPU', None):
    None means "instruction sets unknown", never "none of them".
    """
    path = path or os.environ.get(CPUINFO_ENV) or CPUINFO
    try:
        with open(path, errors='replace') as f:
            text = f.read()
    except OSError:
        return platform.processor() or 'unknown CPU', None
    model, flags = None, None
    for line in text.splitlines():
        key, _, value = line.partition(':')
        key = key.strip()
        if key == 'model name' and model is None:
            model = value.strip()
        elif key == 'flags' and flags is None:
            flags = set(value.split())
    return model or platform.processor() or 'unknown CPU', flags


def tensorflow_version():
    """The installed TensorFlow's version without importing it (the imported one's if it is); None if absent."""
    module = sys.modules.get('tensorflow')
    if getattr(module, '__version__', None):
        return module.__version__
    try:
        from importlib import metadata
    except ImportError:  # Python 3.7
        try:
            import importlib_metadata as metadata
        except ImportError:
            return None
    for name in TF_DISTRIBUTIONS:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _env_bool(value):
    """TensorFlow's reading of a boolean environment variable: '0'/'false' or '1'/'true', else None."""
    value = (value or '').strip().lower()
    return {'0': False, 'false': False, '1': True, 'true': True}.get(value)


def onednn_setting(tf_version, flags, environ=None, system=None, machine=None):
    """(on: bool or None when unknown, why: str) for oneDNN's custom ops in this TensorFlow build.

    TF 1.x PyPI wheels have no oneDNN; TF 2.x reads TF_ENABLE_ONEDNN_OPTS, else (2.9+, Linux x86-64) turns
    it on only for CPUs with one of ONEDNN_DEFAULT_FEATURES (2.5-2.8: off).
    """
    environ = os.environ if environ is None else environ
    if not tf_version:
        return None, 'TensorFlow not installed'
    major_minor = tuple(int(p) for p in tf_version.split('.')[:2] if p.isdigit())
    if major_minor < (2, 5):
        return False, 'TF {} PyPI build has no oneDNN'.format(tf_version)
    forced = _env_bool(environ.get('TF_ENABLE_ONEDNN_OPTS'))
    if forced is not None:
        chosen = ', chosen for this CPU' if 'TF_ENABLE_ONEDNN_OPTS' in _chosen(environ) else ''
        return forced, 'TF_ENABLE_ONEDNN_OPTS={}{}'.format(environ['TF_ENABLE_ONEDNN_OPTS'], chosen)
    if major_minor < (2, 9):
        return False, 'default before TF 2.9'
    if (system or platform.system()) != 'Linux' or (machine or platform.machine()) not in ('x86_64', 'AMD64'):
        return None, 'default on this platform'
    if flags is None:
        return None, 'default, CPU flags unknown'
    return bool(flags & set(ONEDNN_DEFAULT_FEATURES)), 'default for this CPU'


def cpu_info(path=None, tf_version=None, environ=None, system=None, machine=None):
    """JSON-ready dict for logs, config.json and benchmark JSON: model, cores, flags (FEATURES -> bool, or
    None when unknown), tensorflow version, onednn (bool or None) and onednn_reason."""
    model, flags = read_cpuinfo(path)
    tf_version = tf_version or tensorflow_version()
    onednn, why = onednn_setting(tf_version, flags, environ, system, machine)
    return {'model': model, 'cores': os.cpu_count(),
            'flags': None if flags is None else {name: name in flags for name in FEATURES},
            'tensorflow': tf_version, 'onednn': onednn, 'onednn_reason': why}


def _has(info, *names):
    return any((info['flags'] or {}).get(n) for n in names)


def cpu_class(info):
    """'amx', 'avx512_bf16', 'avx512', 'avx2', 'older' or 'unknown': the classes speed is measured for."""
    if info['flags'] is None:
        return 'unknown'
    for name, features in (('amx', ('amx_bf16',)), ('avx512_bf16', ('avx512_bf16',)), ('avx512', ('avx512f',)),
                           ('avx2', ('avx2',))):
        if _has(info, *features):
            return name
    return 'older'


def describe(info):
    """One line for logs, e.g. 'CPU: AMD EPYC, 2 cores (avx2 fma; no avx512, no avx512_bf16, no amx);
    TensorFlow 2.21.0, oneDNN off (default for this CPU)'."""
    if info['flags'] is None:
        features = 'instruction sets unknown'
    else:
        groups = (('avx2', ('avx2',)), ('fma', ('fma',)), ('avx512', ('avx512f',)),
                  ('avx512_bf16', ('avx512_bf16',)), ('amx', ('amx_tile', 'amx_bf16')))
        have = [name for name, features in groups if _has(info, *features)]
        lack = ['no ' + name for name, features in groups if not _has(info, *features)]
        features = '; '.join(p for p in (' '.join(have), ', '.join(lack)) if p)
    onednn = {True: 'on', False: 'off', None: 'unknown'}[info['onednn']]
    return 'CPU: {}, {} cores ({}); TensorFlow {}, oneDNN {} ({})'.format(
        info['model'], info['cores'], features, info['tensorflow'] or 'not installed', onednn, info['onednn_reason'])


def bf16_warning(info):
    """The one warning line for --bf16 where it cannot be faster than float32, else None."""
    off = info['onednn'] is False
    skipped = 'TensorFlow skips the bf16 rewrite while oneDNN is off ({}): the run stays float32'.format(
        info['onednn_reason'])
    if info['flags'] is not None and not _has(info, *BF16_FEATURES):
        return ('warning: --bf16 will not be faster here: this CPU ({}) has no AVX512-BF16 or AMX-BF16 '
                'instructions{}'.format(info['model'], '; ' + skipped if off else ''))
    if off:
        return 'warning: --bf16: ' + skipped + '; set TF_ENABLE_ONEDNN_OPTS=1'
    return None


# What measured best for this project's FCN-8s (batch 4, 160x576, interleaved A B A B in separate processes,
# same-run ratios; docs/speed.md), by CPU class and mode. Classes not listed keep TensorFlow's defaults:
# nothing was measured there. Thread counts, XLA JIT alone, resource variables: within the noise of
# TensorFlow's defaults; XLA JIT with tcmalloc (LD_PRELOAD, set before the process starts, so not chosen
# here) 1.13x training on AVX2 (docs/speed.md). So only oneDNN is chosen.
MEASURED = {
    # AMD EPYC Zen 1, AVX2 + FMA, TF 2.21 (2026-11-22): oneDNN against Eigen 0.65x training (its weight
    # gradients are 1.5-2x slower), 1.17x inference (live graph), 1.06x (frozen graph)
    'avx2': {'train': {'TF_ENABLE_ONEDNN_OPTS': '0'}, 'infer': {'TF_ENABLE_ONEDNN_OPTS': '1'}},
    # AMD EPYC Zen 4, AVX-512 + AVX512-BF16, TF 2.21 (2026-11-21): TensorFlow's default (oneDNN on) was best
    'avx512_bf16': {'train': {}, 'infer': {}},
}
INFERENCE_FLAGS = ('--evaluate', '--video', '--predict')
CHOSEN_ENV = 'ROADSEG_CHOSEN_ENV'


def startup_mode(argv):
    """'infer' when main.py's command line argv selects an inference-only mode, else 'train'."""
    return 'infer' if any(a.split('=')[0] in INFERENCE_FLAGS for a in argv[1:]) else 'train'


def recommended_settings(info, mode='train'):
    """Settings that measured best for info's CPU class in mode ('train' or 'infer'):
    {'env': {name: value} to set before TensorFlow is imported, 'measured': bool}. TF 1.x has no oneDNN:
    nothing to choose there."""
    if info['tensorflow'] is None or info['onednn_reason'].endswith('has no oneDNN'):
        return {'env': {}, 'measured': False}
    chosen = MEASURED.get(cpu_class(info))
    return {'env': dict(chosen[mode]) if chosen else {}, 'measured': chosen is not None}


def _chosen(environ):
    """Names apply_environment set in environ (listed in CHOSEN_ENV), as opposed to the user's own."""
    return set(filter(None, environ.get(CHOSEN_ENV, '').split(',')))


def apply_environment(settings, environ=None):
    """Set settings['env'] in environ (os.environ) where the user has not set them; call before TensorFlow
    is imported. What it sets is listed in CHOSEN_ENV, so that a child process (which inherits it) chooses
    again for its own mode instead of taking it for the user's choice. Returns {name: value} it set."""
    environ = os.environ if environ is None else environ
    chosen = _chosen(environ)
    for name in chosen - set(settings['env']):
        environ.pop(name, None)
    applied = {k: v for k, v in settings['env'].items() if k not in environ or k in chosen}
    environ.update(applied)
    environ[CHOSEN_ENV] = ','.join(sorted(applied))
    return applied


def choose_settings(mode):
    """Apply the recommended settings for this CPU and mode ('train' or 'infer') to os.environ, unless
    TensorFlow is already imported (it has read them then); the user's own variables are kept. Called by
    main.py's command line (startup_mode of its argv) and by a new Segmenter ('infer'), never on import.
    Returns {name: value} it set."""
    if 'tensorflow' in sys.modules:
        return {}
    return apply_environment(recommended_settings(cpu_info(), mode))


PRECISIONS = ('auto', 'fp32', 'bf16')
PRECISION_ENV = 'ROADSEG_PRECISION'  # the default of --precision where it is not given (else 'auto')


def default_precision(environ=None):
    """--precision when not given: $ROADSEG_PRECISION if it names one of PRECISIONS, else 'auto'."""
    value = (os.environ if environ is None else environ).get(PRECISION_ENV, '').strip().lower()
    return value if value in PRECISIONS else 'auto'


def choose_precision(requested, info):
    """('fp32' or 'bf16', why) for requested ('auto', 'fp32', 'bf16'; None: default_precision()) on info's CPU.

    auto is bf16 where it pays: a CPU with AVX512-BF16 or AMX-BF16, and TensorFlow 2.9+ with oneDNN on (its
    auto_mixed_precision_onednn_bfloat16 rewrite); fp32 elsewhere (AVX2, TF 1.15, oneDNN off)."""
    requested = requested or default_precision()
    if requested != 'auto':
        return requested, 'asked for'
    version = tuple(int(p) for p in (info['tensorflow'] or '0').split('.')[:2] if p.isdigit())
    if info['flags'] is None:
        return 'fp32', 'auto: CPU instruction sets unknown'
    if not _has(info, *BF16_FEATURES):
        return 'fp32', 'auto: this CPU has no AVX512-BF16 or AMX-BF16'
    if version < (2, 9):
        return 'fp32', 'auto: TensorFlow {} has no oneDNN bf16 rewrite (2.9+)'.format(info['tensorflow'])
    if info['onednn'] is False:
        return 'fp32', 'auto: oneDNN is off ({})'.format(info['onednn_reason'])
    have = [n for n in ('amx_bf16', 'avx512_bf16') if info['flags'].get(n)]
    return 'bf16', 'auto: this CPU has {} and TensorFlow {} has oneDNN'.format(' and '.join(have), info['tensorflow'])

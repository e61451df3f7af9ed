"""CPU-feature detection from faked /proc/cpuinfo content, the oneDNN setting, the --bf16 warning, the
settings chosen at start-up."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from roadseg.system import cpu

# The first processor's lines as Linux prints them (flags abridged to a realistic subset).
ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 avx512f avx512dq avx512cd avx512bw avx512vl \
avx512_bf16 avx512vbmi avx512_vnni avx512_bitalg avx512_vpopcntdq
"""
# this project's AVX2 machine (lscpu, 2026-11-22)
EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht \
syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid \
tsc_known_freq pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c \
rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext ssbd ibpb vmmcall \
fsgsbase tsc_adjust bmi1 avx2 smep bmi2 rdseed adx smap clflushopt sha_ni xsaveopt xsavec xgetbv1 clzero xsaveerptr \
virt_ssbd arat

processor\t: 1
model name\t: some other name
flags\t\t: fpu avx512f avx512_bf16
"""
SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 ssse3 fma sse4_2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx_vnni avx512_bf16 \
avx512_vnni amx_bf16 avx512_fp16 amx_tile amx_int8
"""
NO_FLAGS = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32
CPU implementer\t: 0x41
"""
LINUX = dict(system='Linux', machine='x86_64')


def info_for(tmp_path, text, tf_version='2.21.0', environ=None):
    path = tmp_path / 'cpuinfo'
    path.write_text(text)
    return cpu.cpu_info(str(path), tf_version=tf_version, environ=environ or {}, **LINUX)


def test_zen4_avx512_bf16(tmp_path):
    info = info_for(tmp_path, ZEN4)
    assert info['model'] == 'AMD EPYC 9R14 96-Core Processor'
    assert info['flags']['avx512f'] and info['flags']['avx512_bf16'] and not info['flags']['amx_bf16']
    assert (info['onednn'], info['onednn_reason']) == (True, 'default for this CPU')
    assert cpu.cpu_class(info) == 'avx512_bf16'
    assert '(avx2 fma avx512 avx512_bf16; no amx); TensorFlow 2.21.0, oneDNN on (default for this CPU)' \
        in cpu.describe(info)
    assert cpu.bf16_warning(info) is None


def test_this_avx2_machine(tmp_path):
    info = info_for(tmp_path, EPYC_AVX2)
    assert info['model'] == 'AMD EPYC'  # the first processor's lines only
    assert info['flags']['avx2'] and info['flags']['fma'] and not info['flags']['avx512f']
    assert (info['onednn'], info['onednn_reason']) == (False, 'default for this CPU')
    assert cpu.cpu_class(info) == 'avx2'
    assert cpu.describe(info) == ('CPU: AMD EPYC, {} cores (avx2 fma; no avx512, no avx512_bf16, no amx); '
                                  'TensorFlow 2.21.0, oneDNN off (default for this CPU)'.format(os.cpu_count()))
    warning = cpu.bf16_warning(info)
    assert warning.startswith('warning: --bf16 will not be faster here: this CPU (AMD EPYC) has no AVX512-BF16')
    assert 'the run stays float32' in warning and '\n' not in warning


def test_sapphire_rapids_amx(tmp_path):
    info = info_for(tmp_path, SAPPHIRE_RAPIDS)
    assert info['flags']['amx_tile'] and info['flags']['amx_bf16'] and info['flags']['avx_vnni']
    assert info['onednn'] is True
    assert cpu.cpu_class(info) == 'amx'
    assert '(avx2 fma avx512 avx512_bf16 amx)' in cpu.describe(info)
    assert cpu.bf16_warning(info) is None


def test_cpuinfo_without_flags(tmp_path):
    info = info_for(tmp_path, NO_FLAGS)
    assert info['flags'] is None and info['model']
    assert (info['onednn'], info['onednn_reason']) == (None, 'default, CPU flags unknown')
    assert cpu.cpu_class(info) == 'unknown'
    assert 'instruction sets unknown' in cpu.describe(info) and 'oneDNN unknown' in cpu.describe(info)
    assert cpu.bf16_warning(info) is None


def test_no_cpuinfo_file(tmp_path):
    """Non-Linux: no /proc/cpuinfo; the platform's defaults are unknown, nothing raises."""
    info = cpu.cpu_info(str(tmp_path / 'missing'), tf_version='2.21.0', environ={}, system='Darwin', machine='arm64')
    assert info['flags'] is None and isinstance(info['model'], str) and info['model']
    assert info['onednn'] is None
    assert cpu.describe(info).startswith('CPU: ')


@pytest.mark.parametrize('text, value, onednn', [(ZEN4, '0', False), (EPYC_AVX2, '1', True),
                                                  (EPYC_AVX2, 'true', True), (ZEN4, 'maybe', True)])
def test_environment_overrides_the_default(tmp_path, text, value, onednn):
    """TF_ENABLE_ONEDNN_OPTS wins when TensorFlow can read it; other values leave TensorFlow's default."""
    info = info_for(tmp_path, text, environ={'TF_ENABLE_ONEDNN_OPTS': value})
    assert info['onednn'] is onednn
    assert (info['onednn_reason'] == 'TF_ENABLE_ONEDNN_OPTS=' + value) is (value != 'maybe')


def test_bf16_warning_when_onednn_is_off(tmp_path):
    """A bf16 CPU with oneDNN turned off: the rewrite does not run, and the warning says how to turn it on."""
    warning = cpu.bf16_warning(info_for(tmp_path, ZEN4, environ={'TF_ENABLE_ONEDNN_OPTS': '0'}))
    assert 'stays float32' in warning and 'TF_ENABLE_ONEDNN_OPTS=1' in warning
    on = cpu.bf16_warning(info_for(tmp_path, EPYC_AVX2, environ={'TF_ENABLE_ONEDNN_OPTS': '1'}))
    assert 'no AVX512-BF16' in on and 'stays float32' not in on


@pytest.mark.parametrize('version, onednn, reason', [('1.15.5', False, 'TF 1.15.5 PyPI build has no oneDNN'),
                                                     ('2.8.4', False, 'default before TF 2.9'),
                                                     ('2.21.0', True, 'default for this CPU'),
                                                     (None, None, 'TensorFlow not installed')])
def test_onednn_by_tensorflow_version(version, onednn, reason):
    assert cpu.onednn_setting(version, {'amx_tile', 'avx2'}, {}, **LINUX) == (onednn, reason)


@pytest.mark.parametrize('text, mode, env, measured', [
    (EPYC_AVX2, 'train', {'TF_ENABLE_ONEDNN_OPTS': '0'}, True),   # oneDNN 0.65x Eigen training on AVX2
    (EPYC_AVX2, 'infer', {'TF_ENABLE_ONEDNN_OPTS': '1'}, True),   # and 1.17x inference
    (ZEN4, 'train', {}, True),                                    # TensorFlow's default (oneDNN on) measured best
    (SAPPHIRE_RAPIDS, 'infer', {}, False),                        # not measured: TensorFlow's defaults
    (NO_FLAGS, 'train', {}, False)])
def test_recommended_settings(tmp_path, text, mode, env, measured):
    assert cpu.recommended_settings(info_for(tmp_path, text), mode) == {'env': env, 'measured': measured}


def test_no_onednn_choice_on_tf1(tmp_path):
    info = info_for(tmp_path, EPYC_AVX2, tf_version='1.15.5')
    assert cpu.recommended_settings(info, 'infer') == {'env': {}, 'measured': False}


def test_apply_environment_keeps_the_users_choice():
    settings = {'env': {'TF_ENABLE_ONEDNN_OPTS': '1', 'OTHER': 'x'}, 'measured': True}
    environ = {'TF_ENABLE_ONEDNN_OPTS': '0'}
    assert cpu.apply_environment(settings, environ) == {'OTHER': 'x'}
    assert environ == {'TF_ENABLE_ONEDNN_OPTS': '0', 'OTHER': 'x', cpu.CHOSEN_ENV: 'OTHER'}


def test_a_child_process_chooses_again(tmp_path):
    """A training process's choice, inherited by an inference child (benchmark parts, test subprocesses),
    is replaced by the child's own, and the log says it was chosen, not set by the user."""
    info = info_for(tmp_path, EPYC_AVX2)
    environ = {}
    cpu.apply_environment(cpu.recommended_settings(info, 'train'), environ)
    assert environ == {'TF_ENABLE_ONEDNN_OPTS': '0', cpu.CHOSEN_ENV: 'TF_ENABLE_ONEDNN_OPTS'}
    child = dict(environ)
    assert cpu.apply_environment(cpu.recommended_settings(info, 'infer'), child) == {'TF_ENABLE_ONEDNN_OPTS': '1'}
    assert info_for(tmp_path, EPYC_AVX2, environ=child)['onednn_reason'] == \
        'TF_ENABLE_ONEDNN_OPTS=1, chosen for this CPU'
    cpu.apply_environment({'env': {}, 'measured': False}, child)  # a mode or class that chooses nothing
    assert child == {cpu.CHOSEN_ENV: ''}


@pytest.mark.parametrize('argv, mode', [(['main.py'], 'train'), (['main.py', '--epochs', '3'], 'train'),
                                        (['main.py', '--evaluate', 'runs/x'], 'infer'),
                                        (['main.py', '--video=in.mp4', '--output', 'o.mp4'], 'infer'),
                                        (['main.py', '--predict', 'a.png'], 'infer'),
                                        (['main.py', '--resume', 'runs/x.partial'], 'train')])
def test_startup_mode(argv, mode):
    assert cpu.startup_mode(argv) == mode


def test_this_machine():
    """The real /proc/cpuinfo (where there is one) and the TensorFlow this test runs with."""
    from roadseg.system.tfcompat import tf
    info = cpu.cpu_info()
    assert info['tensorflow'] == tf.__version__ == cpu.tensorflow_version()
    assert json.loads(json.dumps(info)) == info
    if os.path.exists(cpu.CPUINFO) and info['flags'] is not None:
        assert info['model'] and isinstance(info['flags']['avx2'], bool)
    assert cpu.describe(info).startswith('CPU: ')


# What a fresh process chooses: main.py's command line before it imports TensorFlow, or a Python program's
# Segmenter when it is created; and what its CPU line then says.
STARTUP = """import os, sys
from roadseg.system import cpu
if sys.argv[1] == '--segmenter':
    from roadseg import Segmenter
    Segmenter(sys.argv[2]).close()
else:
    cpu.choose_settings(cpu.startup_mode(sys.argv))  # as main.py does when run
    import roadseg.system.tfcompat
print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))
print(cpu.describe(cpu.cpu_info()))
try:
    from tensorflow.python.util import _pywrap_util_port
    print(_pywrap_util_port.IsMklEnabled())  # TensorFlow's own answer (TF 2.x)
except ImportError:
    print(None)
"""


@pytest.mark.parametrize('argv, environ, value, reason', [
    (['--epochs', '1'], {}, '0', 'TF_ENABLE_ONEDNN_OPTS=0, chosen for this CPU'),        # training
    (['--evaluate', 'runs/x'], {}, '1', 'TF_ENABLE_ONEDNN_OPTS=1, chosen for this CPU'),  # inference
    (['--predict', 'in'], {'TF_ENABLE_ONEDNN_OPTS': '0'}, '0', 'TF_ENABLE_ONEDNN_OPTS=0'),  # the user's own
    (['--video', 'a.mp4'], {'TF_ENABLE_ONEDNN_OPTS': '0', cpu.CHOSEN_ENV: 'TF_ENABLE_ONEDNN_OPTS'}, '1',
     'TF_ENABLE_ONEDNN_OPTS=1, chosen for this CPU'),                                   # a training parent's choice
    (['--segmenter', 'RUN'], {}, '1', 'TF_ENABLE_ONEDNN_OPTS=1, chosen for this CPU')])  # the Python API
def test_chosen_before_tensorflow_is_imported(tmp_path, request, argv, environ, value, reason):
    """On an AVX2 CPU (faked through ROADSEG_CPUINFO), main.py's start-up sets TF_ENABLE_ONEDNN_OPTS for the
    command line's mode before TensorFlow reads it, and so does a new Segmenter for inference in a program that
    only imported roadseg; the user's own value is kept, and the CPU line and TensorFlow agree on what is in
    effect. TF 1.15 has no oneDNN: nothing is chosen there."""
    if argv[-1] == 'RUN':
        argv = argv[:-1] + [request.getfixturevalue('tiny_run')]
    path = tmp_path / 'cpuinfo'
    path.write_text(EPYC_AVX2)
    env = {k: v for k, v in os.environ.items() if k not in ('TF_ENABLE_ONEDNN_OPTS', cpu.CHOSEN_ENV)}
    env.update(environ, **{cpu.CPUINFO_ENV: str(path)})
    out = subprocess.run([sys.executable, '-c', STARTUP] + argv, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                         universal_newlines=True, check=True, timeout=300).stdout.splitlines()
    if cpu.tensorflow_version().startswith('1.'):  # the user's own value stays, a parent's choice goes
        assert out[0] == ('None' if cpu.CHOSEN_ENV in environ else environ.get('TF_ENABLE_ONEDNN_OPTS', 'None'))
        assert 'oneDNN off (TF 1.15' in out[1] and 'AMD EPYC' in out[1]
        return
    on = value == '1'
    assert out[0] == value
    assert out[1].endswith('oneDNN {} ({})'.format('on' if on else 'off', reason)), out[1]
    assert out[2] == str(on), 'TensorFlow runs oneDNN as the CPU line says'

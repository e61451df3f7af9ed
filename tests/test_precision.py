"""--precision auto|fp32|bf16: what auto chooses per CPU and TensorFlow (faked cpuinfo), and that training,
evaluation and Segmenter follow it and record it."""
import json
import os

import pytest

from conftest import SAMPLE, TINY_SHAPE, error_line, kept_entry, run_cli
from test_cpu import EPYC_AVX2, NO_FLAGS, SAPPHIRE_RAPIDS, ZEN4, info_for
from roadseg.serving.inference import Segmenter
from roadseg.system import cpu
from roadseg.system.tfcompat import tf

HAS_BF16_REWRITE = 'auto_mixed_precision_onednn_bfloat16' in \
    tf.ConfigProto().graph_options.rewrite_options.DESCRIPTOR.fields_by_name


@pytest.mark.parametrize('text, tf_version, environ, expected, reason', [
    (ZEN4, '2.21.0', {}, 'bf16', 'auto: this CPU has avx512_bf16 and TensorFlow 2.21.0 has oneDNN'),
    (SAPPHIRE_RAPIDS, '2.21.0', {}, 'bf16', 'auto: this CPU has amx_bf16 and avx512_bf16 and TensorFlow 2.21.0'),
    (EPYC_AVX2, '2.21.0', {}, 'fp32', 'auto: this CPU has no AVX512-BF16 or AMX-BF16'),
    (ZEN4, '1.15.5', {}, 'fp32', 'auto: TensorFlow 1.15.5 has no oneDNN bf16 rewrite (2.9+)'),
    (ZEN4, '2.8.0', {}, 'fp32', 'auto: TensorFlow 2.8.0 has no oneDNN bf16 rewrite'),
    (ZEN4, '2.21.0', {'TF_ENABLE_ONEDNN_OPTS': '0'}, 'fp32', 'auto: oneDNN is off (TF_ENABLE_ONEDNN_OPTS=0)'),
    (NO_FLAGS, '2.21.0', {}, 'fp32', 'auto: CPU instruction sets unknown'),
])
def test_auto_chooses_by_cpu_and_tensorflow(tmp_path, text, tf_version, environ, expected, reason):
    info = info_for(tmp_path, text, tf_version, environ)
    precision, why = cpu.choose_precision('auto', info)
    assert precision == expected and why.startswith(reason), why


def test_asked_for_wins_and_default_comes_from_the_environment(tmp_path):
    avx2 = info_for(tmp_path, EPYC_AVX2)
    assert cpu.choose_precision('bf16', avx2) == ('bf16', 'asked for')
    assert cpu.choose_precision('fp32', info_for(tmp_path, ZEN4)) == ('fp32', 'asked for')
    assert cpu.default_precision({}) == 'auto'
    assert cpu.default_precision({'ROADSEG_PRECISION': 'BF16'}) == 'bf16'
    assert cpu.default_precision({'ROADSEG_PRECISION': 'int4'}) == 'auto'


def test_help_shows_precision(capsys):
    with pytest.raises(SystemExit):
        run_cli('--help')
    out = capsys.readouterr().out
    assert '--precision {auto,fp32,bf16,int8}' in out and 'the same as --precision bf16' in out


def test_bf16_flag_conflicting_with_precision_is_one_error(capsys):
    assert run_cli('--bf16', '--precision', 'fp32', '--epochs', '1') == 2
    assert error_line(capsys) == 'error: --bf16 conflicts with --precision fp32'
    assert run_cli('--export', 'runs/x', '--precision', 'fp32') == 2
    assert error_line(capsys) == 'error: --precision does not apply to --export; it is for training, --resume, ' \
                                 '--evaluate, --video, --predict'


def _train(tiny_vgg_dir, runs, *flags):
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--runs-dir', runs, '--epochs', 1,
                   '--batch-size', 3, *(TINY_SHAPE + list(flags))) == 0
    (run,) = [p for p in runs.iterdir()]
    return str(run), json.load(open(os.path.join(str(run), 'config.json')))


def test_training_records_and_prints_the_choice(tiny_vgg_dir, tmp_path, capsys, monkeypatch):
    """auto on an AVX2 CPU (a faked cpuinfo): the CPU line says fp32 and why; config.json records both."""
    monkeypatch.setenv('ROADSEG_PRECISION', 'auto')
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text(EPYC_AVX2)
    monkeypatch.setenv(cpu.CPUINFO_ENV, str(cpuinfo))
    run, config = _train(tiny_vgg_dir, tmp_path / 'runs')
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith('CPU: AMD EPYC, ') and first.endswith(
        'precision fp32 (auto: this CPU has no AVX512-BF16 or AMX-BF16)'), first
    assert config['precision'] == 'auto' and config['bf16'] is False


@pytest.mark.skipif(not HAS_BF16_REWRITE, reason='TensorFlow without the oneDNN bf16 rewrite (TF 1.15)')
def test_bf16_synonym_trains_and_evaluates_in_bf16(tiny_vgg_dir, tmp_path):
    run, config = _train(tiny_vgg_dir, tmp_path, '--bf16')
    assert config['precision'] == 'bf16' and config['bf16'] is True
    assert run_cli('--evaluate', run, '--data-dir', SAMPLE, '--precision', 'fp32') == 0
    metrics = json.load(open(os.path.join(run, 'evaluation_best_fp32', 'metrics.json')))
    assert metrics['precision'] == 'fp32' and metrics['bf16'] is False
    assert run_cli('--evaluate', run, '--data-dir', SAMPLE, '--bf16') == 0
    bf16 = json.load(open(os.path.join(run, 'evaluation_best_bf16', 'metrics.json')))
    assert bf16['precision'] == 'bf16' and bf16['bf16'] is True
    kept = kept_entry(run)
    # the model trained in bf16 scores in bf16 about as its own validation did, and in fp32 close to that
    # (MaxF1 sweeps the thresholds: bf16's rounding moves it little where the fixed threshold's IoU could jump)
    assert bf16['overall']['max_f1'] == pytest.approx(kept['val_max_f1'], abs=0.02)
    assert abs(metrics['overall']['max_f1'] - bf16['overall']['max_f1']) < 0.02


def test_segmenter_follows_the_rule(tiny_run, monkeypatch, tmp_path):
    """Segmenter's default is auto (fp32 on an AVX2 CPU; bf16 on Zen 4 where TensorFlow has the rewrite); bf16=True
    stays the old spelling of precision='bf16'."""
    monkeypatch.setenv('ROADSEG_PRECISION', 'auto')
    for name, text in (('avx2', EPYC_AVX2), ('zen4', ZEN4)):
        (tmp_path / name).write_text(text)
    monkeypatch.setenv(cpu.CPUINFO_ENV, str(tmp_path / 'avx2'))
    with Segmenter(tiny_run, backend='tensorflow') as model:
        assert (model.precision, model.precision_reason) == ('fp32', 'auto: this CPU has no AVX512-BF16 or AMX-BF16')
    monkeypatch.setenv(cpu.CPUINFO_ENV, str(tmp_path / 'zen4'))
    with Segmenter(tiny_run, backend='tensorflow') as model:
        assert (model.precision, model.precision_reason) == (
            ('bf16', 'auto: this CPU has avx512_bf16 and TensorFlow {} has oneDNN'.format(tf.__version__))
            if HAS_BF16_REWRITE else
            ('fp32', 'auto: TensorFlow {} has no oneDNN bf16 rewrite (2.9+)'.format(tf.__version__)))
    with Segmenter(tiny_run, backend='tensorflow', precision='fp32') as model:
        assert (model.precision, model.precision_reason) == ('fp32', 'asked for')
    if HAS_BF16_REWRITE:
        with Segmenter(tiny_run, backend='tensorflow', bf16=True) as model:
            assert model.precision == 'bf16'
    monkeypatch.setenv(cpu.CPUINFO_ENV, str(tmp_path / 'none'))  # unreadable: instruction sets unknown
    with Segmenter(tiny_run, backend='tensorflow') as model:
        assert (model.precision, model.precision_reason) == ('fp32', 'auto: CPU instruction sets unknown')


def test_tf1_rejects_asked_bf16_but_auto_trains(tiny_vgg_dir, tmp_path, capsys, monkeypatch):
    """Where TensorFlow has no bf16 rewrite (1.15), --precision bf16 is one error line, auto is fp32."""
    if HAS_BF16_REWRITE:
        pytest.skip('this TensorFlow has the bf16 rewrite')
    assert run_cli('--precision', 'bf16', '--epochs', '1', '--data-dir', SAMPLE) == 2
    assert 'error: --precision bf16: bf16 mixed precision needs TensorFlow 2.9' in error_line(capsys)
    monkeypatch.setenv('ROADSEG_PRECISION', 'auto')
    run, config = _train(tiny_vgg_dir, tmp_path)
    assert config['precision'] == 'auto' and config['bf16'] is False

"""Training recipes: learning-rate schedules, frozen encoder blocks, half-size epochs, test-time flips."""
import json
import math
import os
import shutil

import numpy as np
import pytest

from conftest import SAMPLE, TINY_SHAPE, error_line, road_test_images, run_cli
from roadseg.model import prediction
from roadseg.model.names import IMAGE_INPUT
from roadseg.runs import FROZEN
from roadseg.serving.inference import Segmenter
from roadseg.system.tfcompat import tf
from roadseg.training import schedule
from roadseg.training.train import recipe_line


def test_schedules_by_hand():
    poly = schedule.learning_rate_at('poly', 1e-3)
    assert poly(0.0) == pytest.approx(1e-3) and poly(0.5) == pytest.approx(1e-3 * 0.5 ** 0.9) and poly(1.0) == 0
    cosine = schedule.learning_rate_at('cosine', 2e-4, warmup=0.1)
    assert cosine(0.0) == pytest.approx(2e-5) and cosine(0.05) == pytest.approx(2e-4 * 0.55)
    assert cosine(0.1) == pytest.approx(2e-4) and cosine(0.55) == pytest.approx(1e-4)
    assert cosine(0.999) < 1e-8
    constant = schedule.learning_rate_at('constant', 3e-4, warmup=0.5)
    assert constant(0.25) == pytest.approx(3e-4 * 0.55) and constant(0.75) == 3e-4
    with pytest.raises(ValueError):
        schedule.learning_rate_at('step', 1e-3)
    twice = schedule.restarted_at(poly, 0.25)  # --half-size-epochs 1 of --epochs 4
    assert twice(0.0) == pytest.approx(1e-3) and twice(0.125) == pytest.approx(1e-3 * 0.5 ** 0.9)
    assert twice(0.25) == pytest.approx(1e-3) and twice(0.625) == pytest.approx(1e-3 * 0.5 ** 0.9)
    with pytest.raises(ValueError):
        schedule.restarted_at(poly, 1.0)


def test_bad_warmup_is_one_error(capsys):
    assert run_cli('--warmup', '1.5', '--epochs', '1') == 2
    assert error_line(capsys) == 'error: --warmup is a fraction of the run in [0, 1), got 1.5'


def test_train_nn_feeds_the_scheduled_rate():
    """main.train_nn with a callable rate: each step gets the rate at its progress through the run."""
    import main
    fed = []

    class Batches:
        def __call__(self, batch_size):
            return iter([(None, None)] * 4)

        def num_batches(self, batch_size):
            return 4

    class Session:
        def run(self, fetches, feed):
            fed.append(feed['lr'])
            return None, 0.5

    main.train_nn(Session(), 2, 1, Batches(), 'op', 'loss', 'x', 'y', 'kp', 'lr',
                  learning_rate_value=lambda t: t)
    assert fed == [0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875]


def test_frozen_blocks_keep_their_weights_and_are_saved(tiny_vgg_dir, tmp_path, capsys):
    """--freeze-blocks 2: conv1/conv2 do not move, conv3 does, best/ still holds every weight."""
    runs = tmp_path / 'runs'
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--runs-dir', runs, '--epochs', 2,
                   '--batch-size', 3, '--freeze-blocks', 2, '--lr-schedule', 'cosine', '--warmup', 0.2,
                   '--learning-rate', 1e-3, *TINY_SHAPE) == 0
    assert 'Recipe: learning rate cosine 0.001, warm-up over 20% of the run, conv1..conv2 frozen' in \
        capsys.readouterr().out
    (run,) = [str(p) for p in runs.iterdir()]
    config = json.load(open(os.path.join(run, 'config.json')))
    assert (config['freeze_blocks'], config['lr_schedule'], config['warmup']) == (2, 'cosine', 0.2)
    trained = dict((name, tf.train.load_variable(tf.train.latest_checkpoint(os.path.join(run, 'best')), name))
                   for name, _ in tf.train.list_variables(tf.train.latest_checkpoint(os.path.join(run, 'best'))))
    start = {name: tf.train.load_variable(os.path.join(tiny_vgg_dir, 'vgg', 'variables', 'variables'), name)
             for name in ('conv1_1/filter', 'conv2_2/filter', 'conv3_1/filter')}
    assert np.array_equal(trained['conv1_1/filter'], start['conv1_1/filter'])
    assert np.array_equal(trained['conv2_2/filter'], start['conv2_2/filter'])
    assert not np.array_equal(trained['conv3_1/filter'], start['conv3_1/filter'])
    last = tf.train.latest_checkpoint(os.path.join(run, 'last'))
    assert not any(name.startswith('conv1_1/filter/Adam') for name, _ in tf.train.list_variables(last))


def test_the_recipe_line_names_the_restart_only_of_a_scheduled_rate():
    """Half-size epochs announce the schedule run over each part only where the rate has a schedule; a constant
    rate with nothing else to say gives no line."""
    config = dict(half_size_epochs=3, epochs=8, image_shape=[128, 128], lr_schedule='poly', warmup=0.0,
                  freeze_blocks=0)
    assert recipe_line(config, 1e-3, scheduled=True) == 'Recipe: learning rate poly 0.001, epochs 1-3 at 64x64 ' \
        'and epochs 4-8 at 128x128, the schedule over each'
    constant = dict(config, lr_schedule='constant')
    assert recipe_line(constant, 1e-3, scheduled=False) == 'Recipe: learning rate constant 0.001, epochs 1-3 at ' \
        '64x64 and epochs 4-8 at 128x128'
    assert recipe_line(dict(constant, half_size_epochs=0), 1e-3, scheduled=False) is None


def test_half_size_epochs_train_first_at_half_the_shape(tiny_vgg_dir, tmp_path, capsys):
    """--half-size-epochs 1: announced, recorded, two epochs trained, the kept model frozen at 64x192; a resume
    that leaves no full-size epoch is refused."""
    runs = tmp_path / 'runs'
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--runs-dir', runs, '--epochs', 2,
                   '--batch-size', 3, '--half-size-epochs', 1, *TINY_SHAPE) == 0
    assert 'Recipe: learning rate poly 0.0003, warm-up over 5% of the run, epoch 1 at 32x96 and epoch 2 at 64x192, ' \
        'the schedule over each' in capsys.readouterr().out
    (run,) = [str(p) for p in runs.iterdir()]
    config = json.load(open(os.path.join(run, 'config.json')))
    assert config['half_size_epochs'] == 1
    with open(os.path.join(run, 'history.jsonl')) as f:
        assert [json.loads(line)['epoch'] for line in f] == [1, 2]
    graph_def = tf.GraphDef.FromString(open(os.path.join(run, 'best', FROZEN), 'rb').read())
    (image_input,) = [n for n in graph_def.node if n.name == IMAGE_INPUT]
    assert [d.size for d in image_input.attr['shape'].shape.dim] == [-1, 64, 192, 3]
    partial = os.path.join(str(tmp_path), 'copy.partial')
    shutil.copytree(run, partial)
    assert run_cli('--resume', partial, '--epochs', 1) == 2
    assert error_line(capsys) == 'error: --epochs 1 must be more than the run\'s 1 half-size epochs ({})'.format(
        os.path.join(partial, 'config.json'))


@pytest.mark.parametrize('flags, message', [
    (['--data-dir', SAMPLE, '--half-size-epochs', -1], '--half-size-epochs must be 0 or more, got -1'),
    (['--data-dir', SAMPLE, '--half-size-epochs', 2, '--epochs', 2],
     '--half-size-epochs 2 must be fewer than --epochs (2)'),
    (['--data-dir', SAMPLE, '--half-size-epochs', 1, '--image-shape', 96, 128],
     '--half-size-epochs trains at half --image-shape, so that must be multiples of 64; got 96 128'),
])
def test_half_size_epochs_that_cannot_work(flags, message, tmp_path, capsys):
    assert run_cli('--runs-dir', tmp_path, *flags) == 2
    assert error_line(capsys) == 'error: ' + message
    assert not os.listdir(str(tmp_path))


def test_flip_averages_with_the_mirror_image(learned_run, road_data):
    """On a scene whose mirror image the model sees differently (probabilities differ by > 0.1 somewhere)."""
    image = road_test_images(road_data)[0][1]
    with Segmenter(learned_run, backend='tensorflow') as plain, Segmenter(learned_run, backend='tensorflow',
                                                                          flip=True) as flip:
        straight, mirrored = plain.predict(image)[0], plain.predict(image[:, ::-1].copy())[0][:, ::-1]
        assert np.abs(straight - mirrored).max() > 0.1
        assert np.allclose(flip.predict(image)[0], (straight + mirrored) / 2, atol=1e-5)


@pytest.mark.parametrize('flips, views', [('none', 1), ('h', 2), ('hv', 4), ('d8', 8)])
def test_flips_average_the_mirror_images_predictions(flips, views):
    """A model that sees position (it scales each pixel by a ramp across the image) under each mode's mirror
    images: the average, by hand, of the ramp mirrored, upside down and transposed."""
    ramp = np.arange(12, dtype=np.float64).reshape(3, 4)[None, :, :, None]  # (1, 3, 4, 1): rows 0-3, 4-7, 8-11
    ramp = np.pad(ramp, ((0, 0), (0, 1), (0, 0), (0, 0)))  # (1, 4, 4, 1): square, for d8
    batch = np.random.RandomState(0).rand(2, 4, 4, 3)
    calls = []

    def model(images):
        calls.append(len(images))
        return images[..., :1] * ramp
    averaged = prediction.averaged_over_flips(model, flips)(batch)
    r = ramp[0, ..., 0]
    views_of_ramp = {'none': [r], 'h': [r, r[:, ::-1]], 'hv': [r, r[:, ::-1], r[::-1], r[::-1, ::-1]]}
    views_of_ramp['d8'] = views_of_ramp['hv'] + [v.T for v in views_of_ramp['hv']]
    expected = batch[..., :1] * np.mean(views_of_ramp[flips], 0)[None, :, :, None]
    assert calls == [2 * views] and np.allclose(averaged, expected)


def test_flip_d8_of_a_wide_image_is_one_error(tiny_run, tmp_path, capsys):
    """d8 transposes the network's input: training and --evaluate refuse it for a wide one, writing nothing."""
    assert run_cli('--runs-dir', tmp_path, '--data-dir', SAMPLE, '--flip', 'd8', '--image-shape', 64, 128) == 2
    assert error_line(capsys) == ("error: --flip d8 swaps rows and columns, so the network's input must be square; "
                                  "--image-shape is 64x128 (use --flip hv)")
    assert not os.listdir(str(tmp_path))
    assert run_cli('--evaluate', tiny_run, '--data-dir', SAMPLE, '--flip', 'd8') == 2
    assert error_line(capsys) == ("error: --flip d8 swaps rows and columns, so the network's input must be square; "
                                  "{}'s image_shape is 64x192 (use --flip hv)".format(os.path.join(tiny_run,
                                                                                                   'config.json')))
    assert not os.path.exists(os.path.join(tiny_run, 'evaluation_best_flip_d8'))


def test_evaluate_flip_writes_its_own_folder(tiny_run):
    assert run_cli('--evaluate', tiny_run, '--data-dir', SAMPLE) == 0
    plain_path = os.path.join(tiny_run, 'evaluation_best', 'metrics.json')
    plain_bytes = open(plain_path, 'rb').read()
    assert run_cli('--evaluate', tiny_run, '--data-dir', SAMPLE, '--flip') == 0
    metrics = json.load(open(os.path.join(tiny_run, 'evaluation_best_flip', 'metrics.json')))
    assert metrics['flip_tta'] is True and math.isfinite(metrics['overall']['max_f1'])
    assert open(plain_path, 'rb').read() == plain_bytes, 'the plain report is left as it was'
    assert metrics['overall'] != json.loads(plain_bytes)['overall'], 'the mirrored predictions were averaged in'


def test_defaults_are_the_poly_recipe_and_the_sample_keeps_its_own(tmp_path, monkeypatch, capsys):
    """On the full data `python main.py` trains 40 epochs of batch 4, poly from 3e-4 after a 5% warm-up; without
    it, the bundled sample's own recipe, printed as flags."""
    from roadseg import cli
    full = cli.training_settings(cli.build_parser().parse_args(['--data-dir', SAMPLE]))
    assert {k: full[k] for k in ('epochs', 'batch_size', 'learning_rate', 'lr_schedule', 'warmup')} == \
        dict(epochs=40, batch_size=4, learning_rate=3e-4, lr_schedule='poly', warmup=0.05)
    monkeypatch.chdir(tmp_path)  # no data/data_road here
    sample = cli.training_settings(cli.build_parser().parse_args(['--epochs', '2']))
    assert {k: sample[k] for k in ('epochs', 'batch_size', 'repeat', 'learning_rate', 'lr_schedule', 'warmup')} == \
        dict(epochs=2, batch_size=2, repeat=4, learning_rate=3e-4, lr_schedule='poly', warmup=0.0)
    assert capsys.readouterr().out.rstrip().endswith(', with --batch-size 2 --learning-rate 0.0003 --lr-schedule '
                                                     'poly --repeat 4 --warmup 0')

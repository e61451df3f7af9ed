"""Multi-label runs (roadseg/task/labels.py): the folder format and its errors, the loss and the metrics by hand,
a tiny trained run's predictions, exports and ONNX backend; and the task of any run, old ones included."""
import json
import math
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE, TINY_SHAPE, error_line, kept_entry, run_cli
from roadseg import task
from roadseg.cli import settings as cli_settings
from roadseg.cli.flags import build_parser
from roadseg.data.datasets import IGNORE, get_dataset, positive_weights
from roadseg.evaluation import int8 as int8_accuracy, palette
from roadseg.evaluation.evaluate import evaluate_run
from roadseg.model.freeze import read_frozen
from roadseg.runs import TrainedRun
from roadseg.serving.export import export_run
from roadseg.serving.inference import Segmenter
from roadseg.serving.predict import predict_folder
from roadseg.system.files import InputError
from roadseg.system.tfcompat import tf

NAMES = ['car', 'person']


def save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)


def label_tree(root, spec=None, n=5, size=(4, 6)):
    """images/0..n-1.png with masks/car/ (left half member) and masks/person/ (top row member, 128 at [1, 0])."""
    root = str(root)
    for i in range(n):
        save(os.path.join(root, 'images', '{}.png'.format(i)), np.full(size + (3,), 10 * i))
        car, person = np.zeros(size), np.zeros(size)
        car[:, :size[1] // 2] = 255
        person[0] = 1
        person[1, 0] = 128
        save(os.path.join(root, 'masks', 'car', '{}.png'.format(i)), car)
        save(os.path.join(root, 'masks', 'person', '{}.png'.format(i)), person)
    with open(os.path.join(root, 'classes.json'), 'w') as f:
        json.dump(spec or {'multi_label': True, 'names': NAMES, 'ignore': [128]}, f)
    return root


def test_folder_format(tmp_path):
    ds = get_dataset(None, label_tree(tmp_path))
    assert ds.name == 'folder' and ds.multi_label and ds.class_names == NAMES and len(ds.colors) == 2
    assert [os.path.basename(s.image) for s in ds.samples('val')] == ['4.png']
    assert len(ds.samples('train')) == 4 and ds.samples('test') == []
    image, label = ds.load(ds.samples('val')[0])
    assert image.shape == (4, 6, 3) and label.shape == (4, 6, 2) and label.dtype == np.uint8
    assert (label[:, :3, 0] == 1).all() and (label[:, 3:, 0] == 0).all()
    assert (label[0, :, 1] == 1).all() and label[1, 0, 1] == IGNORE and (label[2:, :, 1] == 0).all()
    assert isinstance(task.for_dataset(ds), task.Labels)
    # pos_weight: car 12 of 24 member -> 1; person 6 member, 17 not (one ignored) -> 17/6
    np.testing.assert_allclose(positive_weights(ds), [1.0, 17 / 6])


def test_class_weights_only_of_the_tasks_own_kind(tmp_path, capsys):
    ds = get_dataset(None, label_tree(tmp_path))
    labels = task.for_dataset(ds)
    assert labels.class_weights(None, ds) is None
    np.testing.assert_allclose(labels.class_weights('balanced', ds), [1.0, 17 / 6])
    assert capsys.readouterr().out == 'Positive weights (negatives / positives per label): car 1.000, person 2.833\n'
    with pytest.raises(InputError, match='^--class-weights median does not apply to a labels run$'):
        labels.class_weights('median', ds)
    with pytest.raises(InputError, match='^--class-weights balanced does not apply to a classes run$'):
        task.Classes(NAMES, [(1, 2, 3), (4, 5, 6)]).class_weights('balanced', ds)


@pytest.mark.parametrize('change,message', [
    ('size', r'mask .*person.3\.png is 7x4 but its image .*3\.png is 6x4'),
    ('stray', r'masks.bike: masks of a label not in .*classes\.json'),
    ('value', r'person.\d\.png: mask value 128 \(at x=0, y=1\) is not a declared class value'),
    ('missing', r'image .*1\.png has no mask .*car.1\.png \(or set "missing": "negative"'),
])
def test_bad_input_is_one_error_line_naming_the_file(tmp_path, tiny_vgg_dir, capsys, change, message):
    root = label_tree(tmp_path / 'data')
    if change == 'size':
        save(os.path.join(root, 'masks', 'person', '3.png'), np.zeros((4, 7)))
    elif change == 'stray':
        save(os.path.join(root, 'masks', 'bike', '0.png'), np.zeros((4, 6)))
    elif change == 'value':  # 128 is no longer declared: only 1 and 255 are member values
        with open(os.path.join(root, 'classes.json'), 'w') as f:
            json.dump({'multi_label': True, 'names': NAMES, 'values': [1, 255]}, f)
    else:
        os.remove(os.path.join(root, 'masks', 'car', '1.png'))
    assert run_cli('--data-dir', root, '--vgg-dir', tiny_vgg_dir, '--runs-dir', tmp_path / 'runs', '--epochs', 1,
                   '--image-shape', 32, 32) == 2
    line = error_line(capsys)
    assert re.search(message, line), line
    assert not os.path.exists(str(tmp_path / 'runs')) or not os.listdir(str(tmp_path / 'runs'))


def test_missing_mask_as_negative(tmp_path):
    root = label_tree(tmp_path, {'multi_label': True, 'names': NAMES, 'ignore': [128], 'missing': 'negative'})
    os.remove(os.path.join(root, 'masks', 'car', '4.png'))
    ds = get_dataset('folder', root)
    label = ds.load(ds.samples('val')[0])[1]
    assert (label[..., 0] == 0).all() and (label[0, :, 1] == 1).all()


def three_by_three():
    """(logits, targets, loss mask), each (1, 3, 3, 2), of the two-label example: logits 0 (p = 1/2), ln 3
    (p = 3/4), -ln 3 (p = 1/4); an all-zero target row; pixel (1, 2) don't care, label 1 of pixel (2, 1) left out."""
    l3 = math.log(3)
    logits = np.array([[[0, l3], [l3, -l3], [-l3, 0]],
                       [[l3, l3], [0, 0], [-l3, -l3]],
                       [[l3, 0], [-l3, l3], [0, -l3]]], np.float32)[None]
    targets = np.array([[[1, 0], [1, 1], [0, 0]],
                        [[0, 1], [1, 0], [1, 0]],
                        [[1, 1], [0, 0], [0, 1]]], np.float32)[None]
    mask = np.ones_like(targets)
    mask[0, 1, 2, :] = 0      # a don't-care pixel
    mask[0, 2, 1, 1] = 0      # one label of a pixel left out
    return logits, targets, mask


def test_loss_by_hand_on_a_3x3_two_label_example():
    """Logits 0 (p = 1/2), ln 3 (p = 3/4), -ln 3 (p = 1/4); an all-zero target row is a valid target; pixels and
    labels the loss mask drops count nowhere."""
    logits, targets, mask = three_by_three()
    ln2, ln4, ln43 = math.log(2), math.log(4), math.log(4 / 3)
    # per kept (pixel, label), row by row: -log p for a member, -log(1 - p) for a non-member
    kept = [ln2, ln4, ln43, ln4, ln43, ln2,
            ln4, ln43, ln2, ln2,
            ln43, ln2, ln43, ln2, ln4]
    with tf.Graph().as_default(), tf.Session() as sess:
        labels = task.Labels(NAMES, [(0, 0, 0)] * 2)
        loss = labels.loss(tf.constant(logits), tf.constant(targets), tf.constant(mask))
        weighted = labels.loss(tf.constant(logits), tf.constant(targets), tf.constant(mask), [2.0, 1.0])
        got, got_weighted = sess.run([loss, weighted])
    assert got == pytest.approx(sum(kept) / 15, rel=1e-6)
    # pos_weight 2 on car doubles its member terms: (0,0) ln2, (0,1) ln 4/3, (1,1) ln2, (2,0) ln 4/3
    assert got_weighted == pytest.approx((sum(kept) + 2 * ln2 + 2 * ln43) / 15, rel=1e-6)


def test_dice_loss_by_hand_on_the_3x3_example():
    """--dice adds 1 - mean over labels of (2 sum(p z) + 1) / (sum(p + z) + 1) over the kept cells of the 3x3
    example above (p = 1/2, 3/4, 1/4)."""
    logits, targets, mask = three_by_three()
    with tf.Graph().as_default(), tf.Session() as sess:
        args = tf.constant(logits), tf.constant(targets), tf.constant(mask)
        bce, both = sess.run([task.Labels(NAMES, [(0, 0, 0)] * 2).loss(*args),
                              task.Labels(NAMES, [(0, 0, 0)] * 2, dice=True).loss(*args)])
    # car, kept cells all but (1, 2): sum p z = .5 + .75 + .5 + .75; sum p = 4.25; sum z = 4
    # person, kept all but (1, 2), (2, 1): sum p z = .25 + .75 + .5 + .25; sum p = 3.5; sum z = 4
    car, person = (2 * 2.5 + 1) / (4.25 + 4 + 1), (2 * 1.75 + 1) / (3.5 + 4 + 1)
    assert both - bce == pytest.approx(1 - (car + person) / 2, rel=1e-5)


def test_shapes_recipe_and_the_flags_that_win_over_it(capsys):
    parse = lambda *flags: cli_settings.training_settings(build_parser().parse_args(
        ['--dataset', 'shapes', '--multi-label', *flags]))
    recipe = parse()
    assert {k: recipe[k] for k in cli_settings.SHAPES_RECIPE} == cli_settings.SHAPES_RECIPE
    assert recipe['no_augment'] is True and parse('--augment')['no_augment'] is False
    assert (recipe['decoder'], recipe['ladder_stages']) == ('unet', 3)
    assert parse('--decoder', 'fcn8')['ladder_stages'] == 5, 'the recipe\'s ladder is its U-Net\'s'
    assert parse('--decoder', 'linknet', '--ladder-stages', '2')['ladder_stages'] == 2
    given = parse('--epochs', '5', '--l2-scale', '0')
    assert (given['epochs'], given['l2_scale'], given['decoder']) == (5, 0.0, 'unet')
    # the recipe's half-size epochs: its share (3 of 8) of the epochs given, none where the shape cannot halve
    assert [parse('--epochs', e)['half_size_epochs'] for e in ('2', '5', '16')] == [0, 1, 6]
    assert parse('--epochs', '16', '--half-size-epochs', '0')['half_size_epochs'] == 0
    capsys.readouterr()
    assert parse('--image-shape', '96', '96')['half_size_epochs'] == 0
    assert 'note: all epochs at 96x96: the shapes recipe trains 3 of 8 at half size only where --image-shape is a ' \
        'multiple of 64' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        build_parser().parse_args(['--augment', '--no-augment'])
    assert 'not allowed with argument' in error_line(capsys)


def test_dice_only_for_multi_label(tmp_path):
    with pytest.raises(InputError, match='--dice is for multi-label runs'):
        task.for_dataset(get_dataset('shapes', None, size=(32, 32), counts=(2, 1, 1)), dice=True)
    assert task.for_dataset(get_dataset('shapes', None, size=(32, 32), counts=(2, 1, 1), multi_label=True),
                            dice=True).dice


def test_metrics_by_hand():
    scores = task.Labels(NAMES, [(0, 0, 0)] * 2).scores()
    probs = np.zeros((1, 6, 2), np.float32)
    label = np.zeros((1, 6, 2), np.uint8)
    # car: members at 0.9 and 0.6, non-members at 0.4 and 0.7, one ignored pixel at 0.99
    probs[0, :5, 0] = [0.9, 0.6, 0.4, 0.7, 0.99]
    label[0, :5, 0] = [1, 1, 0, 0, IGNORE]
    # person: one member at 0.2 (missed at 0.5), the rest not at 0.1
    probs[0, :, 1] = [0.2, 0.1, 0.1, 0.1, 0.1, 0.1]
    label[0, 0, 1] = 1
    image_score = scores.add(probs, label)
    r = scores.results()
    assert image_score == pytest.approx((2 / 3 + 0) / 2)
    assert r['class_iou'] == pytest.approx([2 / 3, 0.0])
    assert r['class_precision'][0] == pytest.approx(2 / 3) and r['class_precision'][1] is None
    assert r['class_recall'] == pytest.approx([1.0, 0.0]) and r['class_f1'] == pytest.approx([0.8, 0.0])
    # car's sweep: F1 0.5 above 0.7, 0.8 down to 0.4, 2/3 below; AP: precision 1 up to recall 0.5, then 2/3
    assert r['class_max_f1'] == pytest.approx([0.8, 1.0])
    assert r['class_ap'] == pytest.approx([(6 + 5 * 2 / 3) / 11, 1.0])
    assert r['mean_iou'] == pytest.approx(1 / 3) and r['mean_max_f1'] == pytest.approx(0.9)
    assert r['class_pixels'] == [2, 1]
    # pixel 0 is the only overlap (car and person both members): car found there (0.9), person missed (0.2)
    assert r['class_overlap_recall'] == pytest.approx([1.0, 0.0]) and r['mean_overlap_recall'] == pytest.approx(0.5)
    labels = task.Labels(NAMES, [(0, 0, 0)] * 2)
    assert labels.keep_value(r) == pytest.approx(1 / 3)
    assert labels.key_metrics(r) == pytest.approx({'mean_iou': 100 / 3, 'iou_car': 200 / 3, 'iou_person': 0.0})


def test_overlap_recall_counts_only_pixels_with_two_labels():
    scores = task.Labels(NAMES, [(0, 0, 0)] * 2).scores()
    label = np.zeros((2, 2, 2), np.uint8)
    label[0, :, 0] = 1                      # car on the top row
    label[:, 0, 1] = 1                      # person on the left column: (0, 0) is the one overlap
    label[1, 1, 1] = IGNORE
    probs = np.where(label == 1, 0.8, 0.1).astype(np.float32)
    probs[0, 0, 1] = 0.3                    # person missed on the overlap, found alone at (1, 0)
    scores.add(probs, label)
    r = scores.results()
    assert r['class_overlap_recall'] == pytest.approx([1.0, 0.0])
    assert r['class_recall'] == pytest.approx([1.0, 0.5])
    empty = task.Labels(NAMES, [(0, 0, 0)] * 2).scores()
    empty.add(np.zeros((2, 2, 2), np.float32), np.zeros((2, 2, 2), np.uint8))
    assert empty.results()['class_overlap_recall'] == [None, None]
    assert empty.results()['mean_overlap_recall'] is None


def test_overlapping_labels_show_both_colours():
    image = np.zeros((8, 8, 3), np.uint8)
    masks = np.zeros((8, 8, 2), bool)
    masks[:, :6, 0] = masks[:, 2:, 1] = True
    out = palette.label_overlay(image, masks, [(200, 0, 0), (0, 0, 200)], stripe=1)
    overlap = out[:, 2:6].reshape(-1, 3).tolist()
    assert [100, 0, 0] in overlap and [0, 0, 100] in overlap, 'stripes of both colours where they overlap'
    assert (out[:, :2] == (100, 0, 0)).all() and (out[:, 6:] == (0, 0, 100)).all()


def test_binary_for_any_two_class_dataset(tmp_path):
    root = str(tmp_path)
    save(os.path.join(root, 'images', 'um_000000.png'), np.zeros((4, 6, 3)))
    save(os.path.join(root, 'masks', 'um_000000.png'), np.eye(4, 6))
    with open(os.path.join(root, 'classes.json'), 'w') as f:
        json.dump({'names': ['rest', 'lane'], 'indices': [0, 1]}, f)
    kind = task.for_dataset(get_dataset(None, root))
    assert isinstance(kind, task.Binary) and not kind.kitti and kind.legend() is not None
    assert kind.output_names('x/um_000000.png') == ['um_000000.png', 'um_000000_overlay.png']
    assert task.kitti().output_names('um_000000.png')[2] == 'um_road_000000.png'
    probs = np.zeros((2, 2, 2), np.float32)
    probs[0, 0] = [0.2, 0.8]
    painted = kind.paint(np.zeros((2, 2, 3), np.uint8), probs)
    assert painted[0, 0].tolist() == [int(0.5 * c) for c in kind.colors[1]] and not painted[1].any()


def test_tasks_of_configs_old_and_new():
    assert task.for_config({}, 'c').kitti, 'a run from before class names: KITTI road'
    old = task.for_config({'dataset': 'folder', 'class_names': ['a', 'b'], 'class_colors': [[0, 0, 0]] * 2}, 'c')
    assert type(old) is task.Classes, 'a two-class run from before the task key stays what it was'
    labels = task.Labels(NAMES, [(1, 2, 3), (4, 5, 6)])
    again = task.for_config(dict(labels.config(), dataset='shapes'), 'c')
    assert type(again) is task.Labels and again.class_names == NAMES and again.colors == labels.colors
    with pytest.raises(InputError, match='c: unknown task'):
        task.for_config({'task': 'boxes'}, 'c')


@pytest.fixture(scope='module')
def labels_run(tiny_vgg_dir, tmp_path_factory):
    """A finished multi-label run of the tiny FCN-8s (the shapes recipe otherwise) on 8 grey shapes images, 3 epochs
    of 4 passes at 1e-2, all at 64x64: enough for it to mark labels (validation mean IoU about 0.05), exported; 2
    selection images choose its kept epoch, as the recipe's 64 do."""
    runs = tmp_path_factory.mktemp('labels_runs')
    counts, cli_settings.SHAPES_IMAGES = cli_settings.SHAPES_IMAGES, (8, 4, 2, 2)
    try:
        assert run_cli('--dataset', 'shapes', '--multi-label', '--grayscale', '--vgg-dir', tiny_vgg_dir,
                       '--encoder-width', 1, '--decoder', 'fcn8', '--runs-dir', runs, '--epochs', 3, '--repeat', 4,
                       '--learning-rate', 1e-2, '--batch-size', 4, '--image-shape', 64, 64,
                       '--class-weights', 'balanced', '--half-size-epochs', 0) == 0
    finally:
        cli_settings.SHAPES_IMAGES = counts
    (run,) = [str(p) for p in runs.iterdir()]
    export_run(run)
    return run


def test_labels_run_records_its_task_and_predicts_masks(labels_run):
    with open(os.path.join(labels_run, 'config.json')) as f:
        config = json.load(f)
    assert config['task'] == 'labels' and config['class_names'][-1] == 'unknown'
    recipe = {k: config[k] for k in ('dice', 'no_augment', 'keep_prob', 'learning_rate', 'lr_schedule',
                                     'decoder', 'ladder_stages', 'half_size_epochs', 'flip')}
    # the shapes recipe's settings, but for those given (the fixture's learning rate, decoder, half-size epochs)
    assert recipe == dict(dice=True, no_augment=True, keep_prob=1.0, learning_rate=1e-2, lr_schedule='poly',
                          decoder='fcn8', ladder_stages=5, half_size_epochs=0, flip='d8')
    assert config['dataset_options'] == {'multi_label': True, 'grayscale': True, 'counts': [8, 4, 2, 2],
                                         'size': [64, 64], 'train_shapes': [4, 7]}
    with open(os.path.join(labels_run, 'history.jsonl')) as f:
        entry = json.loads(f.readline())
    assert entry['best'] and {'val_iou', 'val_f1', 'val_max_f1', 'val_ap', 'report_iou', 'report_ap'} <= set(entry)
    image = np.random.RandomState(0).randint(0, 255, (50, 70, 3)).astype(np.uint8)
    with Segmenter(labels_run, backend='tensorflow') as tf_model, \
            Segmenter(labels_run, backend='onnxruntime', threads=1) as ort_model:
        probs, masks = tf_model.predict(image)
        ort_probs, ort_masks = ort_model.predict(image)
        batch_probs, batch_masks = tf_model.predict(np.stack([image, image]))
    assert probs.shape == masks.shape == (50, 70, 5) and masks.dtype == bool
    assert 0 <= probs.min() and probs.max() <= 1 and (masks == (probs > 0.5)).all()
    assert np.abs(ort_probs - probs).max() < 1e-4
    assert batch_probs.shape == batch_masks.shape == (2, 50, 70, 5)


def test_labels_exports_give_probabilities_and_boolean_masks(labels_run):
    export = os.path.join(labels_run, 'export')
    images = np.random.RandomState(1).randint(0, 255, (2, 40, 56, 3)).astype(np.uint8)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        meta = tf.saved_model.loader.load(sess, ['serve'], os.path.join(export, 'saved_model'))
        signature = meta.signature_def['serving_default']
        probs, masks = sess.run([signature.outputs[k].name for k in ('probabilities', 'masks')],
                                {signature.inputs['images'].name: images})
    assert probs.shape == masks.shape == (2, 40, 56, 5) and masks.dtype == bool
    assert (masks == (probs > 0.5)).all()
    import onnxruntime
    session = onnxruntime.InferenceSession(os.path.join(export, 'model.onnx'), providers=['CPUExecutionProvider'])
    assert [o.name for o in session.get_outputs()] == ['probabilities', 'masks']
    batch = np.random.RandomState(2).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    onnx_probs, onnx_masks = session.run(None, {'image_input': batch})
    assert onnx_probs.shape == onnx_masks.shape == (1, 64, 64, 5) and onnx_masks.dtype == bool
    assert (onnx_masks == (onnx_probs > 0.5)).all() and onnx_masks.any()
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:  # the frozen graph, in TensorFlow
        tf.import_graph_def(read_frozen(os.path.join(export, 'frozen_inference.pb')), name='')
        frozen_probs = sess.run('probabilities:0', {'image_input:0': batch})
    assert np.abs(onnx_probs - frozen_probs).max() < 1e-4


def test_labels_prediction_files_and_evaluation(labels_run, tmp_path):
    in_dir = str(tmp_path / 'in')
    save(os.path.join(in_dir, 'a.png'), np.random.RandomState(3).randint(0, 255, (30, 40, 3)))
    out = str(tmp_path / 'out')
    assert predict_folder(labels_run, in_dir, out) == 0
    names = ['circle', 'triangle', 'square', 'pentagon', 'unknown']
    assert sorted(os.listdir(out)) == sorted(names + ['a_overlay.png', 'legend.png'])
    with Segmenter(labels_run) as model:
        _, masks = model.predict(np.asarray(Image.open(os.path.join(in_dir, 'a.png'))))
    for c, name in enumerate(names):
        written = np.asarray(Image.open(os.path.join(out, name, 'a.png')))
        assert written.shape == (30, 40) and set(np.unique(written)) <= {0, 255}
        assert ((written == 255) == masks[..., c]).all()
    results = evaluate_run(labels_run, out_dir=str(tmp_path / 'evaluation'))
    assert len(results['class_max_f1']) == 5
    assert os.path.exists(str(tmp_path / 'evaluation' / 'class_iou.png'))
    assert any(n.startswith('worst_') for n in os.listdir(str(tmp_path / 'evaluation')))
    # --evaluate scores the validation split (the report split: the selection split chose the kept epoch) as the
    # run predicts, averaged over its d8 flips: the numbers training wrote for its kept model at the end
    with open(os.path.join(labels_run, 'best', 'evaluation', 'metrics.json')) as f:
        at_the_end = json.load(f)
    kept = kept_entry(labels_run)
    assert at_the_end['flips'] == results['flips'] == 'd8' and at_the_end['epoch'] == kept['epoch']
    assert results['mean_iou'] == pytest.approx(at_the_end['mean_iou'], abs=1e-3)
    # one prediction per image, as the epochs were scored
    single = evaluate_run(labels_run, out_dir=str(tmp_path / 'single'), flip='none')
    assert kept['report_iou'] > 0 and single['mean_iou'] == pytest.approx(kept['report_iou'], abs=1e-3)
    assert single['flips'] == 'none' and single['mean_iou'] != results['mean_iou']


def test_multi_label_run_where_softmax_is_assumed(labels_run, tiny_vgg_dir, tmp_path, capsys):
    assert run_cli('--data-dir', SAMPLE, '--vgg-dir', tiny_vgg_dir, '--runs-dir', tmp_path, '--epochs', 1,
                   '--init-from', labels_run, *TINY_SHAPE) == 2
    line = error_line(capsys)
    assert labels_run in line and 'a labels run; this run is binary' in line


def test_old_run_without_task_key_still_evaluates(tiny_run, tmp_path):
    run = str(tmp_path / 'run')
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns('test_images', 'logs', 'export*', 'evaluation*'))
    path = os.path.join(run, 'config.json')
    with open(path) as f:
        config = json.load(f)
    for key in ('task', 'class_names', 'class_colors', 'num_classes'):
        config.pop(key, None)
    with open(path, 'w') as f:
        json.dump(config, f)
    results = evaluate_run(run, out_dir=str(tmp_path / 'evaluation'))
    same = evaluate_run(tiny_run, out_dir=str(tmp_path / 'evaluation_with_task'))  # the run as it was written
    for key in ('max_f1', 'average_precision', 'iou'):
        assert results['overall'][key] == pytest.approx(same['overall'][key], abs=1e-9)
    assert os.path.exists(str(tmp_path / 'evaluation' / 'pr_curve.png'))


def test_shapes_multi_label():
    ds = get_dataset('shapes', None, size=(64, 64), counts=(24, 2, 1), multi_label=True)
    assert ds.class_names == ['circle', 'triangle', 'square', 'pentagon', 'unknown'] and len(ds.colors) == 5
    labels = [ds.load(s)[1] for s in ds.samples('train')]
    assert all(label.shape == (64, 64, 5) and set(np.unique(label)) <= {0, 1} for label in labels)
    assert all((label.sum(axis=(0, 1)) > 0).any() for label in labels)
    assert sum((label.sum(axis=-1) >= 2).any() for label in labels) >= 6, 'shapes overlap in many images'
    assert all(any(label[..., c].any() for label in labels) for c in range(5)), 'every label occurs'
    image, label = ds.load(ds.samples('train')[3])
    again = ds.load(ds.samples('train')[3])
    assert np.array_equal(again[0], image) and np.array_equal(again[1], label)
    grey = get_dataset('shapes', None, size=(64, 64), counts=(24, 2, 1), multi_label=True, grayscale=True)
    grey_image, grey_label = grey.load(grey.samples('train')[3])
    assert np.array_equal(grey_label, label) and (grey_image == grey_image[..., :1]).all()


def test_shapes_unknown_blob_is_concave():
    """An "unknown" blob never reads as one of the four kinds: every blob outline turns both ways (concave),
    every triangle, square and pentagon one way only (convex)."""
    from roadseg.data.datasets.shapes import CORNERS, UNKNOWN, _outline

    def turns(points):
        edges = np.roll(np.asarray(points), -1, axis=0) - np.asarray(points)
        following = np.roll(edges, -1, axis=0)
        return set(np.sign(edges[:, 0] * following[:, 1] - edges[:, 1] * following[:, 0]).astype(int))

    rng = np.random.RandomState(0)
    for _ in range(200):
        start = rng.uniform(0, 2 * np.pi)
        assert turns(_outline(UNKNOWN, 30, 64, 64, start, rng)) == {-1, 1}
        assert all(len(turns(_outline(cls, 30, 64, 64, start, rng))) == 1 for cls in CORNERS)
    assert _outline(1, 30, 64, 64, 0.0, rng) is None  # a circle is drawn as an ellipse


def _box5(image):
    """float (H, W, 3): the mean of each pixel's 5x5 neighbourhood (edges repeated)."""
    padded = np.pad(image.astype(np.float64), ((2, 2), (2, 2), (0, 0)), mode='edge')
    h, w = image.shape[:2]
    return np.mean([padded[dy:dy + h, dx:dx + w] for dy in range(5) for dx in range(5)], 0)


def test_labels_video(labels_run, tmp_path):
    """Each frame comes out as the run's task paints the label masks Segmenter finds in it (within H.264's error)."""
    import imageio
    from roadseg.data.datasets.shapes import render_labels
    from roadseg.serving.video import overlay_video
    src, out = str(tmp_path / 'in.mp4'), str(tmp_path / 'out.mp4')
    frames = [render_labels((48, 64), 0, 'test', i, grayscale=True)[0] for i in range(3)]
    with imageio.get_writer(src, format='ffmpeg', fps=5, codec='libx264', quality=10, macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)
    count, _ = overlay_video(labels_run, src, out, batch_size=2)
    assert count == 3
    with imageio.get_reader(src) as r_in, imageio.get_reader(out) as r_out, Segmenter(labels_run) as model:
        pairs = [(np.asarray(a), np.asarray(b)) for a, b in zip(r_in, r_out)]
        # in the video's batches of 2: a model this weak has labels near 0.5 that another batch's bf16 sums flip
        probs, _ = model.predict(np.stack([a for a, _ in pairs]), batch_size=2)
        painted = [model.task.paint(a, p) for (a, _), p in zip(pairs, probs)]
    assert len(pairs) == 3
    marked = 0
    for (decoded, written), want in zip(pairs, painted):
        changed = np.abs(want.astype(int) - decoded).max(-1) > 40  # where a label's colour is blended in
        marked += changed.sum()
        if changed.any():  # painted there, not plain; compared 5x5-averaged: H.264 keeps those, but blurs the
            # colours' edges and the stripes where labels overlap
            written, want, decoded = (_box5(a) for a in (written, want, decoded))
            to_painted = np.abs(written - want)[changed].mean()
            assert to_painted < 0.4 * np.abs(written - decoded)[changed].mean()
    assert marked > 0, 'the model marks some label in some frame'


def test_labels_int8_export_measures_each_label(labels_run):
    run = labels_run + '_int8'
    shutil.copytree(labels_run, run)
    export_run(run, ('onnx-int8',), calibration_images=2)
    int8_accuracy.record_accuracy(TrainedRun(run))
    with open(os.path.join(run, 'export', 'model-int8.json')) as f:
        accuracy = json.load(f)['accuracy']
    keys = {'mean_iou'} | {'iou_' + n for n in ('circle', 'triangle', 'square', 'pentagon', 'unknown')}
    assert set(accuracy['fp32']) == set(accuracy['int8']) == set(accuracy['change']) == keys
    # the fp32 side is --evaluate's score of model.onnx with one prediction per image (the files, without the run's
    # flips), in points; the change is int8 minus it, label by label
    fp32 = evaluate_run(run, out_dir=os.path.join(run, 'evaluation_onnx'), backend='onnxruntime', precision='fp32',
                        flip='none')
    assert accuracy['fp32']['mean_iou'] == pytest.approx(100 * fp32['mean_iou'], abs=1e-6)
    for name, iou in zip(fp32['classes'], fp32['class_iou']):
        assert accuracy['fp32']['iou_' + name] == pytest.approx(100 * iou, abs=1e-6)
    for k in keys:
        assert accuracy['change'][k] == pytest.approx(accuracy['int8'][k] - accuracy['fp32'][k], abs=1e-9)


def test_summary_names_the_kept_epoch_by_mean_iou(tmp_path, capsys):
    from roadseg.training import validation
    entries = [dict(epoch=1, loss=0.5, best=True, val_iou=0.5, val_f1=0.6, val_max_f1=0.7, val_ap=0.6),
               dict(epoch=2, loss=0.4, val_iou=0.4, val_f1=0.6, val_max_f1=0.8, val_ap=0.6)]
    path = str(tmp_path / 'history.jsonl')
    with open(path, 'w') as f:
        f.write(''.join(json.dumps(e) + '\n' for e in entries))
    validation.summarize(path, 32, task.Labels(NAMES, [(0, 0, 0)] * 2))
    assert 'Kept epoch 1 of 2: validation mean IoU 0.500 at threshold 0.50, mean MaxF1 70.00 (32 images)' in \
        capsys.readouterr().out

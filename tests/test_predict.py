"""--predict on a folder: class maps, overlays, KITTI submission files, bad images skipped, multi-class runs."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE, iou, road_test_images
from roadseg.data.images import read_image
from roadseg.serving.inference import Segmenter
from roadseg.serving.predict import predict_folder
from roadseg.system.files import InputError

KITTI_IMAGE = os.path.join(SAMPLE, 'testing', 'image_2', 'um_000000.png')


def _inputs(folder, road_data):
    """Two road scenes (one KITTI-named), one saved as an odd-sized JPEG, a truncated PNG, a text file named .png
    and a README; returns the readable images and their true road maps by output stem."""
    os.makedirs(folder)
    (_, kitti_image, kitti_road), (_, street, street_road) = road_test_images(road_data)[:2]
    Image.fromarray(kitti_image).save(os.path.join(folder, 'um_000000.png'))
    street = np.asarray(Image.fromarray(street).resize((211, 77), Image.BILINEAR))
    street_road = np.asarray(Image.fromarray(street_road.astype(np.uint8)).resize((211, 77), Image.NEAREST), bool)
    Image.fromarray(street).save(os.path.join(folder, 'street.jpg'), quality=95)
    with open(os.path.join(folder, 'um_000000.png'), 'rb') as f:
        data = f.read()
    with open(os.path.join(folder, 'broken.png'), 'wb') as f:
        f.write(data[:len(data) // 3])
    with open(os.path.join(folder, 'notes.png'), 'w') as f:
        f.write('not an image\n')
    with open(os.path.join(folder, 'README.txt'), 'w') as f:
        f.write('skipped\n')
    return {'street': (read_image(os.path.join(folder, 'street.jpg')), street_road),
            'um_000000': (kitti_image, kitti_road)}


def test_road_run(learned_run, road_data, tmp_path, capsys):
    """Class maps that find the true road, overlays green exactly there, KITTI files of round(255 p(road))."""
    images = _inputs(str(tmp_path / 'in'), road_data)
    out = str(tmp_path / 'out' / 'nested')  # created when missing
    assert predict_folder(learned_run, str(tmp_path / 'in'), out, batch_size=4) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith('error: ')]
    assert len(errors) == 2 and 'broken.png' in errors[0] and 'notes.png' in errors[1], captured.err
    assert 'Traceback' not in captured.err
    assert 'README.txt' in captured.out and 'Wrote 2 of 4 images' in captured.out
    assert sorted(os.listdir(out)) == ['street.png', 'street_overlay.png', 'um_000000.png',
                                       'um_000000_overlay.png', 'um_road_000000.png']
    for stem, (image, truth) in sorted(images.items()):
        with Image.open(os.path.join(out, stem + '.png')) as f:
            assert f.mode == 'L'
            classes = np.asarray(f)
        assert classes.shape == image.shape[:2] and set(np.unique(classes)) == {0, 1}
        road = classes == 1
        print('{}: {:.1%} road, IoU {:.3f} with the true road'.format(stem, road.mean(), iou(road, truth)))
        assert 0.05 < road.mean() < 0.95 and iou(road, truth) > 0.75
        painted = np.asarray(Image.open(os.path.join(out, stem + '_overlay.png')), np.int16)
        green = (image.astype(np.int16) + (0, 255, 0)) // 2  # translucent green: half the pixel, half (0, 255, 0)
        assert np.array_equal(painted[~road], image[~road]), 'only road is painted'
        assert np.abs(painted[road] - green[road]).max() <= 1
        if stem.startswith('um_'):
            with Image.open(os.path.join(out, 'um_road_000000.png')) as f:
                assert f.mode == 'L'
                p_road = np.asarray(f)
            assert p_road.shape == classes.shape and np.array_equal(p_road > 127, road), 'p(road) > 0.5 is road'
            assert p_road[road].min() > 127 and p_road[~road].max() < 128 and p_road.max() > 250 and p_road.min() < 5
            with Segmenter(learned_run) as model:  # the folder run's batch, both readable images
                probs, _ = model.predict([images['street'][0], image], batch_size=4)
            np.testing.assert_array_equal(p_road, np.round(probs[1][..., 1] * 255).astype(np.uint8))


def test_multiclass_run(learned_run, road_data, tmp_path, capsys):
    """A run recorded as a folder dataset's (class names and colours): argmax class maps with both classes, each
    pixel half its class's colour, a legend."""
    run = str(tmp_path / 'run')
    shutil.copytree(learned_run, run)
    path = os.path.join(run, 'config.json')
    with open(path) as f:
        config = json.load(f)
    names, colors = ['sky', 'ground'], [[0, 0, 255], [255, 255, 0]]
    config.update(dataset='folder', class_names=names, class_colors=colors)
    del config['task']  # as multi-class runs recorded it before config.json named the task: classes
    with open(path, 'w') as f:
        json.dump(config, f)
    os.makedirs(str(tmp_path / 'in'))
    (_, image, truth), = road_test_images(road_data)[:1]
    Image.fromarray(image).save(str(tmp_path / 'in' / 'um_000000.png'))
    out = str(tmp_path / 'out')
    assert predict_folder(run, str(tmp_path / 'in'), out, which='last', batch_size=1) == 0
    assert 'error' not in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ['legend.png', 'um_000000.png', 'um_000000_overlay.png']
    classes = np.asarray(Image.open(os.path.join(out, 'um_000000.png')))
    assert classes.shape == image.shape[:2] and set(np.unique(classes)) == {0, 1}
    assert iou(classes == 1, truth) > 0.75
    painted = np.asarray(Image.open(os.path.join(out, 'um_000000_overlay.png')), np.int16)
    want = (image + np.asarray(colors)[classes]) / 2.0  # half the pixel, half its class's colour
    assert np.abs(painted - want).max() <= 0.5
    legend = np.asarray(Image.open(os.path.join(out, 'legend.png')))
    for color in colors:
        assert (legend == color).all(axis=-1).any(), 'legend shows each class colour'
    Image.fromarray(image).save(str(tmp_path / 'in' / 'legend.jpg'))
    with pytest.raises(InputError, match='legend.png'):
        predict_folder(run, str(tmp_path / 'in'), out)
    os.remove(str(tmp_path / 'in' / 'legend.jpg'))

    config['class_colors'] = colors[:1]
    with open(path, 'w') as f:
        json.dump(config, f)
    with pytest.raises(InputError, match='config.json'):
        predict_folder(run, str(tmp_path / 'in'), out)


def test_folder_errors(tiny_run, tmp_path):
    folder = str(tmp_path / 'in')
    os.makedirs(folder)
    shutil.copy(KITTI_IMAGE, os.path.join(folder, 'a.png'))
    blocker = str(tmp_path / 'file')
    open(blocker, 'w').close()
    with pytest.raises(InputError, match='not writable'):
        predict_folder(tiny_run, folder, os.path.join(blocker, 'out'))
    with pytest.raises(InputError, match='input folder'):
        predict_folder(tiny_run, folder, folder)
    shutil.copy(KITTI_IMAGE, os.path.join(folder, 'a_overlay.png'))
    with pytest.raises(InputError, match='a_overlay.png'):
        predict_folder(tiny_run, folder, str(tmp_path / 'out'))
    with pytest.raises(InputError, match='no images'):
        predict_folder(tiny_run, str(tmp_path / 'out'), str(tmp_path / 'out2'))


def test_over_limit_image_is_skipped_with_one_error_line(tiny_run, tmp_path, capsys, monkeypatch):
    """An image over Pillow's pixel limit (a decompression bomb) is one error line; the rest is written, exit 1."""
    from conftest import error_line, run_cli
    folder = str(tmp_path / 'in')
    os.makedirs(folder)
    shutil.copy(KITTI_IMAGE, os.path.join(folder, 'a.png'))
    shutil.copy(KITTI_IMAGE, os.path.join(folder, 'c.png'))
    Image.new('L', (1500, 1500)).save(os.path.join(folder, 'b.png'))  # 2.25 M pixels, a few kB
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000000)  # refused above 2 M; KITTI's 0.47 M pass
    out = str(tmp_path / 'out')
    assert run_cli('--predict', folder, '--checkpoint', tiny_run, '--output', out) == 1
    line = error_line(capsys)
    assert line.startswith('error: {}: too large to read ('.format(os.path.join(folder, 'b.png'))), line
    assert sorted(os.listdir(out)) == ['a.png', 'a_overlay.png', 'c.png', 'c_overlay.png']

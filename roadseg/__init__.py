"""FCN-8s road segmentation on KITTI: the parts behind main.py and helper.py, and the Python API.

    cli/         the command line: flags, the training settings and recipes, which flags fit which mode, dispatch
    task/        what a run predicts (binary, classes or labels), decided once
    runs.py      a run folder: config.json, best/ last/ export/ paths, split checksums; a trained run parsed once
    data/        dataset formats, image reading, splits, training batches
    model/       the VGG16 encoder, output heads and tensor names, the training graph, freezing, batched prediction
    training/    the run as steps, validation, checkpoints, learning-rate schedules, Horovod ranks
    serving/     Segmenter (the Python API), ONNX Runtime, export (int8 too), --predict, --video
    evaluation/  metrics, reports and plots, --evaluate, the int8 accuracy check, overlays, colours
    system/      CPU settings, the TensorFlow import, graphs both stacks load, files, signals, progress

`import roadseg` and `from roadseg import Segmenter` load no TensorFlow and change no environment: a Segmenter
chooses this CPU's inference settings when it is created, then loads TensorFlow.
"""
__all__ = ['Segmenter']


def __getattr__(name):
    if name == 'Segmenter':
        from .serving.inference import Segmenter
        return Segmenter
    raise AttributeError('module {!r} has no attribute {!r}'.format(__name__, name))

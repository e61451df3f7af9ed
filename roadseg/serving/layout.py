"""What --export writes into a run's export folder (RUN/export/ of best/, RUN/export_last/ of last/): the
formats and their file names. A leaf: export, the ONNX Runtime backend and the int8 quantizer read it here."""
from ..runs import FROZEN

FORMATS = ('frozen', 'saved_model', 'onnx', 'onnx-int8')
DEFAULT_FORMATS = FORMATS[:3]  # onnx-int8 (serving/quantize.py) changes the results: only when asked for
FILE_NAMES = {'frozen': FROZEN, 'saved_model': 'saved_model', 'onnx': 'model.onnx', 'onnx-int8': 'model-int8.onnx'}
INT8_SUMMARY = 'model-int8.json'  # beside model-int8.onnx: its settings, calibration images and accuracy change
FORMAT_OF = {'fp32': 'onnx', 'int8': 'onnx-int8'}  # precision -> the format the onnxruntime backend runs

"""`tf` = tensorflow.compat.v1 in graph mode, the same API on TensorFlow 1.15 and 2.x."""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow.compat.v1 as tf  # noqa: E402

tf.disable_v2_behavior()
tf.logging.set_verbosity(tf.logging.ERROR)

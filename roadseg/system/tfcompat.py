"""`tf` = tensorflow.compat.v1, the same graph-mode API on TensorFlow 1.15 and 2.x.

Nothing global is switched: v2 behaviour stays on under TF 2.x, so a host program keeps eager execution.
Graph-mode code therefore builds in an explicit `with tf.Graph().as_default():` (placeholders, sessions and
summaries need one); there, `tf.get_variable` makes resource variables on TF 2.x (reference variables on
1.15), with the same checkpoint names, and static shapes hold ints on 2.x (Dimensions on 1.15).

The settings measured best for this CPU (system/cpu.py) are chosen before this import by whoever owns the
process: main.py's command line for its mode, a new Segmenter for inference; importing this module chooses none.
"""
import os
import sys
import tempfile


def _import_quietly():
    """Import TensorFlow with its C++ start-up chatter (oneDNN, CUDA probing) kept off stderr.

    TF 2.x logs before it reads TF_CPP_MIN_LOG_LEVEL from os.environ, so stderr's file descriptor is
    pointed at a temporary file during the import; if the import fails, what was logged is replayed.
    Set TF_CPP_MIN_LOG_LEVEL=0 to see everything.
    """
    if os.environ.get('TF_CPP_MIN_LOG_LEVEL') == '0':
        import tensorflow.compat.v1 as tf
        return tf
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow.compat.v1 as tf
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors='replace'))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tf


tf = _import_quietly()
tf.logging.set_verbosity(tf.logging.ERROR)


def session_config(threads=0, inter_op_threads=0, bf16=False):
    """ConfigProto: intra/inter-op thread counts (0: TensorFlow's choice) and, on TF 2.x with oneDNN,
    bfloat16 auto mixed precision (float32 variables, bf16 matmuls/convs; fastest on CPUs with AVX512-BF16
    or AMX). Raises ValueError where this TensorFlow has no such rewrite (TF 1.15)."""
    config = tf.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=inter_op_threads)
    if bf16:
        rewrites = config.graph_options.rewrite_options
        if 'auto_mixed_precision_onednn_bfloat16' not in type(rewrites).DESCRIPTOR.fields_by_name:
            raise ValueError('bf16 mixed precision needs TensorFlow 2.9 or newer (this is {})'.format(tf.__version__))
        rewrites.auto_mixed_precision_onednn_bfloat16 = 1  # RewriterConfig.ON
    return config

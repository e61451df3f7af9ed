#!/usr/bin/env bash
# Optional: Horovod 0.28.1 (TensorFlow ops, Gloo, no MPI) for data-parallel training (main.py --horovod).
#
#   scripts/install_horovod.sh [PYTHON]      # default: python (the active venv), e.g. .venv37/bin/python
#
# For the TF 1.15.5 / Python 3.7 stack, after `pip install -r requirements.txt`. Horovod 0.28.1 does not
# build against TensorFlow >= 2.16 (docs/horovod.md), so the script stops there. NVIDIA's TF1 container ships Horovod.
# The first run compiles the wheel (12.7 min wall, 5.2 CPU-min with -j1 on 2 shared cores) into
# $HOROVOD_WHEEL_DIR/tf<version>-cp<python>/ (default ~/.cache/roadseg/horovod); later runs, and CI with that
# folder cached, install it in seconds. The folder is per TensorFlow version because the wheel's name does
# not say which TensorFlow it was compiled against (pip's own wheel cache does not know either).
# MAKEFLAGS (default -j<cores>) sets the compile's parallelism.
set -euo pipefail
PYTHON=${1:-python}
VERSION=0.28.1

key=$(TF_CPP_MIN_LOG_LEVEL=3 "$PYTHON" -W ignore - 2> /dev/null <<'EOF'
import sys
try:
    import tensorflow as tf
except ImportError:
    print('error: no TensorFlow for {}; run pip install -r requirements.txt first'.format(sys.executable))
    sys.exit(1)
if tuple(int(x) for x in tf.__version__.split('.')[:2]) >= (2, 16):
    print('error: Horovod 0.28.1 does not build against TensorFlow {} (>= 2.16); use the TF 1.15.5 / '
          'Python 3.7 stack for --horovod (see docs/horovod.md)'.format(tf.__version__))
    sys.exit(1)
print('tf{}-cp{}{}'.format(tf.__version__, *sys.version_info[:2]))
EOF
) || { echo "${key:-error: cannot run $PYTHON}" >&2; exit 1; }
root=${HOROVOD_WHEEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/roadseg/horovod}
dir=$root/$key

if ! compgen -G "$dir/horovod-$VERSION-*.whl" > /dev/null; then
    echo "Building Horovod $VERSION for $key into $dir (once)"
    mkdir -p "$root"
    tmp=$(mktemp -d "$dir.partial.XXXXXX") && chmod 755 "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_WITHOUT_PYTORCH=1 \
        HOROVOD_WITHOUT_MXNET=1 MAKEFLAGS=${MAKEFLAGS:--j$(nproc)} \
        "$PYTHON" -m pip wheel --no-deps --no-build-isolation --no-cache-dir "horovod==$VERSION" -w "$tmp"
    mv -T "$tmp" "$dir" 2> /dev/null || echo "note: $dir appeared meanwhile; using it"
fi
"$PYTHON" -m pip install "$dir"/horovod-"$VERSION"-*.whl
TF_CPP_MIN_LOG_LEVEL=3 "$PYTHON" -W ignore -c '
import horovod, horovod.tensorflow as hvd, tensorflow as tf
assert hvd.gloo_built(), "Horovod was built without Gloo"
print("Horovod {} with TensorFlow {} and Gloo: ready (horovodrun --gloo -np N ...)".format(
    horovod.__version__, tf.__version__))'

# FCN-8s road segmentation, TensorFlow 1.x graph mode on current NVIDIA GPUs.
#
# Base: NVIDIA's TF1 container 23.03, the last TensorFlow 1.15 build NVIDIA maintained (TF 1.15.5+nv23.03,
# CUDA 12.1, cuDNN 8.8, Python 3.8): it runs on Volta through Hopper (V100, A100, L4, L40, H100), where
# the PyPI tensorflow-gpu==1.15.5 wheel (CUDA 10.0) does not. requirements.txt pins no TensorFlow for
# Python 3.8, so the image's own build is used.
#
#   docker build -t road-seg .
#   docker run --gpus all --rm -v "$PWD/data:/app/data" -v "$PWD/runs:/app/runs" road-seg
#   docker run --gpus all --rm -v "$PWD/data:/app/data" -v "$PWD/runs:/app/runs" road-seg \
#       python main.py --evaluate runs/<timestamp>
FROM nvcr.io/nvidia/tensorflow:23.03-tf1-py3

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
CMD ["python", "main.py"]

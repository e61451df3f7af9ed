"""Peer implementations for the benchmark only (not part of the product): the same FCN-8s/VGG16 in
PyTorch (eager, CPU; NCHW or channels_last, fp32 or bf16 autocast) and that network exported to ONNX for
ONNX Runtime (fp32, and int8 through roadseg/serving/quantize.py as the product quantizes its own export)."""
import time

import numpy as np


def installed(module):
    """True when the peer's package (torch, onnxruntime) imports."""
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def torch_fcn8(widths, fc_width, fc6_kernel, num_classes=2):
    """FCN-8s with the VGG16 layout of roadseg.model.vgg (3x3 convs, 2x2 pools, fc6/fc7 convs) in PyTorch."""
    import torch
    from torch import nn

    class FCN8(nn.Module):
        def __init__(self):
            super().__init__()
            blocks, cin = [], 3
            for n, w in zip((2, 2, 3, 3, 3), widths):
                layers = []
                for _ in range(n):
                    layers += [nn.Conv2d(cin, w, 3, padding=1), nn.ReLU(inplace=True)]
                    cin = w
                layers.append(nn.MaxPool2d(2, 2))
                blocks.append(nn.Sequential(*layers))
            self.blocks = nn.ModuleList(blocks)
            self.fc = nn.Sequential(nn.Conv2d(cin, fc_width, fc6_kernel, padding=fc6_kernel // 2),
                                    nn.ReLU(inplace=True), nn.Dropout(0.5),
                                    nn.Conv2d(fc_width, fc_width, 1), nn.ReLU(inplace=True), nn.Dropout(0.5))
            self.score7 = nn.Conv2d(fc_width, num_classes, 1)
            self.score4 = nn.Conv2d(widths[3], num_classes, 1)
            self.score3 = nn.Conv2d(widths[2], num_classes, 1)
            self.up7 = nn.ConvTranspose2d(num_classes, num_classes, 4, 2, padding=1)
            self.up4 = nn.ConvTranspose2d(num_classes, num_classes, 4, 2, padding=1)
            self.up3 = nn.ConvTranspose2d(num_classes, num_classes, 16, 8, padding=4)

        def forward(self, x):
            skips = []
            for block in self.blocks:
                x = block(x)
                skips.append(x)
            x = self.score7(self.fc(x))
            x = self.up7(x) + self.score4(skips[3])
            x = self.up4(x) + self.score3(skips[2])
            return self.up3(x)

    torch.manual_seed(0)
    return FCN8()


class TorchPeer:
    """Train step (Adam, cross-entropy) and forward pass of the PyTorch FCN-8s, timed, in the memory format its
    users pick: NCHW contiguous, or channels_last (oneDNN's fast layout on CPU); bf16 runs the same model under
    torch.autocast('cpu', dtype=torch.bfloat16) (float32 weights, bf16 convolutions)."""

    def __init__(self, widths, fc_width, fc6_kernel, threads, channels_last=False):
        import torch
        torch.set_num_threads(threads)
        self.torch = torch
        self.channels_last = channels_last
        self.model = torch_fcn8(widths, fc_width, fc6_kernel)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), 1e-4)
        self.loss = torch.nn.CrossEntropyLoss()

    def _input(self, images):
        """(B, C, H, W) tensor of (B, H, W, 3) float32 images in this peer's memory format."""
        x = self.torch.from_numpy(images).permute(0, 3, 1, 2)  # strides already those of channels_last
        return x.contiguous(memory_format=self.torch.channels_last if self.channels_last else
                            self.torch.contiguous_format)

    def train_step(self, images, labels, bf16=False):
        """images (B, H, W, 3) float32, labels (B, H, W) int64; seconds for one step."""
        torch = self.torch
        x, y = self._input(images), torch.from_numpy(labels)
        self.model.train()
        start = time.perf_counter()
        self.opt.zero_grad()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            loss = self.loss(self.model(x), y)
        loss.backward()
        self.opt.step()
        return time.perf_counter() - start

    def forward(self, images, bf16=False):
        """Seconds for the eval-mode forward pass of (B, H, W, 3) float32 images, without autograd."""
        torch = self.torch
        x = self._input(images)
        self.model.eval()
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            self.model(x)
        return time.perf_counter() - start

    def export_onnx(self, path, height, width):
        torch = self.torch
        self.model.eval()
        dummy = torch.zeros(1, 3, height, width)
        torch.onnx.export(self.model, dummy, path, input_names=['x'], output_names=['y'], opset_version=17,
                          dynamic_axes={'x': {0: 'n'}, 'y': {0: 'n'}}, dynamo=False)


# node-name prefixes of the PyTorch export's decoder, kept float32 in int8 as the product keeps its own
FLOAT_SCOPES = ('/score', '/up')


class OrtPeer:
    """ONNX Runtime session on the PyTorch peer's export, fp32 or int8 (NCHW input `x`; all graph
    optimizations, same thread count)."""

    def __init__(self, path, threads):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        self.input = self.session.get_inputs()[0].name

    def forward(self, images):
        x = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
        start = time.perf_counter()
        self.session.run(None, {self.input: x})
        return time.perf_counter() - start

"""Peer implementations for the benchmark only (not part of the product): the same FCN-8s/VGG16 in
PyTorch (eager, CPU) and that network exported to ONNX for ONNX Runtime."""
import time

import numpy as np


def available():
    try:
        import torch  # noqa: F401
        import onnxruntime  # noqa: F401
        return True
    except ImportError:
        return False


def torch_fcn8(widths, fc_width, fc6_kernel, num_classes=2):
    """FCN-8s with the VGG16 layout of roadseg.vgg (3x3 convs, 2x2 pools, fc6/fc7 convs) in PyTorch."""
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
    """Train step (Adam, cross-entropy) and forward pass timing of the PyTorch FCN-8s."""

    def __init__(self, widths, fc_width, fc6_kernel, threads):
        import torch
        torch.set_num_threads(threads)
        self.torch = torch
        self.model = torch_fcn8(widths, fc_width, fc6_kernel)
        self.opt = torch.optim.Adam(self.model.parameters(), 1e-4)
        self.loss = torch.nn.CrossEntropyLoss()

    def train_step(self, images, labels):
        """images (B, H, W, 3) float32, labels (B, H, W) int64; seconds for one step."""
        torch = self.torch
        x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        y = torch.from_numpy(labels)
        self.model.train()
        start = time.perf_counter()
        self.opt.zero_grad()
        loss = self.loss(self.model(x), y)
        loss.backward()
        self.opt.step()
        return time.perf_counter() - start

    def export_onnx(self, path, height, width):
        torch = self.torch
        self.model.eval()
        dummy = torch.zeros(1, 3, height, width)
        torch.onnx.export(self.model, dummy, path, input_names=['x'], output_names=['y'], opset_version=17,
                          dynamic_axes={'x': {0: 'n'}, 'y': {0: 'n'}}, dynamo=False)


class OrtPeer:
    """ONNX Runtime session on the PyTorch peer's export (NCHW input `x`; all graph optimizations, same
    thread count)."""

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

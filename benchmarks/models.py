"""Benchmark models in plain torch (seeded random weights), their registry and ONNX export."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

Built = tuple[nn.Module, tuple[torch.Tensor, ...], list[str]]

SEED = 0
IMAGE_SHAPE = (1, 3, 224, 224)
NUM_CLASSES = 1000
RTOL = 1e-4


# ---------------------------------------------------------------- shared layers

def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, *, groups: int = 1,
            act: type[nn.Module] | None = nn.ReLU6) -> nn.Sequential:
    """Conv (no bias, 'same' padding) + BatchNorm, then ``act`` unless it is None."""
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels as torchvision and TF do: to a multiple of ``divisor``, never below 90%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class InvertedResidual(nn.Module):
    """MobileNetV2 / EfficientNet-Lite block: 1x1 expand, depthwise, 1x1 linear project."""

    def __init__(self, cin: int, cout: int, *, stride: int, expand: int, kernel: int = 3):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [conv_bn(cin, hidden, 1)]
        layers += [conv_bn(hidden, hidden, kernel, stride, groups=hidden),
                   conv_bn(hidden, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


def inverted_stages(config, cin: int) -> tuple[list[nn.Module], int]:
    """Blocks from rows of (expand, kernel, stride, channels, repeats); returns them and cout."""
    blocks = []
    for expand, kernel, stride, cout, repeats in config:
        for i in range(repeats):
            blocks.append(InvertedResidual(cin, cout, stride=stride if i == 0 else 1,
                                           expand=expand, kernel=kernel))
            cin = cout
    return blocks, cin


def classifier_head(cin: int, dropout: float) -> nn.Sequential:
    """Global average pool, flatten, dropout (identity in eval), linear to the classes."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(dropout),
                         nn.Linear(cin, NUM_CLASSES))


# ---------------------------------------------------------------- ResNet-18

class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: two 3x3 convs, 1x1 strided projection when needed."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride, act=nn.ReLU),
                                  conv_bn(cout, cout, 3, act=None))
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.body(x) + identity)


def resnet18() -> nn.Module:
    """ResNet-18 as in torchvision: 7x7 stem, max pool, 4 stages of 2 BasicBlocks, 1000 classes."""
    stem = [conv_bn(3, 64, 7, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1)]
    stages, cin = [], 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        stages += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    return nn.Sequential(*stem, *stages, classifier_head(512, 0.0))


# ---------------------------------------------------------------- MobileNetV2 / EfficientNet-Lite0

MOBILENETV2_CONFIG = [  # expand, kernel, stride, channels, repeats (torchvision, width 1.0)
    (1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 3, 2, 32, 3), (6, 3, 2, 64, 4),
    (6, 3, 1, 96, 3), (6, 3, 2, 160, 3), (6, 3, 1, 320, 1),
]

EFFICIENTNET_LITE0_CONFIG = [  # expand, kernel, stride, channels, repeats (lite0: no scaling)
    (1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1),
]


def inverted_net(config, head_channels: int, dropout: float) -> nn.Module:
    """32-channel stride-2 stem, inverted-residual stages, 1x1 conv to ``head_channels``, head."""
    blocks, cin = inverted_stages(config, 32)
    return nn.Sequential(conv_bn(3, 32, 3, 2), *blocks, conv_bn(cin, head_channels, 1),
                         classifier_head(head_channels, dropout))


def mobilenetv2() -> nn.Module:
    """MobileNetV2 (width 1.0), torchvision's layout: ReLU6, 1280-channel head, 1000 classes."""
    return inverted_net(MOBILENETV2_CONFIG, 1280, 0.2)


def efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0: EfficientNet-B0 blocks without squeeze-excite, ReLU6 for swish."""
    return inverted_net(EFFICIENTNET_LITE0_CONFIG, 1280, 0.2)


# ---------------------------------------------------------------- BERT-like encoder

BERT4 = {"vocab": 30522, "seq": 128, "hidden": 256, "heads": 4, "intermediate": 1024,
         "layers": 4}


class SelfAttention(nn.Module):
    """Multi-head self-attention with plain matmul and softmax (no fused SDPA, no mask)."""

    def __init__(self, hidden: int, heads: int, seq: int):
        super().__init__()
        self.qkv = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(3))
        self.out = nn.Linear(hidden, hidden)
        # Fixed shapes, so the exported Reshapes take constants instead of Shape/Gather chains.
        self.split_shape = (1, seq, heads, hidden // heads)
        self.merged_shape = (1, seq, hidden)
        self.scale = 1.0 / math.sqrt(hidden // heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (lin(x).reshape(self.split_shape).transpose(1, 2) for lin in self.qkv)
        probs = torch.softmax(torch.matmul(q, k.transpose(2, 3)) * self.scale, dim=-1)
        context = torch.matmul(probs, v).transpose(1, 2).reshape(self.merged_shape)
        return self.out(context)


class EncoderLayer(nn.Module):
    """Post-LayerNorm transformer layer as in BERT: attention, add & norm, GELU FFN, add & norm."""

    def __init__(self, hidden: int, heads: int, intermediate: int, seq: int):
        super().__init__()
        self.attention = SelfAttention(hidden, heads, seq)
        self.norm1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ffn = nn.Sequential(nn.Linear(hidden, intermediate), nn.GELU(),
                                 nn.Linear(intermediate, hidden))
        self.norm2 = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attention(x))
        return self.norm2(x + self.ffn(x))


class Encoder(nn.Module):
    """Token + position embeddings, LayerNorm, then a stack of encoder layers; hidden states out."""

    def __init__(self, vocab: int, seq: int, hidden: int, heads: int, intermediate: int,
                 layers: int):
        super().__init__()
        self.tokens = nn.Embedding(vocab, hidden)
        self.positions = nn.Parameter(torch.randn(1, seq, hidden) * 0.02)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.Sequential(*(EncoderLayer(hidden, heads, intermediate, seq)
                                      for _ in range(layers)))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.layers(self.norm(self.tokens(input_ids) + self.positions))


def bert4() -> nn.Module:
    """A BERT-mini-like encoder: 4 layers, hidden 256, 4 heads, FFN 1024, sequence 128."""
    model = Encoder(**BERT4)
    nn.init.normal_(model.tokens.weight, std=0.02)
    with torch.no_grad():  # non-trivial LayerNorm affines (all-equal ones export as Identity)
        for norm in (m for m in model.modules() if isinstance(m, nn.LayerNorm)):
            norm.weight.uniform_(0.8, 1.2)
            norm.bias.normal_(0.0, 0.05)
    return model


# ---------------------------------------------------------------- weights and registry

@torch.no_grad()
def randomize_batchnorm(model: nn.Module, calibration: torch.Tensor) -> None:
    """Give every BatchNorm real running stats and a non-unit affine, so folding is non-trivial.

    The stats come from one train-mode pass over random images (like a short calibration), so
    activations stay in a sane range through the deep stacks; then they are jittered.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in norms:
        bn.momentum = None  # cumulative average: one batch sets the stats exactly
        bn.reset_running_stats()
    model.train()(calibration)
    for bn in norms:
        bn.momentum = 0.1
        bn.running_mean.add_(0.05 * torch.randn_like(bn.running_mean))
        bn.running_var.mul_(torch.empty_like(bn.running_var).uniform_(0.8, 1.25))
        bn.weight.uniform_(0.7, 1.3)
        bn.bias.normal_(0.0, 0.1)
    model.eval()


def build_cnn(factory: Callable[[], nn.Module]) -> Built:
    """Seeded CNN with calibrated BatchNorm stats, and one seeded 224x224 image."""
    torch.manual_seed(SEED)
    model = factory()
    randomize_batchnorm(model, torch.randn(4, *IMAGE_SHAPE[1:]))
    return model.eval(), (torch.randn(IMAGE_SHAPE),), ["input"]


def build_bert4() -> Built:
    """Seeded bert4 encoder and one seeded batch of token ids."""
    torch.manual_seed(SEED)
    model = bert4().eval()
    input_ids = torch.randint(0, BERT4["vocab"], (1, BERT4["seq"]), dtype=torch.int64)
    return model, (input_ids,), ["input_ids"]


MODELS: dict[str, Callable[[], Built]] = {
    "resnet18": lambda: build_cnn(resnet18),
    "mobilenetv2": lambda: build_cnn(mobilenetv2),
    "bert4": build_bert4,
    "efficientnet_lite0": lambda: build_cnn(efficientnet_lite0),
}


def build(name: str) -> Built:
    """Build a registered model: ``(module in eval mode, example inputs, input names)``."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]()


# ---------------------------------------------------------------- ONNX export and check

def export_onnx(name: str, path: str | Path, opset: int = 17, *, keep_batchnorm: bool = True,
                verify: bool = True) -> Path:
    """Export a registered model to ONNX with static shapes; check it against onnxruntime.

    Uses the TorchScript exporter (``dynamo=False``), which still works in torch 2.13 (with a
    DeprecationWarning) and gives stable input names and fully static shapes. In EVAL mode both
    exporters fold every BatchNorm into its Conv; ``keep_batchnorm`` (PRESERVE mode on an eval
    model) leaves inference-mode BatchNormalization nodes in the graph for the compiler to fold.
    """
    model, inputs, input_names = build(name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = torch.onnx.TrainingMode.PRESERVE if keep_batchnorm else torch.onnx.TrainingMode.EVAL
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)
        # PRESERVE warns about constant folding; harmless because the model is in eval mode.
        warnings.filterwarnings("ignore", "It is recommended that constant folding", UserWarning)
        torch.onnx.export(model, inputs, str(path), dynamo=False, opset_version=opset,
                          input_names=input_names, output_names=["output"], training=mode,
                          do_constant_folding=True)
    if verify:
        verify_onnx(path, model, inputs, input_names)
    return path


def ort_session(path: str | Path):
    """An onnxruntime session on the CPU provider with default options."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def max_diffs(actual, expected) -> tuple[float, float]:
    """Max abs diff and that diff relative to the reference's max magnitude, over all outputs."""
    abs_diff = rel_diff = 0.0
    for a, e in zip(actual, expected, strict=True):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        err = float(np.max(np.abs(a - e)))
        abs_diff = max(abs_diff, err)
        rel_diff = max(rel_diff, err / max(float(np.max(np.abs(e))), 1e-30))
    return abs_diff, rel_diff


def verify_onnx(path: Path, model: nn.Module, inputs, input_names: list[str]) -> None:
    """Check the file (onnx.checker), static input shapes, and onnxruntime against torch."""
    import onnx

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    graph_inputs = [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim])
                    for i in proto.graph.input]
    expected_inputs = [(n, list(t.shape)) for n, t in zip(input_names, inputs, strict=True)]
    if graph_inputs != expected_inputs:
        raise RuntimeError(f"{path}: inputs {graph_inputs}, expected {expected_inputs}")
    with torch.no_grad():
        reference = [model(*inputs).numpy()]
    feeds = {n: t.numpy() for n, t in zip(input_names, inputs, strict=True)}
    got = ort_session(path).run(None, feeds)
    abs_diff, rel_diff = max_diffs(got, reference)
    if rel_diff > RTOL:
        raise RuntimeError(f"{path}: onnxruntime differs from torch: max abs {abs_diff:.3g}, "
                           f"rel {rel_diff:.3g} > {RTOL}")

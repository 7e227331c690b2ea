"""PyTorch import through torch.export, compared with eager PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import accel

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'accel[dev]')")
pytestmark = [pytest.mark.e2e, pytest.mark.frontends]


class SmallCNN(torch.nn.Module):
    """Conv-BN-ReLU, a residual add, pooling and a linear head."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        y = y + torch.nn.functional.hardswish(self.conv2(y))
        return self.fc(y.mean(dim=(2, 3))).softmax(-1)


class TwoHeads(torch.nn.Module):
    """Two inputs, a tuple of two outputs, GELU and LayerNorm."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(16, 16)
        self.norm = torch.nn.LayerNorm(16)

    def forward(self, a, b):
        h = self.norm(torch.nn.functional.gelu(self.lin(a)) + b)
        return h, h.sum(-1)


def _eager(module, inputs):
    with torch.no_grad():
        out = module.eval()(*inputs)
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _randomize_bn(module):
    torch.manual_seed(0)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return module


@pytest.mark.parametrize("cls,shapes", [(SmallCNN, [(2, 3, 12, 12)]),
                                        (TwoHeads, [(3, 16), (3, 16)])])
def test_nn_module_matches_eager_torch(cls, shapes, tmp_path):
    torch.manual_seed(0)
    module = _randomize_bn(cls()).eval()
    inputs = tuple(torch.randn(s) for s in shapes)
    artifact = accel.compile(module, "host", example_inputs=inputs, output=tmp_path / "m.accel")
    got = accel.load(artifact.path)(*[x.numpy() for x in inputs])
    for g, e in zip(got, _eager(module, inputs), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_saved_pt2_program_matches_eager_torch(tmp_path):
    torch.manual_seed(1)
    module = _randomize_bn(SmallCNN()).eval()
    x = torch.randn(1, 3, 10, 10)
    torch.export.save(torch.export.export(module, (x,)), tmp_path / "m.pt2")
    artifact = accel.compile(tmp_path / "m.pt2", output=tmp_path / "m.accel")
    assert artifact.manifest["model"]["format"] == "torch"
    got = accel.load(artifact.path)(x.numpy())
    np.testing.assert_allclose(got[0], _eager(module, (x,))[0], rtol=1e-4, atol=1e-5)


def test_torch_input_names_come_from_forward_arguments(tmp_path):
    module = TwoHeads().eval()
    inputs = (torch.randn(3, 16), torch.randn(3, 16))
    artifact = accel.compile(module, example_inputs=inputs, output=tmp_path / "m.accel")
    assert [t.name for t in artifact.inputs] == ["a", "b"]
    assert [t.shape for t in artifact.outputs] == [(3, 16), (3,)]

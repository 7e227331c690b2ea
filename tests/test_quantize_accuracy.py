"""int8 accuracy on real models with labelled data that ships offline: accel's int8 against its
own fp32 on the same inputs, calibrated on inputs the evaluation does not use."""

from __future__ import annotations

import numpy as np
import pytest

import accel
from accel.quantize import QuantizeOptions

from . import datasets, datasets_vision, torch_wheels
from .test_real_models_onnx import MAGIKA, MAGIKA_BATCH, OCR, OCR_BATCH, OCR_REC, model_path

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'accel[dev]')")
pytestmark = pytest.mark.e2e
INT8 = accel.CompileOptions(quantize=QuantizeOptions(mode="int8"))  # entropy observer


def _torch_pair(module, example: np.ndarray, calibration: list[np.ndarray]):
    """The module compiled in fp32 and in int8 (calibrated on ``calibration``), loaded."""
    ex = (torch.from_numpy(example),)
    fp32 = accel.load(accel.compile(module, "host", example_inputs=ex).path)
    name = fp32.inputs[0].name
    int8 = accel.compile(module, "host", example_inputs=ex, options=INT8,
                         calibration=[{name: c} for c in calibration])
    assert int8.manifest["report"]["quantization"]["quantized"] > 0
    return fp32, accel.load(int8.path)


def test_rnet_int8_face_accuracy_on_lfw_matches_fp32():
    """MTCNN R-Net on scikit-image's 200 LFW faces and non-faces, calibrated on mirrored
    copies of every fifth image."""
    data = datasets_vision.lfw_faces()
    if data is None:
        pytest.skip("scikit-image is not installed (pip install 'accel[dev]')")
    images, labels = data
    x = datasets_vision.rnet_input(images)
    mirrored = np.ascontiguousarray(x[::5][:, :, :, ::-1])
    calibration = np.resize(mirrored, x.shape).astype(np.float32)  # the compiled batch of 200
    fp32, int8 = _torch_pair(torch_wheels.mtcnn("rnet"), x, [calibration])
    acc32 = float(np.mean(np.argmax(fp32(x)[1], 1) == labels))
    acc8 = float(np.mean(np.argmax(int8(x)[1], 1) == labels))
    print(f"R-Net LFW accuracy: fp32 {acc32:.3f}, int8 {acc8:.3f}")
    assert acc32 >= 0.8 and acc8 >= acc32 - 0.01


@pytest.mark.slow
def test_efficientnet_lite0_int8_top1_on_foolbox_imagenet_matches_fp32():
    """EfficientNet-Lite0 on foolbox's 20 labelled ImageNet images, calibrated on their mirror
    images (there are no other labelled images offline)."""
    if not datasets_vision.foolbox_imagenet_files():
        pytest.skip("foolbox is not installed (pip install --no-deps -r "
                    "tests/model_wheels_torch.txt)")
    images, labels = datasets_vision.imagenet_batch()
    calibration = [np.ascontiguousarray(images[i:i + 1, :, :, ::-1]) for i in range(20)]
    fp32, int8 = _torch_pair(torch_wheels.efficientnet_lite0(), images[:1], calibration)
    p32 = np.array([np.argmax(fp32(images[i:i + 1])[0]) for i in range(20)])
    p8 = np.array([np.argmax(int8(images[i:i + 1])[0]) for i in range(20)])
    acc32, acc8 = float(np.mean(p32 == labels)), float(np.mean(p8 == labels))
    print(f"EfficientNet-Lite0 top-1: fp32 {acc32:.2f}, int8 {acc8:.2f}, "
          f"same class {np.mean(p8 == p32):.2f}")
    assert acc32 >= 0.7 and acc8 >= acc32 - 0.05  # one image of 20


def test_magika_int8_label_accuracy_on_real_files_matches_fp32():
    """Magika on files of this Python installation (onnxruntime's naive int8 drops it from 95%
    to 11%), calibrated on other files of the same kinds."""
    path = model_path(*MAGIKA)
    features, labels, paths = datasets.magika_dataset(per_label=4)
    more, _, more_paths = datasets.magika_dataset(per_label=8)
    seen = set(paths)
    extra = more[[i for i, p in enumerate(more_paths) if p not in seen]]
    n = len(features) // MAGIKA_BATCH * MAGIKA_BATCH
    assert n and len(extra) >= MAGIKA_BATCH
    shapes = {"bytes": (MAGIKA_BATCH, features.shape[1])}
    fp32 = accel.load(accel.compile(path, "host", options=accel.CompileOptions(
        input_shapes=shapes)).path)
    calibration = [{"bytes": extra[i:i + MAGIKA_BATCH]}
                   for i in range(0, len(extra) - MAGIKA_BATCH + 1, MAGIKA_BATCH)]
    artifact = accel.compile(path, "host", options=accel.CompileOptions(
        input_shapes=shapes, quantize=QuantizeOptions(mode="int8")), calibration=calibration)
    int8 = accel.load(artifact.path)
    names = datasets.magika_labels()

    def accuracy(module) -> float:
        scores = np.concatenate([np.array(module(bytes=features[i:i + MAGIKA_BATCH])[0])
                                 for i in range(0, n, MAGIKA_BATCH)])
        return float(np.mean([names[j] == lab
                              for j, lab in zip(scores.argmax(1), labels[:n], strict=True)]))

    acc32, acc8 = accuracy(fp32), accuracy(int8)
    print(f"magika on {n} files: fp32 {acc32:.3f}, int8 {acc8:.3f}")
    assert acc32 >= 0.7 and acc8 >= acc32 - 0.03


@pytest.mark.slow
def test_ocr_rec_int8_exact_lines_within_two_points_of_fp32():
    """PP-OCRv4 recognition (rapidocr) on 64 rendered lines, calibrated on 32 other lines
    (onnxruntime's naive int8 loses 56 points of exact lines on PP-OCRv4)."""
    path = model_path(*OCR, OCR_REC)
    batch, texts = datasets.ocr_dataset(64, seed=100)
    others, _ = datasets.ocr_dataset(32, seed=7)
    shapes = {"x": (OCR_BATCH, *batch.shape[1:])}
    fp32 = accel.load(accel.compile(path, "host", options=accel.CompileOptions(
        input_shapes=shapes)).path)
    artifact = accel.compile(path, "host", options=accel.CompileOptions(
        input_shapes=shapes, quantize=QuantizeOptions(mode="int8")),
        calibration=[{"x": others[i:i + OCR_BATCH]} for i in range(0, 32, OCR_BATCH)])
    int8, chars = accel.load(artifact.path), datasets.ocr_characters(path)

    def exact_lines(module) -> float:
        read = []
        for i in range(0, len(batch), OCR_BATCH):
            read += datasets.ctc_decode(np.array(module(x=batch[i:i + OCR_BATCH])[0]), chars)
        return float(np.mean([r.strip() == t for r, t in zip(read, texts, strict=True)]))

    acc32, acc8 = exact_lines(fp32), exact_lines(int8)
    print(f"PP-OCRv4 rec exact lines: fp32 {acc32:.3f}, int8 {acc8:.3f}")
    assert acc32 >= 0.8 and acc8 >= acc32 - 0.02

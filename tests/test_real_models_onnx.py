"""Real ONNX models shipped in PyPI wheels (tests/model_wheels.txt), compiled for this host and
compared with onnxruntime: outputs within 1e-4 relative, and fp32 accuracy on offline labelled
data equal to onnxruntime's. No graph surgery: the files are used as the wheels ship them."""

from __future__ import annotations

import numpy as np
import pytest

import accel
from accel.errors import ShapeError, UnsupportedOpError

from . import datasets

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed ('accel[dev]')")
pytestmark = [pytest.mark.frontends, pytest.mark.e2e]

RTOL = 1e-4
#: outputs compared with onnxruntime at a looser tolerance, with the reason (measured here)
LOOSER = {
    # the last softmax amplifies float32 rounding: onnxruntime's own optimized and unoptimized
    # sessions differ by 6.3e-5, a 1e-7 input perturbation moves its scores 3.9e-5; accel 1.6e-4
    "PP-OCRv4 rec": 3e-4,
    # onnxruntime is the inexact one: its LayerNorm variance E[x^2]-E[x]^2 cancels its float32
    # sums' error, 7.6e-4 from a float64 evaluation; accel (float64 sums) is 5e-6 from it
    "magika": 2e-3,
}
SILERO = ("silero_vad", "data")
OCR = ("rapidocr_onnxruntime", "models")
OCR_DET, OCR_REC = "ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx"
OCR_CLS = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
MAGIKA = ("magika", "models", "standard_v3_3", "model.onnx")
#: batch sizes the accuracy sets are compiled for (padded to a multiple)
OCR_BATCH, MAGIKA_BATCH = 8, 32


def model_path(package: str, *parts: str):
    """The .onnx file inside an installed wheel; skip (saying which) when it is not installed."""
    path = datasets.package_file(package, *parts)
    if path is None:
        pytest.skip(f"{package} is not installed (pip install --no-deps -r tests/model_wheels.txt)")
    return path


def compile_host(path, shapes: dict, values: dict | None = None):
    """Compile for this host with pinned input shapes (and bound inputs); the loaded module."""
    options = accel.CompileOptions(input_shapes=shapes, input_values=values or {})
    return accel.load(accel.compile(path, "host", options=options).path)


def reference(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def assert_close(name: str, got, want, rtol: float | None = None) -> float:
    """Elementwise within RTOL relative (LOOSER's for those outputs), with an absolute floor of
    it times the output's largest magnitude (for elements near zero); prints and returns the
    max relative diff."""
    rtol = rtol or LOOSER.get(name, RTOL)
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape}, onnxruntime {want.shape}"
    scale = float(np.abs(want).max()) or 1.0
    rel = float(np.abs(got - want).max() / scale)
    print(f"{name}: max |diff| / max |ref| = {rel:.2e}")
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=name)
    return rel


# --- silero-vad -----------------------------------------------------------------------------

def speech_like(seconds: float, rate: int, *, seed: int = 0) -> np.ndarray:
    """An audio-like signal: voiced segments (a 120-220 Hz pitch with harmonics, a syllable
    envelope) between pauses of low noise, at about -12 dBFS."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 170 + 50 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) * (np.sin(2 * np.pi * 0.4 * t) > -0.3)
    signal = 0.25 * voiced * syllables + 0.01 * rng.standard_normal(t.size)
    return signal.astype(np.float32)


def run_silero(module_or_session, audio: np.ndarray, rate: int, *, sr_input: bool):
    """silero's OnnxWrapper loop: chunks of 512 (16 kHz) or 256 samples with the previous
    64 / 32 as context, the state carried; returns the per-chunk speech probabilities and the
    last state."""
    chunk, context = (512, 64) if rate == 16000 else (256, 32)
    state = np.zeros((2, 1, 128), np.float32)
    ctx = np.zeros((1, context), np.float32)
    probs = []
    for start in range(0, audio.size - chunk + 1, chunk):
        x = np.concatenate([ctx, audio[None, start:start + chunk]], axis=1)
        feeds = {"input": x, "state": state}
        if isinstance(module_or_session, ort.InferenceSession):
            if sr_input:
                feeds["sr"] = np.array(rate, np.int64)
            prob, state = module_or_session.run(None, feeds)
        else:
            prob, state = (np.array(o) for o in module_or_session(**feeds))
        probs.append(prob)
        ctx = x[:, -context:]
    return np.concatenate(probs), state


def check_silero(name: str, rate: int, *, sr_input: bool = True, seconds: float = 1.5):
    path = model_path(*SILERO, name)
    n = 576 if rate == 16000 else 288
    module = compile_host(path, {"input": (1, n), "state": (2, 1, 128)},
                          {"sr": (rate,)} if sr_input else None)
    audio = speech_like(seconds, rate)
    got_p, got_s = run_silero(module, audio, rate, sr_input=sr_input)
    want_p, want_s = run_silero(reference(path), audio, rate, sr_input=sr_input)
    assert want_p.max() > 0.5 > want_p.min(), "the signal should have speech and pauses"
    assert_close(f"{name} {rate} probs", got_p, want_p)
    assert_close(f"{name} {rate} state", got_s, want_s)


def test_silero_vad_16k():
    """The default export (opset 16, If on sr and on shapes, two LSTMs), 16 kHz."""
    check_silero("silero_vad.onnx", 16000)


@pytest.mark.slow
def test_silero_vad_8k():
    check_silero("silero_vad.onnx", 8000)


@pytest.mark.slow
@pytest.mark.parametrize("name,sr_input", [("silero_vad_16k_op15.onnx", True),
                                           ("silero_vad_op18_ifless.onnx", True),
                                           ("silero_vad_half.onnx", False),
                                           ("silero_vad_openvino_16k.onnx", False)])
def test_silero_vad_other_exports(name, sr_input):
    check_silero(name, 16000, sr_input=sr_input)


@pytest.mark.slow
def test_silero_vad_sequence_export():
    """The sequence export: a batch of 576-sample windows through one LSTM, with (h, c)."""
    path = model_path(*SILERO, "silero_vad_16k_sequence.onnx")
    audio = speech_like(8 * 512 / 16000 + 0.01, 16000)
    windows = np.stack([audio[i * 512:i * 512 + 576] for i in range(8)])
    h = c = np.zeros((1, 1, 128), np.float32)
    module = compile_host(path, {"input": windows.shape})
    want = reference(path).run(None, {"input": windows, "h": h, "c": c})
    for i, (got, ref) in enumerate(zip(module(input=windows, h=h, c=c), want, strict=True)):
        assert_close(f"sequence output {i}", got, ref)


def test_silero_vad_names_the_input_to_bind():
    """Without binding sr, the 8 kHz branch is invalid for 576 samples (onnxruntime fails on
    it too): the error names the node, the If and the input to bind."""
    path = model_path(*SILERO, "silero_vad.onnx")
    with pytest.raises(UnsupportedOpError) as err:
        accel.compile(path, "host", options=accel.CompileOptions(
            input_shapes={"input": (1, 576), "state": (2, 1, 128)}))
    assert "If_0" in str(err.value) and "--input-value sr=" in str(err.value)


# --- rapidocr (PP-OCRv4) --------------------------------------------------------------------

def text_page(seed: int = 0) -> np.ndarray:
    """A page of rendered text lines (H x W x 3 uint8), for the detector."""
    lines = datasets.ocr_text_lines(4, seed=seed)
    page = np.full((320, 640, 3), 245, np.uint8)
    for i, text in enumerate(lines):
        line = datasets.render_text_line(text, seed=seed + i)[:, :600]
        page[20 + 70 * i:20 + 70 * i + line.shape[0], 20:20 + line.shape[1]] = line
    return page


def normalize(image: np.ndarray) -> np.ndarray:
    """HWC uint8 -> NCHW float32 in [-1, 1] (rapidocr's mean/std 0.5)."""
    return ((image.astype(np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None]


def test_ocr_rec_matches_and_reads():
    """Recognition on rendered lines: probabilities within 1e-4, and the decoded strings."""
    path = model_path(*OCR, OCR_REC)
    batch, texts = datasets.ocr_dataset(OCR_BATCH, seed=1)
    got = np.array(compile_host(path, {"x": batch.shape})(x=batch)[0])
    want = reference(path).run(None, {"x": batch})[0]
    assert_close("PP-OCRv4 rec", got, want)
    chars = datasets.ocr_characters(path)
    assert datasets.ctc_decode(got, chars) == datasets.ctc_decode(want, chars)


def test_ocr_rec_fp32_accuracy_equals_onnxruntime():
    """Exact-line accuracy of accel on 64 rendered lines equals onnxruntime's."""
    path = model_path(*OCR, OCR_REC)
    batch, texts = datasets.ocr_dataset(64, seed=100)
    module = compile_host(path, {"x": (OCR_BATCH, *batch.shape[1:])})
    session, chars = reference(path), datasets.ocr_characters(path)
    got, want = [], []
    for i in range(0, len(batch), OCR_BATCH):
        part = batch[i:i + OCR_BATCH]
        got += datasets.ctc_decode(np.array(module(x=part)[0]), chars)
        want += datasets.ctc_decode(session.run(None, {"x": part})[0], chars)
    acc_got = np.mean([g.strip() == t for g, t in zip(got, texts, strict=True)])
    acc_want = np.mean([w.strip() == t for w, t in zip(want, texts, strict=True)])
    print(f"PP-OCRv4 rec exact lines: accel {acc_got:.3f}, onnxruntime {acc_want:.3f}")
    assert acc_want > 0.8, "the rendered lines should be readable"
    assert acc_got == acc_want and got == want


@pytest.mark.slow
def test_ocr_det_on_a_page():
    path = model_path(*OCR, OCR_DET)
    x = normalize(text_page())
    got = compile_host(path, {"x": x.shape})(x=x)[0]
    want = reference(path).run(None, {"x": x})[0]
    assert want.max() > 0.5, "the detector should see the text"
    assert_close("PP-OCRv4 det", got, want)


@pytest.mark.slow
def test_ocr_cls_on_lines_both_ways():
    """The angle classifier on upright and upside-down lines (3 x 48 x 192)."""
    path = model_path(*OCR, OCR_CLS)
    lines = [datasets.render_text_line(t, seed=i)
             for i, t in enumerate(datasets.ocr_text_lines(3, seed=7))]
    lines += [line[::-1, ::-1] for line in lines]
    batch = np.stack([datasets.ocr_rec_input(line)[:, :, :192] for line in lines])
    got = compile_host(path, {"x": batch.shape})(x=batch)[0]
    want = reference(path).run(None, {"x": batch})[0]
    assert_close("PP-OCR cls", got, want)


def test_ocr_dynamic_dims_are_named():
    """The det model's batch, height and width are dynamic: the error names each of them and
    says how to pin them; pinned, two sizes each compile and match."""
    path = model_path(*OCR, OCR_DET)
    with pytest.raises(ShapeError) as err:
        accel.compile(path, "host")
    assert "dim 0" in str(err.value) and "dim 3" in str(err.value)
    assert "--input-shape x=N,3,N,N" in str(err.value)


@pytest.mark.slow
def test_ocr_det_two_pinned_sizes():
    path = model_path(*OCR, OCR_DET)
    session = reference(path)
    for h, w in ((160, 320), (320, 640)):
        x = normalize(text_page()[:h, :w])
        got = compile_host(path, {"x": x.shape})(x=x)[0]
        assert_close(f"PP-OCRv4 det {h}x{w}", got, session.run(None, {"x": x})[0])


# --- magika ---------------------------------------------------------------------------------

def magika_batches(module, session, features):
    """Run accel and onnxruntime over the features in compiled-size batches (zero-padded)."""
    got, want = [], []
    for i in range(0, len(features), MAGIKA_BATCH):
        part = features[i:i + MAGIKA_BATCH]
        padded = np.concatenate([part, np.full((MAGIKA_BATCH - len(part), part.shape[1]),
                                               datasets.MAGIKA_PAD, np.int32)])
        got.append(np.array(module(bytes=padded)[0])[:len(part)])
        want.append(session.run(None, {"bytes": part})[0])
    return np.concatenate(got), np.concatenate(want)


def test_magika_on_real_files():
    """Magika on files of this Python installation: scores within 1e-4, and the label accuracy
    (by file extension) of accel equals onnxruntime's."""
    path = model_path(*MAGIKA)
    features, labels, _ = datasets.magika_dataset(per_label=4)
    module = compile_host(path, {"bytes": (MAGIKA_BATCH, features.shape[1])})
    got, want = magika_batches(module, reference(path), features)
    assert_close("magika", got, want)
    names = datasets.magika_labels()
    acc = [np.mean([names[i] == lab for i, lab in zip(p.argmax(1), labels, strict=True)])
           for p in (got, want)]
    print(f"magika label accuracy on {len(labels)} files: accel {acc[0]:.3f}, "
          f"onnxruntime {acc[1]:.3f}")
    # a file whose top two scores are closer than onnxruntime's own error may flip either way
    top2 = np.sort(want, axis=1)[:, -2:]
    decisive = top2[:, 1] - top2[:, 0] > 2 * LOOSER["magika"]
    print(f"files with a near tie: {int((~decisive).sum())}")
    assert acc[1] > 0.7 and abs(acc[0] - acc[1]) <= (~decisive).mean()
    assert (got.argmax(1) == want.argmax(1))[decisive].all()
    exact = np.array(compile_host(float64_model(path), {"bytes": (MAGIKA_BATCH, 2048)})(
        bytes=features[:MAGIKA_BATCH])[0])
    assert_close("magika vs float64", got[:MAGIKA_BATCH], exact, rtol=RTOL)
    print(f"onnxruntime vs float64: {np.abs(want[:MAGIKA_BATCH] - exact).max():.2e}")


def float64_model(path):
    """The model with every float32 weight, constant, Cast and output in float64: a reference
    for how exact a float32 result is (the same graph, evaluated with 29 more bits)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    wide = [numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name)
            if t.data_type == TensorProto.FLOAT else t for t in graph.initializer]
    del graph.initializer[:]
    graph.initializer.extend(wide)
    for node in graph.node:
        for attr in node.attribute:
            if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(
                    numpy_helper.to_array(attr.t).astype(np.float64), attr.t.name))
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.DOUBLE
    for vi in [*graph.input, *graph.output]:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.DOUBLE
    del graph.value_info[:]
    return model


# --- captcha-whisperer, nudenet -------------------------------------------------------------

def captcha_image(text: str = "7K3P9A") -> np.ndarray:
    """A captcha-like 160 x 60 image: the text with jitter, lines and noise, normalized like
    ImageNet (1 x 3 x 60 x 160)."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(3)
    image = Image.new("RGB", (160, 60), (240, 240, 230))
    draw, font = ImageDraw.Draw(image), ImageFont.load_default(size=34)
    for i, ch in enumerate(text):
        draw.text((8 + 24 * i, int(rng.integers(2, 14))), ch, font=font, fill=(40, 40, 90))
    for _ in range(4):
        draw.line([tuple(int(v) for v in rng.integers(0, 160, 2) % (160, 60)) for _ in range(2)],
                  fill=(90, 90, 90), width=2)
    pixels = np.asarray(image, np.float32) / 255 + rng.normal(0, 0.03, (60, 160, 3))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    return ((pixels - mean) / std).astype(np.float32).transpose(2, 0, 1)[None]


def test_captcha_whisperer_crnn():
    path = model_path("captcha_whisperer", "models", "captcha_crnn.onnx")
    x = captcha_image()
    got = compile_host(path, {"image": x.shape})(image=x)[0]
    assert_close("captcha CRNN", got, reference(path).run(None, {"image": x})[0])


def test_nudenet_yolov8n():
    """YOLOv8n (320) on a rendered scene: boxes and class scores within 1e-4."""
    path = model_path("nudenet", "320n.onnx")
    rng = np.random.default_rng(5)
    x = np.clip(np.linspace(0, 1, 320)[None, None, :] * rng.uniform(0.5, 1, (1, 3, 320, 1))
                + rng.normal(0, 0.05, (1, 3, 320, 320)), 0, 1).astype(np.float32)
    x[:, :, 80:240, 100:220] = np.array([0.8, 0.6, 0.5], np.float32)[:, None, None]
    got = compile_host(path, {"images": x.shape})(images=x)[0]
    assert_close("nudenet YOLOv8n", got, reference(path).run(None, {"images": x})[0])

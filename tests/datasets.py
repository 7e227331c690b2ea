"""Offline labelled data for accuracy tests: PP-OCRv4 text lines rendered with Pillow, and Magika
on real files of this Python installation labelled by extension. Nothing is downloaded."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import sysconfig
from pathlib import Path

import numpy as np

#: PP-OCRv4 recognition input: 3 x 48 x 320 (rapidocr's rec_img_shape), pixels to [-1, 1]
OCR_HEIGHT, OCR_WIDTH = 48, 320
#: words the text lines are made of (every character is in the rec model's dictionary)
_WORDS = ("invoice", "total", "order", "paid", "date", "amount", "tax", "item", "price", "sum",
          "Berlin", "Paris", "Tokyo", "Lagos", "Lima", "ACCEL", "TVM", "model", "data", "file",
          "page", "room", "line", "code", "NO", "ID", "box", "road", "Main", "Street")


def package_file(package: str, *parts: str) -> Path | None:
    """A file inside an installed package (None when the package is not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.exists() else None


# --- PP-OCRv4 recognition -------------------------------------------------------------------

def ocr_characters(rec_model: Path) -> list[str]:
    """The rec model's CTC classes, as rapidocr builds them: 'blank', the dictionary stored in
    the model's ``character`` metadata, then ' '."""
    import onnx

    model = onnx.load(str(rec_model), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    return ["blank", *meta["character"].splitlines(), " "]


def ocr_text_lines(count: int, *, seed: int = 0) -> list[str]:
    """Ground-truth strings: two to four words, a number or a date, deterministic per seed."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(count):
        words = list(rng.choice(_WORDS, size=int(rng.integers(1, 4))))
        kind = i % 3
        extra = (f"{rng.integers(1, 999)}.{rng.integers(0, 99):02d}" if kind == 0 else
                 f"2024-{rng.integers(1, 12):02d}-{rng.integers(1, 28):02d}" if kind == 1 else
                 str(rng.integers(10, 99999)))
        words.insert(int(rng.integers(0, len(words) + 1)), extra)
        lines.append(" ".join(str(w) for w in words))
    return lines


def render_text_line(text: str, *, size: int = 32, seed: int = 0) -> np.ndarray:
    """A text line image (H x W x 3 uint8): dark text on a light, slightly noisy background,
    words half a font size apart (as printed text is; the default space is narrower)."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=size)  # Pillow's own FreeType font: no system fonts
    words, gap, pad = text.split(" "), size // 2, size // 4
    boxes = [font.getbbox(w) for w in words]
    top = min(b[1] for b in boxes)
    width = sum(b[2] - b[0] for b in boxes) + gap * (len(words) - 1) + 2 * pad
    image = Image.new("RGB", (width, max(b[3] for b in boxes) - top + 2 * pad),
                      tuple(int(v) for v in rng.integers(215, 256, 3)))
    ink = tuple(int(v) for v in rng.integers(0, 60, 3))
    draw, x = ImageDraw.Draw(image), pad
    for word, box in zip(words, boxes, strict=True):
        draw.text((x - box[0], pad - top), word, font=font, fill=ink)
        x += box[2] - box[0] + gap
    pixels = np.asarray(image, dtype=np.int16) + rng.integers(-8, 9, (image.height, image.width, 1))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def ocr_rec_input(image: np.ndarray) -> np.ndarray:
    """rapidocr's resize_norm_img for one line: height 48, width kept in ratio (at most 320),
    zero-padded on the right; returns 3 x 48 x 320 float32."""
    from PIL import Image

    h, w = image.shape[:2]
    width = min(OCR_WIDTH, int(np.ceil(OCR_HEIGHT * w / h)))
    resized = np.asarray(Image.fromarray(image).resize((width, OCR_HEIGHT), Image.BILINEAR),
                         dtype=np.float32)
    out = np.zeros((3, OCR_HEIGHT, OCR_WIDTH), np.float32)
    out[:, :, :width] = (resized.transpose(2, 0, 1) / 255 - 0.5) / 0.5
    return out


def ctc_decode(probs: np.ndarray, characters: list[str]) -> list[str]:
    """Greedy CTC: argmax per step, repeats merged, blanks (class 0) dropped; one string per
    batch row of ``probs`` (batch x steps x classes)."""
    texts = []
    for row in np.asarray(probs).argmax(-1):
        keep = np.ones(len(row), bool)
        keep[1:] = row[1:] != row[:-1]
        keep &= row != 0
        texts.append("".join(characters[i] for i in row[keep]))
    return texts


def ocr_dataset(count: int, *, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """``count`` rendered lines as a rec-model batch (N x 3 x 48 x 320) and their strings."""
    texts = ocr_text_lines(count, seed=seed)
    batch = np.stack([ocr_rec_input(render_text_line(t, seed=seed + i))
                      for i, t in enumerate(texts)])
    return batch, texts


# --- Magika ---------------------------------------------------------------------------------

#: file extension -> Magika label
MAGIKA_LABELS = {".py": "python", ".json": "json", ".html": "html", ".png": "png", ".zip": "zip",
                 ".pdf": "pdf", ".xml": "xml", ".css": "css", ".js": "javascript", ".c": "c",
                 ".h": "c", ".sh": "shell", ".gif": "gif", ".jpg": "jpeg", ".toml": "toml",
                 ".gz": "gzip", ".csv": "csv", ".svg": "svg", ".pyc": "pythonbytecode",
                 ".wav": "wav", ".ico": "ico", ".tar": "tar", ".bmp": "bmp", ".ttf": "ttf",
                 ".whl": "zip", ".so": "elf", ".rst": "rst", ".md": "markdown", ".ini": "ini",
                 ".yaml": "yaml", ".yml": "yaml", ".onnx": "onnx", ".npy": "npy", ".npz": "npz"}
#: Magika's feature sizes (its standard_v3_3 config)
MAGIKA_BEG = MAGIKA_END = 1024
MAGIKA_BLOCK, MAGIKA_PAD, MAGIKA_MIN_SIZE = 4096, 256, 8


@dataclasses.dataclass(frozen=True)
class LabelledFile:
    """One real file and the Magika label its extension implies."""

    path: Path
    label: str


def magika_labels() -> list[str]:
    """Magika's output classes, in model order (its config's target_labels_space)."""
    import json

    config = package_file("magika", "models", "standard_v3_3", "config.min.json")
    return json.loads(config.read_text())["target_labels_space"]


def magika_files(per_label: int = 4) -> list[LabelledFile]:
    """Up to ``per_label`` files per extension from the stdlib, site-packages and the
    interpreter's folders, in sorted order, big enough for Magika's model (>= 8 bytes after
    stripping whitespace)."""
    found: dict[str, list[Path]] = {}
    for root in _roots():
        for path in sorted(root.rglob("*")):
            label = MAGIKA_LABELS.get(path.suffix.lower())
            if label is None or len(found.setdefault(path.suffix.lower(), [])) >= per_label:
                continue
            if path.is_file() and _usable(path):
                found[path.suffix.lower()].append(path)
    return [LabelledFile(p, MAGIKA_LABELS[ext]) for ext in sorted(found) for p in found[ext]]


def _roots() -> list[Path]:
    paths = sysconfig.get_paths()
    roots = [Path(paths["stdlib"]), Path(paths["purelib"]), Path(sys.base_prefix) / "include"]
    return [r for i, r in enumerate(roots) if r.is_dir() and r not in roots[:i]]


def _usable(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(MAGIKA_BLOCK)
    except OSError:
        return False
    return len(head.strip()) >= MAGIKA_MIN_SIZE


def magika_features(path: Path) -> np.ndarray:
    """Magika's v2 features of a file (int32, 2048): the first 1024 bytes of the lstripped
    first block padded at the end, the last 1024 of the rstripped last block padded at the
    front (as magika.Magika._extract_features_from_seekable). Reads only those two blocks."""
    with path.open("rb") as f:
        size = f.seek(0, 2)
        n = min(MAGIKA_BLOCK, size)
        f.seek(0)
        head = f.read(n)
        f.seek(size - n)
        tail = f.read(n)
    beg = list(head.lstrip()[:MAGIKA_BEG])
    end_block = tail.rstrip()
    end = list(end_block[max(0, len(end_block) - MAGIKA_END):])
    beg += [MAGIKA_PAD] * (MAGIKA_BEG - len(beg))
    end = [MAGIKA_PAD] * (MAGIKA_END - len(end)) + end
    return np.array(beg + end, np.int32)


def magika_dataset(per_label: int = 4) -> tuple[np.ndarray, list[str], list[Path]]:
    """The labelled files as a feature batch (N x 2048 int32), their labels and paths."""
    files = magika_files(per_label)
    features = np.stack([magika_features(f.path) for f in files])
    return features, [f.label for f in files], [f.path for f in files]

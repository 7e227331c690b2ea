"""ONNX Attention (opset 23+): TVM's converter is com.microsoft's, with other inputs and attrs."""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converter
from ._util import dtype, ndim, shape


def _to_heads(bb, x, heads: int):
    """(B, S, H*D) -> (B, H, S, D)."""
    b, s, hidden = shape(bb, x)
    return bb.emit(relax.op.permute_dims(relax.op.reshape(x, (b, s, heads, hidden // heads)),
                                         [0, 2, 1, 3]))


def _safe_softmax(bb, x, dt):
    """Softmax whose all -inf rows give zeros, not NaN (as ONNX's reference)."""
    zero, one = relax.const(0, dt), relax.const(1, dt)
    top = bb.emit(relax.op.max(x, axis=-1, keepdims=True))
    top = relax.op.where(relax.op.equal(top, relax.const(-np.inf, dt)), zero, top)
    e = bb.emit(relax.op.exp(relax.op.subtract(x, top)))
    total = bb.emit(relax.op.sum(e, axis=-1, keepdims=True))
    return bb.emit(relax.op.divide(e, relax.op.where(relax.op.equal(total, zero), one, total)))


def _mask_bias(bb, mask, kv_len: int, dt: str):
    """The attn_mask as an additive bias, padded to kv_len (False / -inf past its end)."""
    mshape = shape(bb, mask)
    if dtype(mask) == "bool":
        mask = relax.op.where(mask, relax.const(0, dt), relax.const(-np.inf, dt))
    if mshape[-1] < kv_len:
        pad = np.full((*mshape[:-1], kv_len - mshape[-1]), -np.inf, dtype=dt)
        mask = relax.op.concat([mask, relax.const(pad)], axis=-1)
    return bb.emit(mask)


class _Inputs(list):
    """A list whose missing trailing entries read as None (like TVM's onnx_input)."""

    def __getitem__(self, i):
        return super().__getitem__(i) if i < len(self) else None


@converter("Attention")
class Attention(OnnxOpConverter):
    """Scaled dot-product attention with masks, causal offset, KV cache, GQA and softcap.

    nonpad_kv_seqlen and sliding windows are refused (they raise, so the op is reported
    unsupported with that reason).
    """

    @classmethod
    def _impl_v23(cls, bb, inputs, attr, params):
        q, k, v, mask, past_k, past_v = (inputs[i] for i in range(6))
        if inputs[6] is not None:
            raise NotImplementedError("nonpad_kv_seqlen is not supported")
        if attr.get("left_window_size", -1) != -1 or attr.get("right_window_size", -1) != -1:
            raise NotImplementedError("sliding windows are not supported")
        dt, three_d = dtype(q), ndim(q) == 3
        if dt == "float16":  # computed in float32, as onnx's reference accumulates
            return cls._in_float32(bb, inputs, attr, params)
        if three_d:
            q = _to_heads(bb, q, attr["q_num_heads"])
            k = _to_heads(bb, k, attr["kv_num_heads"])
            v = _to_heads(bb, v, attr["kv_num_heads"])
        if past_k is not None:
            k = bb.emit(relax.op.concat([past_k, k], axis=2))
            v = bb.emit(relax.op.concat([past_v, v], axis=2))
        present_k, present_v = k, v
        _, q_heads, q_len, head = shape(bb, q)
        kv_heads, kv_len = shape(bb, k)[1:3]
        past_len = shape(bb, past_k)[2] if past_k is not None else 0
        bias = cls._bias(bb, mask, attr.get("is_causal", 0), q_len, kv_len, past_len, dt)
        if q_heads != kv_heads:
            k = relax.op.repeat(k, q_heads // kv_heads, axis=1)
            v = relax.op.repeat(v, q_heads // kv_heads, axis=1)
        scale = attr.get("scale", 1 / np.sqrt(head))
        root = relax.const(np.dtype(dt).type(np.sqrt(scale)), dt)
        qk = bb.emit(relax.op.matmul(relax.op.multiply(q, root), relax.op.permute_dims(
            relax.op.multiply(k, root), [0, 1, 3, 2])))
        softcap = attr.get("softcap", 0.0)
        if softcap and softcap > 0:
            cap = relax.const(softcap, dt)
            qk = bb.emit(relax.op.multiply(relax.op.tanh(relax.op.divide(qk, cap)), cap))
        qk_bias = bb.emit(relax.op.add(qk, bias)) if bias is not None else qk
        y, probs = cls._weights_and_output(bb, qk_bias, bias, v, attr, dt)
        mode = attr.get("qk_matmul_output_mode", 0)
        qk_out = {2: qk_bias, 3: probs}.get(mode, qk)
        if three_d:
            b, h, s, d = shape(bb, y)
            y = relax.op.reshape(relax.op.permute_dims(y, [0, 2, 1, 3]), (b, s, h * d))
        outputs = [y, present_k, present_v, relax.op.astype(qk_out, dt)]
        return relax.Tuple(outputs[:attr["tvm_custom"]["num_outputs"]])

    @classmethod
    def _in_float32(cls, bb, inputs, attr, params):
        wide = [None if x is None or dtype(x) != "float16" else bb.emit(relax.op.astype(
            x, "float32")) for x in inputs]
        wide = [w if w is not None else x for w, x in zip(wide, inputs, strict=True)]
        result = cls._impl_v23(bb, _Inputs(wide), attr, params)
        return relax.Tuple([relax.op.astype(bb.emit(f), "float16") for f in result.fields])

    @staticmethod
    def _bias(bb, mask, causal, q_len, kv_len, past_len, dt):
        bias = _mask_bias(bb, mask, kv_len, dt) if mask is not None else None
        if causal:
            i, j = np.arange(q_len)[:, None], np.arange(kv_len)[None, :]
            tri = relax.const(np.where(j <= i + past_len, 0, -np.inf).astype(dt))
            bias = bb.emit(relax.op.add(bias, tri)) if bias is not None else tri
        return bias

    @staticmethod
    def _weights_and_output(bb, qk_bias, bias, v, attr, dt):
        precision = attr.get("softmax_precision")
        work = dt
        if precision is not None:
            from onnx import helper

            work = np.dtype(helper.tensor_dtype_to_np_dtype(precision)).name
            qk_bias = relax.op.astype(qk_bias, work)
        probs = _safe_softmax(bb, qk_bias, work)
        if bias is not None:  # rows with no key to attend give 0, decided on the bias
            masked = relax.op.equal(relax.op.max(bias, axis=-1, keepdims=True),
                                    relax.const(-np.inf, dt))
            probs = bb.emit(relax.op.where(masked, relax.const(0, work), probs))
        probs = bb.emit(relax.op.astype(probs, dt)) if work != dt else probs
        return bb.emit(relax.op.matmul(probs, v)), probs

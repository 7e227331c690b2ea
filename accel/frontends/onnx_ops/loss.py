"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (no TVM converter for either)."""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converter
from ._util import attr_str, dtype


def nll(bb, log_prob, target, weight, reduction: str, ignore_index):
    """ONNX NLL: -log_prob[n, target[n, ...], ...] * weight[target], reduced."""
    dt = dtype(log_prob)
    ignored = None
    if ignore_index is not None:
        ignored = bb.emit(relax.op.equal(target, relax.const(ignore_index, dtype(target))))
        target = bb.emit(relax.op.where(ignored, relax.op.zeros_like(target), target))
    picked = relax.op.gather_elements(log_prob, relax.op.expand_dims(target, 1), axis=1)
    picked = bb.emit(relax.op.squeeze(picked, [1]))
    w = (bb.emit(relax.op.take(weight, target, axis=0)) if weight is not None
         else relax.op.ones_like(picked))
    if ignored is not None:
        w = relax.op.where(ignored, relax.const(0, dt), w)
    w = bb.emit(w)
    loss = bb.emit(relax.op.negative(relax.op.multiply(picked, w)))
    if reduction == "none":
        return loss
    total = relax.op.sum(loss)
    if reduction == "sum":
        return bb.emit(total)
    return bb.emit(relax.op.divide(total, relax.op.sum(w)))


@converter("NegativeLogLikelihoodLoss")
class NegativeLogLikelihoodLoss(OnnxOpConverter):
    """reduction none / sum / mean (by the summed weights), ignore_index."""

    @classmethod
    def _impl_v12(cls, bb, inputs, attr, params):
        return nll(bb, inputs[0], inputs[1], inputs[2], attr_str(attr, "reduction", "mean"),
                   attr.get("ignore_index"))


@converter("SoftmaxCrossEntropyLoss")
class SoftmaxCrossEntropyLoss(OnnxOpConverter):
    """NLL over log_softmax on axis 1; the second output is the log-probabilities."""

    @classmethod
    def _impl_v12(cls, bb, inputs, attr, params):
        log_prob = bb.emit(relax.op.nn.log_softmax(inputs[0], axis=1))
        loss = nll(bb, log_prob, inputs[1], inputs[2], attr_str(attr, "reduction", "mean"),
                   attr.get("ignore_index"))
        if attr["tvm_custom"]["num_outputs"] == 1:
            return loss
        return relax.Tuple([loss, log_prob])

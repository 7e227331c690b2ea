"""RNN, GRU and LSTM, unrolled over the static sequence length (TVM's importer has none)."""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converter
from ._util import dtype, shape

_DEFAULT_ACTS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}
_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _activation(name: str, x, alpha, beta, dt):
    name = name.decode() if isinstance(name, bytes) else name
    if name == "Sigmoid":
        return relax.op.sigmoid(x)
    if name == "Tanh":
        return relax.op.tanh(x)
    if name == "Relu":
        return relax.op.nn.relu(x)
    if name == "HardSigmoid":
        a, b = relax.const(alpha or 0.2, dt), relax.const(beta or 0.5, dt)
        return relax.op.clip(relax.op.add(relax.op.multiply(a, x), b), 0, 1)
    if name == "LeakyRelu":
        return relax.op.nn.leakyrelu(x, alpha or 0.01)
    raise NotImplementedError(f"activation {name}")


class _Recurrent(OnnxOpConverter):
    """Shared unrolling: per direction, precompute X*W^T + biases, then step through time."""

    kind = "RNN"

    @classmethod
    def _impl_v7(cls, bb, inputs, attr, params):
        x, w, r, b, seq_lens, h0 = (inputs[i] for i in range(6))
        if attr.get("input_forget", 0):
            raise NotImplementedError("input_forget=1")
        dt = dtype(x)
        if attr.get("layout", 0):
            x = bb.emit(relax.op.permute_dims(x, [1, 0, 2]))
            h0 = bb.emit(relax.op.permute_dims(h0, [1, 0, 2])) if h0 is not None else None
            c0 = inputs[6]
            inputs = [*inputs[:6], bb.emit(relax.op.permute_dims(c0, [1, 0, 2]))
                      if c0 is not None else None, inputs[7]]
        steps, batch, _ = shape(bb, x)
        dirs, gh, _ = shape(bb, w)
        hidden = gh // _GATES[cls.kind]
        direction = attr.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if seq_lens is not None and direction != "forward":
            raise NotImplementedError("sequence_lens with a reverse direction")
        acts = list(attr.get("activations", ())) or _DEFAULT_ACTS[cls.kind] * dirs
        alphas = list(attr.get("activation_alpha", ()))
        betas = list(attr.get("activation_beta", ()))
        per_dir = len(_DEFAULT_ACTS[cls.kind])
        ys, hs, cs = [], [], []
        for d in range(dirs):
            reverse = direction == "reverse" or (direction == "bidirectional" and d == 1)
            fns = [cls._fn(acts, alphas, betas, d * per_dir + i, dt) for i in range(per_dir)]
            state = cls._initial(bb, inputs, d, batch, hidden, dt)
            wd, rd = (bb.emit(relax.op.squeeze(_pick(t, d), [0])) for t in (w, r))
            wb, rb = cls._biases(bb, b, d, gh, dt)
            xw = bb.emit(relax.op.add(relax.op.matmul(x, relax.op.permute_dims(wd)), wb))
            order = range(steps - 1, -1, -1) if reverse else range(steps)
            outs = {}
            for t in order:
                xt = bb.emit(relax.op.squeeze(_pick(xw, t), [0]))
                new = cls._step(bb, xt, state, rd, rb, fns, inputs, d, hidden, attr, dt)
                if seq_lens is not None:
                    live = bb.emit(relax.op.expand_dims(relax.op.less(
                        relax.const(t, dtype(seq_lens)), seq_lens), 1))
                    outs[t] = bb.emit(relax.op.where(live, new[0], relax.op.zeros_like(new[0])))
                    new = [bb.emit(relax.op.where(live, n, s)) for n, s in zip(new, state,
                                                                             strict=True)]
                else:
                    outs[t] = new[0]
                state = new
            ys.append(bb.emit(relax.op.stack([outs[t] for t in range(steps)], axis=0)))
            hs.append(state[0])
            cs.extend(state[1:])
        return cls._outputs(bb, ys, hs, cs, attr)

    @staticmethod
    def _fn(acts, alphas, betas, i, dt):
        alpha = alphas[i] if i < len(alphas) else None
        beta = betas[i] if i < len(betas) else None
        return lambda v: _activation(acts[i], v, alpha, beta, dt)

    @classmethod
    def _initial(cls, bb, inputs, d, batch, hidden, dt):
        zeros = relax.const(0, dt)
        h0 = inputs[5]
        h = bb.emit(relax.op.squeeze(_pick(h0, d), [0])) if h0 is not None else \
            bb.emit(relax.op.full((batch, hidden), zeros, dt))
        return [h]

    @staticmethod
    def _biases(bb, b, d, gh, dt):
        if b is None:
            zero = relax.const(0, dt)
            return zero, zero
        bd = bb.emit(relax.op.squeeze(_pick(b, d), [0]))
        wb = bb.emit(relax.op.strided_slice(bd, axes=[0], begin=[0], end=[gh]))
        rb = bb.emit(relax.op.strided_slice(bd, axes=[0], begin=[gh], end=[2 * gh]))
        return bb.emit(relax.op.add(wb, rb)), rb

    @staticmethod
    def _outputs(bb, ys, hs, cs, attr):
        y = bb.emit(relax.op.stack(ys, axis=1))  # (seq, dirs, batch, hidden)
        y_h = bb.emit(relax.op.stack(hs, axis=0))
        outs = [y, y_h] + ([bb.emit(relax.op.stack(cs, axis=0))] if cs else [])
        if attr.get("layout", 0):
            outs = [bb.emit(relax.op.permute_dims(outs[0], [2, 0, 1, 3]))] + [
                bb.emit(relax.op.permute_dims(o, [1, 0, 2])) for o in outs[1:]]
        return relax.Tuple(outs[:attr["tvm_custom"]["num_outputs"]])


def _pick(t, i):
    return relax.op.strided_slice(t, axes=[0], begin=[i], end=[i + 1])


def _gate(bb, v, i, hidden):
    return bb.emit(relax.op.strided_slice(v, axes=[1], begin=[i * hidden],
                                          end=[(i + 1) * hidden]))


def _clip(v, attr):
    clip = attr.get("clip")
    return relax.op.clip(v, -clip, clip) if clip is not None else v


@converter("RNN")
class RNN(_Recurrent):
    """H = f(X W^T + H R^T + Wb + Rb)."""

    kind = "RNN"

    @classmethod
    def _step(cls, bb, xt, state, rd, rb, fns, inputs, d, hidden, attr, dt):
        pre = relax.op.add(xt, relax.op.matmul(state[0], relax.op.permute_dims(rd)))
        return [bb.emit(fns[0](_clip(pre, attr)))]


@converter("GRU")
class GRU(_Recurrent):
    """Gates z, r, h; linear_before_reset as ONNX defines it."""

    kind = "GRU"

    @classmethod
    def _step(cls, bb, xt, state, rd, rb, fns, inputs, d, hidden, attr, dt):
        h = state[0]
        hr = bb.emit(relax.op.matmul(h, relax.op.permute_dims(rd)))  # (batch, 3H), no bias
        z = bb.emit(fns[0](_clip(relax.op.add(_gate(bb, xt, 0, hidden), _gate(bb, hr, 0, hidden)),
                                 attr)))
        rg = bb.emit(fns[0](_clip(relax.op.add(_gate(bb, xt, 1, hidden),
                                               _gate(bb, hr, 1, hidden)), attr)))
        xh = _gate(bb, xt, 2, hidden)  # holds Wbh + Rbh: Rbh is taken back out below
        rbh = rb if inputs[3] is None else bb.emit(relax.op.strided_slice(
            rb, axes=[0], begin=[2 * hidden], end=[3 * hidden]))
        xh = relax.op.subtract(xh, rbh)
        if attr.get("linear_before_reset", 0):
            inner = relax.op.multiply(rg, relax.op.add(_gate(bb, hr, 2, hidden), rbh))
        else:
            rh = _gate(bb, relax.op.permute_dims(rd), 2, hidden)  # (H, H) columns
            inner = relax.op.add(relax.op.matmul(relax.op.multiply(rg, h), rh), rbh)
        cand = bb.emit(fns[1](_clip(relax.op.add(xh, inner), attr)))
        one = relax.const(1, dt)
        return [bb.emit(relax.op.add(relax.op.multiply(relax.op.subtract(one, z), cand),
                                     relax.op.multiply(z, h)))]


@converter("LSTM")
class LSTM(_Recurrent):
    """Gates i, o, f, c with optional peepholes P (i, o, f) and clip."""

    kind = "LSTM"

    @classmethod
    def _initial(cls, bb, inputs, d, batch, hidden, dt):
        (h,) = super()._initial(bb, inputs, d, batch, hidden, dt)
        c0 = inputs[6]
        c = bb.emit(relax.op.squeeze(_pick(c0, d), [0])) if c0 is not None else \
            bb.emit(relax.op.full((batch, hidden), relax.const(0, dt), dt))
        return [h, c]

    @classmethod
    def _step(cls, bb, xt, state, rd, rb, fns, inputs, d, hidden, attr, dt):
        h, c = state
        pre = bb.emit(relax.op.add(xt, relax.op.matmul(h, relax.op.permute_dims(rd))))
        p = inputs[7]
        peep = bb.emit(relax.op.squeeze(_pick(p, d), [0])) if p is not None else None

        def gate(i, with_cell=None, peep_index=None):
            v = _gate(bb, pre, i, hidden)
            if peep is not None and with_cell is not None:
                pi = relax.op.strided_slice(peep, axes=[0], begin=[peep_index * hidden],
                                            end=[(peep_index + 1) * hidden])
                v = relax.op.add(v, relax.op.multiply(pi, with_cell))
            return _clip(v, attr)

        i = bb.emit(fns[0](gate(0, c, 0)))
        f = bb.emit(fns[0](gate(2, c, 2)))
        g = bb.emit(fns[1](gate(3)))
        c_new = bb.emit(relax.op.add(relax.op.multiply(f, c), relax.op.multiply(i, g)))
        o = bb.emit(fns[0](gate(1, c_new, 1)))
        return [bb.emit(relax.op.multiply(o, fns[2](c_new))), c_new]

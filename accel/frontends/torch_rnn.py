"""accel's converters for aten.lstm.input and aten.gru.input: all layers and directions,
batch_first, LSTM projections, returning (output, h_n[, c_n]) as torch does.

TVM's own lstm.input converter refuses num_layers > 1 and returns only the output sequence, so
``h_n``/``c_n`` read back as that sequence. These keep the ops whole through decomposition and
unroll them here: the input projection of all time steps is one matmul, each step one matmul
with the recurrent weights.
"""

from __future__ import annotations


def preserved_ops() -> tuple:
    """The aten overloads these converters take whole (kept out of torch's decomposition)."""
    import torch

    return torch.ops.aten.lstm.input, torch.ops.aten.gru.input


def converters() -> dict:
    """The ``custom_convert_map`` for TVM's ExportedProgram importer."""
    return {"lstm.input": _lstm, "gru.input": _gru}


class _Rnn:
    """One recurrent op's arguments, read off the fx node (see aten::lstm.input's schema)."""

    def __init__(self, node, importer, gates: int):
        args = importer.retrieve_args(node)
        self.bb = importer.block_builder
        self.x, hx, self.params = args[0], args[1], list(args[2])
        self.hx = list(hx) if isinstance(hx, list | tuple) else [hx]
        self.has_biases, self.num_layers = bool(args[3]), int(args[4])
        self.directions = 2 if args[7] else 1
        self.batch_first = bool(args[8])
        self.gates = gates
        self.per_direction = len(self.params) // (self.num_layers * self.directions)

    def emit(self, expr):
        return self.bb.emit(expr)

    def weights(self, layer: int, direction: int):
        """(w_ih, w_hh, b_ih, b_hh, w_hr) of one layer and direction; missing ones are None."""
        start = (layer * self.directions + direction) * self.per_direction
        chunk = self.params[start:start + self.per_direction]
        w_ih, w_hh = chunk[0], chunk[1]
        b_ih, b_hh = (chunk[2], chunk[3]) if self.has_biases else (None, None)
        w_hr = chunk[-1] if self.per_direction in (3, 5) else None
        return w_ih, w_hh, b_ih, b_hh, w_hr

    def sequence(self):
        """The input as (seq, batch, features)."""
        from tvm import relax

        return self.emit(relax.op.permute_dims(self.x, [1, 0, 2])) if self.batch_first else self.x

    def initial(self, which: int, index: int):
        from tvm import relax

        return self.emit(relax.op.take(self.hx[which], relax.const(index, "int64"), axis=0))

    def linear(self, x, weight, bias=None):
        from tvm import relax

        y = self.emit(relax.op.matmul(x, relax.op.permute_dims(weight, [1, 0])))
        return self.emit(relax.op.add(y, bias)) if bias is not None else y

    def step_input(self, projected, t: int):
        from tvm import relax

        return self.emit(relax.op.take(projected, relax.const(t, "int64"), axis=0))

    def seq_len(self) -> int:
        shape = self.x.ty.shape.values
        dim = shape[1] if self.batch_first else shape[0]
        value = getattr(dim, "value", None)
        if value is None:
            raise NotImplementedError(f"a recurrent layer over a dynamic sequence length {dim}")
        return int(value)

    def run(self, cell):
        """Every layer and direction; returns (output, [final states per state kind])."""
        from tvm import relax

        x, length = self.sequence(), self.seq_len()
        finals: list[list] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.directions):
                index = layer * self.directions + direction
                steps = range(length - 1, -1, -1) if direction else range(length)
                seq, states = cell(self, x, self.weights(layer, direction), index, steps)
                outputs.append(seq)
                finals.append(states)
            x = outputs[0] if len(outputs) == 1 else self.emit(relax.op.concat(outputs, axis=2))
        out = self.emit(relax.op.permute_dims(x, [1, 0, 2])) if self.batch_first else x
        stacked = [self.emit(relax.op.stack([f[k] for f in finals], axis=0))
                   for k in range(len(finals[0]))]
        return self.emit(relax.Tuple([out, *stacked]))


def _stack_steps(rnn: _Rnn, hs: dict, steps):
    from tvm import relax

    return rnn.emit(relax.op.stack([hs[t] for t in sorted(steps)], axis=0))


def _lstm_cell(rnn: _Rnn, x, weights, index: int, steps):
    from tvm import relax

    w_ih, w_hh, b_ih, b_hh, w_hr = weights
    bias = rnn.emit(relax.op.add(b_ih, b_hh)) if b_ih is not None else None
    projected = rnn.linear(x, w_ih, bias)  # (seq, batch, 4 * hidden): all steps at once
    h, c = rnn.initial(0, index), rnn.initial(1, index)
    hs = {}
    for t in steps:
        gates = rnn.emit(relax.op.add(rnn.step_input(projected, t), rnn.linear(h, w_hh)))
        i, f, g, o = (rnn.emit(relax.TupleGetItem(rnn.emit(relax.op.split(gates, 4, axis=1)), k))
                      for k in range(4))
        c = rnn.emit(relax.op.add(relax.op.multiply(relax.op.sigmoid(f), c),
                                  relax.op.multiply(relax.op.sigmoid(i), relax.op.tanh(g))))
        h = rnn.emit(relax.op.multiply(relax.op.sigmoid(o), relax.op.tanh(c)))
        if w_hr is not None:
            h = rnn.linear(h, w_hr)
        hs[t] = h
    return _stack_steps(rnn, hs, steps), (h, c)


def _gru_cell(rnn: _Rnn, x, weights, index: int, steps):
    from tvm import relax

    w_ih, w_hh, b_ih, b_hh, _ = weights
    projected = rnn.linear(x, w_ih, b_ih)  # (seq, batch, 3 * hidden)
    h = rnn.initial(0, index)
    hs = {}
    for t in steps:
        xi = rnn.emit(relax.op.split(rnn.step_input(projected, t), 3, axis=1))
        hh = rnn.emit(relax.op.split(rnn.linear(h, w_hh, b_hh), 3, axis=1))
        x_r, x_z, x_n = (relax.TupleGetItem(xi, k) for k in range(3))
        h_r, h_z, h_n = (relax.TupleGetItem(hh, k) for k in range(3))
        r = rnn.emit(relax.op.sigmoid(relax.op.add(x_r, h_r)))
        z = rnn.emit(relax.op.sigmoid(relax.op.add(x_z, h_z)))
        n = rnn.emit(relax.op.tanh(relax.op.add(x_n, relax.op.multiply(r, h_n))))
        h = rnn.emit(relax.op.add(n, relax.op.multiply(z, relax.op.subtract(h, n))))
        hs[t] = h
    return _stack_steps(rnn, hs, steps), (h,)


def _lstm(node, importer):
    return _Rnn(node, importer, 4).run(_lstm_cell)


def _gru(node, importer):
    return _Rnn(node, importer, 3).run(_gru_cell)

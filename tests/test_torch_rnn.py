"""nn.LSTM and nn.GRU through accel's own converters (accel/frontends/torch_rnn.py), against
eager torch: output and final states, for every layer count, direction and layout."""

from __future__ import annotations

import numpy as np
import pytest

import accel

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'accel[dev]')")
pytestmark = [pytest.mark.e2e, pytest.mark.frontends]


class Recurrent(torch.nn.Module):
    """An RNN returning its output and every final state; optionally given initial states."""

    def __init__(self, rnn, with_state: bool):
        super().__init__()
        self.rnn, self.with_state = rnn, with_state

    def forward(self, x, *state):
        if self.with_state:
            out, final = self.rnn(x, state if len(state) > 1 else state[0])
        else:
            out, final = self.rnn(x)
        return (out, *final) if isinstance(final, tuple) else (out, final)


def _inputs(rnn, with_state: bool, batch=3, seq=5):
    gen = torch.Generator().manual_seed(1)
    shape = (batch, seq, rnn.input_size) if rnn.batch_first else (seq, batch, rnn.input_size)
    states = rnn.num_layers * (2 if rnn.bidirectional else 1)
    h_size = getattr(rnn, "proj_size", 0) or rnn.hidden_size
    x = torch.randn(shape, generator=gen)
    if not with_state:
        return (x,)
    h = torch.randn(states, batch, h_size, generator=gen)
    if isinstance(rnn, torch.nn.GRU):
        return x, h
    return x, h, torch.randn(states, batch, rnn.hidden_size, generator=gen)


def _check(rnn, with_state, tmp_path):
    torch.manual_seed(0)
    module = Recurrent(rnn, with_state).eval()
    inputs = _inputs(rnn, with_state)
    artifact = accel.compile(module, "host", example_inputs=inputs, output=tmp_path / "r.accel")
    got = accel.load(artifact.path)(*[t.numpy() for t in inputs])
    with torch.no_grad():
        expected = module(*inputs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-4, atol=1e-5)


_SLOW = pytest.mark.slow  # the default run keeps one case per feature

LSTM_CASES = [  # (num_layers, bidirectional, batch_first, with_state)
    (1, False, True, True), (2, False, False, True), (2, True, True, False),
    (3, True, True, True),
    pytest.param(1, False, False, False, marks=_SLOW), pytest.param(2, False, True, False,
                                                                    marks=_SLOW),
    pytest.param(1, True, False, True, marks=_SLOW), pytest.param(2, True, False, True,
                                                                  marks=_SLOW),
]


@pytest.mark.parametrize("layers,bidirectional,batch_first,with_state", LSTM_CASES)
def test_lstm_output_and_final_states_match_eager_torch(layers, bidirectional, batch_first,
                                                        with_state, tmp_path):
    torch.manual_seed(0)
    rnn = torch.nn.LSTM(4, 6, num_layers=layers, bidirectional=bidirectional,
                        batch_first=batch_first)
    _check(rnn, with_state, tmp_path)


@pytest.mark.parametrize("kwargs", [{"proj_size": 3, "num_layers": 2, "bias": False},
                                    pytest.param({"bias": False}, marks=_SLOW),
                                    pytest.param({"proj_size": 2, "bidirectional": True},
                                                 marks=_SLOW)])
def test_lstm_without_bias_or_with_projection_matches_eager_torch(kwargs, tmp_path):
    torch.manual_seed(0)
    _check(torch.nn.LSTM(4, 6, **kwargs), True, tmp_path)


@pytest.mark.parametrize("layers,bidirectional,batch_first,with_state", [
    (2, False, True, True), (2, True, False, True),
    pytest.param(1, False, False, False, marks=_SLOW), pytest.param(1, True, True, False,
                                                                    marks=_SLOW)])
def test_gru_output_and_final_state_match_eager_torch(layers, bidirectional, batch_first,
                                                      with_state, tmp_path):
    torch.manual_seed(0)
    rnn = torch.nn.GRU(4, 6, num_layers=layers, bidirectional=bidirectional,
                       batch_first=batch_first)
    _check(rnn, with_state, tmp_path)


def test_lstm_and_gru_reach_accel_converters_whole(monkeypatch):
    """torch's decomposition keeps aten.lstm/aten.gru, and accel's converters (not TVM's) run."""
    from accel.frontends import torch_rnn

    calls = []
    original = torch_rnn.converters

    def counting():
        return {name: (lambda node, importer, f=f, name=name: calls.append(name)
                       or f(node, importer)) for name, f in original().items()}
    monkeypatch.setattr(torch_rnn, "converters", counting)

    class Both(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.gru = torch.nn.LSTM(4, 6, num_layers=2), torch.nn.GRU(6, 5)

        def forward(self, x):
            return self.gru(self.lstm(x)[0])[1]

    from accel.model import load_model

    model = load_model(Both().eval(), example_inputs=(torch.randn(3, 2, 4),))
    assert sorted(calls) == ["gru.input", "lstm.input"]
    assert [o.shape for o in model.outputs] == [(1, 2, 5)]


def test_lstm_with_a_dynamic_batch_compiles_at_a_pinned_batch(tmp_path):
    torch.manual_seed(0)
    module = Recurrent(torch.nn.LSTM(4, 6, num_layers=2, batch_first=True), False).eval()
    program = torch.export.export(module, (torch.randn(2, 5, 4),),
                                  dynamic_shapes={"x": {0: torch.export.Dim("batch", max=32)}})
    x = torch.randn(7, 5, 4)
    artifact = accel.compile(program, "host", output=tmp_path / "l.accel",
                             options=accel.CompileOptions(input_shapes={"x": (7, 5, 4)}))
    with torch.no_grad():
        expected = module(x)
    for g, e in zip(accel.load(artifact.path)(x.numpy()), expected, strict=True):
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-4, atol=1e-5)

"""Static int8 post-training quantization: calibrate activation ranges, quantize each conv and
matmul (per-channel int8 weights, per-tensor int8/uint8 activations), keep sensitive ones float.

The result is the model with quantize/dequantize pairs around each quantized site and its
weights stored as int8 constants; the pipeline's LowerQDQToInteger makes it integer compute.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UsageError, did_you_mean
from ..passes.insert_qdq import InsertQDQ, SiteQuant
from .host import HostRunner, prepare, with_extra_outputs
from .observers import Observer
from .sites import Site, find_sites, source_names

#: calibration sets used to measure errors (sensitivity, report); more only cost time
ERROR_SETS = 4


def quantize_int8(model, spec, options, calibration):
    """``model`` with its convs and matmuls quantized to int8 from ``calibration`` (input dicts)."""
    prepared = prepare(model.mod)
    sites = find_sites(prepared["main"])
    aliases = source_names(prepared["main"], model.layers)
    keep = _resolve_names(options.keep_float, [s.name for s in sites], aliases)
    observers, reference, sample = _calibrate(model, prepared, sites, calibration, options)
    table = {s.name: site_quant(s, observers[s.name]) for s in sites}
    rows = {s.name: _row(s, observers[s.name], table[s.name], sample.get(s.name)) for s in sites}
    kept = {name: "keep_float option" for name in keep}
    if options.sensitivity is not None:
        _sensitivity(model, prepared, table, kept, rows, reference, options.sensitivity)
    chosen = {name: q for name, q in table.items() if name not in kept}
    mod = InsertQDQ(chosen)(prepared) if chosen else prepared
    report = _report(options, calibration, sites, rows, kept, table, aliases)
    if options.sensitivity is not None and chosen:
        report["output_error"] = _output_error(model, mod, reference)
    return dataclasses.replace(model, mod=mod, quantization=report)


def _resolve_names(keep_float, names, aliases) -> set[str]:
    """The site names that ``keep_float`` means: site names or the frontend's layer names."""
    by_alias = {alias: name for name, alias in aliases.items()}
    valid = [*names, *by_alias]
    for name in keep_float:
        if name not in names and name not in by_alias:
            raise UsageError(f"--keep-float: the model has no quantizable layer '{name}'",
                             hint=did_you_mean(name, valid) if valid else
                             "the model has no conv or matmul layers")
    return {by_alias.get(name, name) for name in keep_float}


def _calibrate(model, prepared, sites, calibration, options):
    """Observers per site input, float reference outputs and one set's site inputs."""
    calib = with_extra_outputs(prepared, lambda f: [a for s in find_sites(f)
                                                    for a in s.activations])
    keys = [(s.name, i) for s in sites for i in range(len(s.activations))]
    observers = {s.name: [Observer(options.observer, options.percentile)
                          for _ in s.activations] for s in sites}
    runner = HostRunner(model, calib)
    reference, sample = [], {}
    for index, inputs in enumerate(calibration):
        outs = runner.run(inputs)
        own, extra = outs[:len(outs) - len(keys)], outs[len(outs) - len(keys):]
        if index < ERROR_SETS:
            reference.append((inputs, own))
        for (name, i), value in zip(keys, extra, strict=True):
            observers[name][i].update(value)
            if index == 0:
                sample.setdefault(name, []).append(value)
    return observers, reference, sample


def site_quant(site: Site, observers: list[Observer]) -> SiteQuant:
    """Per-tensor activation scales from the observers; per-channel symmetric int8 weights."""
    acts = tuple(_activation_scale(o) for o in observers)
    if site.weight_axis is None:
        return SiteQuant(acts)
    weight = site.call.args[1].value.numpy()
    q, scale = quantize_weight(weight, site.weight_axis)
    return SiteQuant(acts, q, scale)


def _activation_scale(observer: Observer) -> tuple[float, str]:
    levels, dtype = (255, "uint8") if observer.unsigned else (127, "int8")
    return max(observer.threshold(), 1e-8) / levels, dtype


def quantize_weight(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output channel (``axis``): (int8 weight, float32 scale per channel)."""
    others = tuple(i for i in range(weight.ndim) if i != axis)
    absmax = np.abs(weight).max(axis=others)
    scale = (np.maximum(absmax, 1e-12) / 127.0).astype(np.float32)
    shape = [1] * weight.ndim
    shape[axis] = -1
    q = np.clip(np.round(weight / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def _relative(error, reference) -> float:
    norm = float(np.linalg.norm(reference))
    return float(np.linalg.norm(error)) / norm if norm > 0 else float(np.linalg.norm(error))


def _fake(values: np.ndarray, scale: float, dtype: str) -> np.ndarray:
    lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
    return np.clip(np.round(values / scale), lo, hi) * scale


def _row(site, observers, quant: SiteQuant, sample) -> dict:
    """The report line of one site: ranges, scales and the quantization error of its inputs."""
    inputs = []
    for i, (obs, (scale, dtype)) in enumerate(zip(observers, quant.activations, strict=True)):
        entry = {"dtype": dtype, "min": obs.min, "max": obs.max,
                 "threshold": obs.threshold(), "scale": scale}
        if sample is not None:
            entry["error"] = _relative(_fake(sample[i], scale, dtype) - sample[i], sample[i])
        inputs.append(entry)
    row = {"name": site.name, "kind": site.kind, "inputs": inputs}
    if quant.weight is not None:
        weight = site.call.args[1].value.numpy()
        shape = [1] * weight.ndim
        shape[site.weight_axis] = -1
        back = quant.weight.astype(np.float32) * quant.weight_scale.reshape(shape)
        row["weight_scale"] = {"min": float(quant.weight_scale.min()),
                               "max": float(quant.weight_scale.max()),
                               "channels": int(quant.weight_scale.size)}
        row["weight_error"] = _relative(back - weight, weight)
    return _json_floats(row)


def _json_floats(value):
    if isinstance(value, dict):
        return {k: _json_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_floats(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(f"{float(value):.6g}")
    return value


def _output_error(model, mod, reference) -> float:
    """The largest relative error of the model's outputs over the reference sets."""
    runner = HostRunner(model, mod)
    worst = 0.0
    for inputs, want in reference:
        got = runner.run(inputs)
        flat_got = np.concatenate([g.ravel().astype(np.float64) for g in got])
        flat_want = np.concatenate([w.ravel().astype(np.float64) for w in want])
        worst = max(worst, _relative(flat_got - flat_want, flat_want))
    return float(f"{worst:.6g}")


def _sensitivity(model, prepared, table, kept, rows, reference, bound) -> None:
    """Quantize each site alone and measure the output error; above ``bound`` it stays float."""
    for name, quant in table.items():
        if name in kept:
            continue
        error = _output_error(model, InsertQDQ({name: quant})(prepared), reference)
        rows[name]["output_error"] = error
        if error > bound:
            kept[name] = f"sensitivity: output error {error:.4g} > {bound:g}"


def _report(options, calibration, sites, rows, kept, table, aliases) -> dict:
    weights = [q for n, q in table.items() if q.weight is not None and n not in kept]
    int8_bytes = sum(q.weight.nbytes for q in weights)
    return {
        "mode": options.mode.value, "observer": options.observer,
        "calibration_sets": len(calibration),
        "sites": [{**rows[s.name], "layer": aliases.get(s.name),
                   "quantized": s.name not in kept, "kept_float": kept.get(s.name)}
                  for s in sites],
        "quantized": sum(s.name not in kept for s in sites),
        "kept_float": len(kept),
        "weight_bytes": {"int8": int8_bytes, "float32": 4 * int8_bytes},
    }

"""The compile cache: content keys, policies, corrupt entries, concurrent writers, LRU, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import onnx
import pytest

import accel
from accel import errors
from accel.cache import CachePolicy, CompileCache, parse_size
from accel.cli import main
from accel.options import CompileOptions

from . import models

pytestmark = pytest.mark.e2e


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A cache folder of this test's own (the session-wide one is shared by other tests)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ACCEL_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def onnx_file(tmp_path):
    path = tmp_path / "mlp.onnx"
    onnx.save(models.mlp_two_inputs(), path)
    return path


def _no_import(monkeypatch):
    """Make any model import fail: a compile that still succeeds did no work."""
    import accel.compiler

    def forbidden(*_a, **_k):
        raise AssertionError("the model was imported again: not a cache hit")

    monkeypatch.setattr(accel.compiler, "load_model", forbidden)


def _entries(cache_dir) -> list:
    return CompileCache(cache_dir / "artifacts").entries()


def test_a_repeated_compile_is_a_hit_that_imports_nothing(cache_dir, onnx_file, tmp_path,
                                                          monkeypatch):
    first = accel.compile(onnx_file, output=tmp_path / "a.accel")
    assert not first.cached and len(_entries(cache_dir)) == 1
    _no_import(monkeypatch)
    second = accel.compile(onnx_file, output=tmp_path / "b.accel")
    assert second.cached and second.manifest["cache_key"] == first.manifest["cache_key"]
    feeds = models.feeds_for(models.mlp_two_inputs())
    for x, y in zip(accel.load(first.path)(**feeds), accel.load(second.path)(**feeds),
                    strict=True):
        np.testing.assert_array_equal(x, y)


def test_the_key_covers_model_options_and_target(cache_dir, onnx_file, tmp_path):
    keys = {accel.compile(onnx_file, output=tmp_path / "1.accel").manifest["cache_key"],
            accel.compile(onnx_file, output=tmp_path / "2.accel",
                          options=CompileOptions(opt_level="O0")).manifest["cache_key"],
            accel.compile(models.conv_block(), output=tmp_path / "3.accel")
            .manifest["cache_key"],
            accel.compile(onnx_file, "aarch64-linux", output=tmp_path / "4.accel")
            .manifest["cache_key"]}
    assert len(keys) == 4 and len(_entries(cache_dir)) == 4


def test_a_changed_model_file_is_a_miss(cache_dir, onnx_file, tmp_path):
    accel.compile(onnx_file, output=tmp_path / "a.accel")
    model = models.mlp_two_inputs()
    weights = np.ones((16, 16), np.float32)  # same graph, new weights
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(weights, "w"))
    onnx.save(model, onnx_file)
    assert not accel.compile(onnx_file, output=tmp_path / "b.accel").cached


def test_policy_off_neither_reads_nor_writes(cache_dir, onnx_file, tmp_path):
    accel.compile(onnx_file, output=tmp_path / "a.accel", cache="off")
    assert _entries(cache_dir) == []
    accel.compile(onnx_file, output=tmp_path / "a.accel")
    assert not accel.compile(onnx_file, output=tmp_path / "b.accel", cache="off").cached


def test_policy_readonly_reads_but_never_writes(cache_dir, onnx_file, tmp_path):
    assert not accel.compile(onnx_file, output=tmp_path / "a.accel", cache="readonly").cached
    assert _entries(cache_dir) == []
    accel.compile(onnx_file, output=tmp_path / "b.accel")
    assert accel.compile(onnx_file, output=tmp_path / "c.accel", cache="readonly").cached


def test_policy_redo_rebuilds_and_replaces_the_entry(cache_dir, onnx_file, tmp_path):
    first = accel.compile(onnx_file, output=tmp_path / "a.accel")
    again = accel.compile(onnx_file, output=tmp_path / "b.accel", cache="redo")
    assert not again.cached and again.manifest["created"] >= first.manifest["created"]
    assert len(_entries(cache_dir)) == 1


def test_the_env_var_sets_the_policy_and_the_argument_wins(cache_dir, onnx_file, tmp_path,
                                                           monkeypatch):
    accel.compile(onnx_file, output=tmp_path / "a.accel")
    monkeypatch.setenv("ACCEL_CACHE", "off")
    assert not accel.compile(onnx_file, output=tmp_path / "b.accel").cached
    assert accel.compile(onnx_file, output=tmp_path / "c.accel", cache="on").cached


def test_an_unknown_policy_lists_the_valid_ones():
    with pytest.raises(errors.UsageError, match="'sometimes'.*on, off, readonly, redo"):
        CachePolicy.parse("sometimes")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other-library"])
def test_a_corrupt_entry_is_detected_and_rebuilt(damage, cache_dir, onnx_file, tmp_path):
    entry = accel.compile(onnx_file).path
    data = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        entry.write_bytes(os.urandom(len(data)))
    else:  # a valid zip whose library no longer matches the manifest's sha256
        with zipfile.ZipFile(entry) as zf:
            members = {n: zf.read(n) for n in zf.namelist()}
        members["lib/model.so"] += b"\0"
        with zipfile.ZipFile(entry, "w") as zf:
            for name, blob in members.items():
                zf.writestr(name, blob)
    with pytest.warns(UserWarning, match="corrupt entry"):
        rebuilt = accel.compile(onnx_file, output=tmp_path / "r.accel")
    assert not rebuilt.cached
    feeds = models.feeds_for(models.mlp_two_inputs())
    expected = models.onnxruntime_outputs(models.mlp_two_inputs(), feeds)
    np.testing.assert_allclose(accel.load(rebuilt.path)(**feeds)[0], expected[0], rtol=1e-4,
                               atol=1e-5)
    assert accel.compile(onnx_file).cached  # the entry itself was replaced by a good one


_CONCURRENT = textwrap.dedent("""
    import sys, accel
    artifact = accel.compile(sys.argv[1], output=sys.argv[2])
    print("hit" if artifact.cached else "compiled")
""")


def test_two_processes_compiling_one_key_leave_one_good_entry(cache_dir, onnx_file, tmp_path):
    env = {**os.environ, "ACCEL_CACHE_DIR": str(cache_dir)}
    procs = [subprocess.Popen([sys.executable, "-c", _CONCURRENT, str(onnx_file),
                               str(tmp_path / f"out{i}.accel")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert sorted(out.strip() for out, _ in results) == ["compiled", "hit"]
    entries = _entries(cache_dir)
    assert len(entries) == 1
    assert [p.name for p in (cache_dir / "artifacts").iterdir()
            if p.name.endswith(".tmp")] == []
    feeds = models.feeds_for(models.mlp_two_inputs())
    a, b = (accel.load(tmp_path / f"out{i}.accel")(**feeds) for i in range(2))
    np.testing.assert_array_equal(a[0], b[0])


def test_the_size_cap_evicts_the_least_recently_used(cache_dir, monkeypatch):
    builds = {**models.ALL_ONNX, "relu": models.dynamic_batch}
    options = CompileOptions(input_shapes={"x": (2, 4)})
    built = {name: accel.compile(build(), options=options if name == "relu" else None).path
             for name, build in builds.items()}
    for i, name in enumerate(["conv_block", "mlp_two_inputs", "int_input_embedding", "relu"]):
        os.utime(built[name], (1000 + i, 1000 + i))  # conv_block is the oldest
    assert accel.compile(models.conv_block()).cached  # a hit makes it the newest
    total = CompileCache.default().total_bytes()
    # 1 KiB under: a re-written manifest can be a few bytes shorter (its timings vary in length),
    # and one evicted artifact (tens of KiB) must still be enough.
    monkeypatch.setenv("ACCEL_CACHE_MAX_SIZE", str(total - 1024))
    accel.compile(models.int_input_embedding(), cache="redo")  # a write prunes to the cap
    left = {e.path for e in CompileCache.default().entries()}
    assert left == set(built.values()) - {built["mlp_two_inputs"]}
    assert CompileCache.default().total_bytes() <= total - 1


def test_a_hit_can_be_delivered_signed(cache_dir, onnx_file, tmp_path):
    accel.compile(onnx_file, output=tmp_path / "plain.accel")
    signed = accel.compile(onnx_file, output=tmp_path / "signed.accel", signing_key=b"k")
    assert signed.cached
    accel.load(signed.path, signing_key=b"k")
    with pytest.raises(errors.ArtifactError, match="not signed"):
        accel.load(tmp_path / "plain.accel", signing_key=b"k")


def test_cli_cache_list_prune_and_clear(cache_dir, onnx_file, tmp_path, capsys):
    assert main(["compile", str(onnx_file), "-o", str(tmp_path / "a.accel")]) == 0
    assert main(["compile", str(onnx_file), "-o", str(tmp_path / "a.accel")]) == 0
    assert "from the compile cache" in capsys.readouterr().out
    assert main(["cache", "list"]) == 0
    listing = capsys.readouterr().out
    assert str(onnx_file) in listing and "1 entries" in listing
    assert main(["cache", "prune", "--max-size", "0"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    accel.compile(onnx_file)
    assert main(["cache", "clear"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out and _entries(cache_dir) == []


def test_cli_rejects_a_bad_policy_and_a_bad_size(capsys, onnx_file, tmp_path):
    assert main(["compile", str(onnx_file), "-o", str(tmp_path / "a.accel"),
                 "--cache", "maybe"]) == errors.UsageError.exit_code
    assert main(["cache", "prune", "--max-size", "lots"]) == errors.UsageError.exit_code
    err = capsys.readouterr().err
    assert "unknown cache policy 'maybe'" in err and "bad cache size 'lots'" in err


@pytest.mark.unit
def test_sizes_parse_with_units():
    assert parse_size("500M") == 500 << 20 and parse_size("8G") == 8 << 30
    assert parse_size("1024") == 1024 and parse_size("2KiB") == 2048 and parse_size(None) is None

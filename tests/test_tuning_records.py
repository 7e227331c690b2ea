"""Tuning database files and the record store, on synthetic records (no TVM, no measuring)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from accel.tuning import database
from accel.tuning.options import RPCOptions, TuneOptions, parse_duration
from accel.tuning.workdir import TunerBusyError, WorkDir

pytestmark = pytest.mark.unit


def _record(index: int, secs: float | None) -> str:
    run_secs = None if secs is None else [secs]
    return json.dumps([index, [["trace"], run_secs, {"kind": "llvm"}, []]])


def _folder(tmp_path, workloads, records, name="db"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / database.WORKLOADS).write_text(
        "".join(json.dumps([h, f"mod-{h}"]) + "\n" for h in workloads))
    (folder / database.RECORDS).write_text("".join(r + "\n" for r in records))
    return folder


def test_trials_and_best_per_workload_ignore_failures(tmp_path):
    folder = _folder(tmp_path, ["a", "b"], [_record(0, 3e-6), _record(0, 1e-6),
                                            _record(1, 1e10), _record(1, None)])
    db = database.read(folder)
    assert db.trials() == {"a": 2, "b": 2}
    assert db.best() == {"a": 1e-6} and db.failures() == 2


def test_a_torn_last_line_is_skipped_with_a_warning_and_repaired(tmp_path):
    folder = _folder(tmp_path, ["a"], [_record(0, 2e-6), _record(0, 1e-6)])
    with open(folder / database.RECORDS, "a") as f:
        f.write(_record(0, 5e-7)[:17])  # what a kill -9 mid-write leaves
    with pytest.warns(UserWarning, match="skipped 1 corrupt or truncated"):
        db = database.read(folder, repair=True)
    assert db.trials() == {"a": 2}
    assert len((folder / database.RECORDS).read_text().splitlines()) == 2
    database.read(folder)  # repaired: no warning left to give


def test_a_record_for_an_unknown_workload_is_corrupt(tmp_path):
    folder = _folder(tmp_path, ["a"], [_record(0, 1e-6), _record(5, 1e-6)])
    with pytest.warns(UserWarning, match="skipped 1"):
        assert database.read(folder).trials() == {"a": 1}


def test_prune_keeps_the_best_valid_record_of_each_workload(tmp_path):
    folder = _folder(tmp_path, ["a", "b", "c"], [_record(0, 3e-6), _record(0, 1e-6),
                                                 _record(1, 1e10), _record(2, 2e-6)])
    pruned = database.pruned(database.read(folder))
    assert [h for h, _ in pruned.workloads] == ["a", "c"]  # b has no valid record
    assert pruned.best() == {"a": 1e-6, "c": 2e-6} and len(pruned.records) == 2


def test_merge_matches_workloads_by_hash_and_renumbers(tmp_path):
    one = database.read(_folder(tmp_path, ["a", "b"], [_record(0, 3e-6), _record(1, 4e-6)],
                                "one"))
    two = database.read(_folder(tmp_path, ["b", "c"], [_record(0, 1e-6), _record(1, 5e-6)],
                                "two"))
    merged = database.merged(one, two)
    assert [h for h, _ in merged.workloads] == ["a", "b", "c"]
    assert merged.trials() == {"a": 1, "b": 2, "c": 1}
    assert database.pruned(merged).best() == {"a": 3e-6, "b": 1e-6, "c": 5e-6}


_HOLD = textwrap.dedent("""
    import sys, time
    from accel.tuning.workdir import WorkDir
    with WorkDir(sys.argv[1]).locked():
        print("locked", flush=True)
        time.sleep(60)
""")


def test_a_second_tuner_on_one_work_dir_is_refused(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(TunerBusyError, match="another tuner is using this work dir"), \
                WorkDir(tmp_path).locked():
            pass
    finally:
        holder.kill()
        holder.wait()
    with WorkDir(tmp_path).locked():  # a dead holder (even kill -9) leaves no stale lock
        pass


def test_durations_budgets_and_rpc_addresses_parse_with_clear_errors():
    from accel.errors import UsageError

    assert parse_duration("8h") == 8 * 3600 and parse_duration("90") == 90
    assert parse_duration("1.5m") == 90
    with pytest.raises(UsageError, match="bad duration 'soon'"):
        parse_duration("soon")
    assert RPCOptions.parse("127.0.0.1:9190", "rpi4").tracker_port == 9190
    with pytest.raises(UsageError, match="HOST:PORT"):
        RPCOptions.parse("localhost", "rpi4")
    with pytest.raises(UsageError, match="needs --rpc-key"):
        RPCOptions.parse("localhost:9190", None)
    with pytest.raises(UsageError, match="trials must be at least 1"):
        TuneOptions(trials=0)
    assert TuneOptions(trials=20).total_trials(5) == 20

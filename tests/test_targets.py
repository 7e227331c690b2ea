"""Named targets: the catalog, validation, did-you-mean, host detection, fingerprints."""

from __future__ import annotations

import platform

import pytest

from accel.errors import TargetError
from accel.target import get_target, list_targets

pytestmark = pytest.mark.unit

REQUIRED = {"host", "x86-64-avx2", "x86-64-avx512", "aarch64-linux", "rpi4", "rpi5",
            "android-arm64", "armv7-linux", "mali-g78", "adreno-740", "cuda-sm80", "cuda-sm90",
            "jetson-orin", "cortex-m4", "cortex-m7", "cortex-m55"}


def test_catalog_has_every_required_target():
    assert {t.name for t in list_targets()} >= REQUIRED


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_target_resolves_to_a_tvm_target(name):
    spec = get_target(name)
    resolved = spec.resolved()
    assert resolved["kind"] in {"llvm", "opencl", "cuda", "c"}
    assert len(spec.fingerprint()) == 16
    assert spec.fingerprint() == get_target(name).fingerprint()


def test_unknown_target_suggests_the_closest_name():
    with pytest.raises(TargetError, match="did you mean 'rpi4'") as info:
        get_target("rpi-4")
    assert "valid:" in str(info.value)


def test_host_is_detected_from_this_cpu():
    spec = get_target(None)
    assert spec.name == "host"
    assert spec.arch == platform.machine()
    assert spec.resolved()["mcpu"] not in ("", "generic")


def test_fingerprints_differ_between_targets():
    prints = {get_target(n).fingerprint() for n in REQUIRED}
    assert len(prints) == len(REQUIRED)


def test_a_target_file_with_an_unknown_key_is_rejected(tmp_path):
    (tmp_path / "mine.toml").write_text('family = "x86-cpu"\nflavour = "x"\n[tvm]\nkind = "llvm"\n'
                                        '[runtime]\narch = "x86_64"\n')
    with pytest.raises(TargetError, match="unknown key.*flavour"):
        get_target("mine", targets_dir=tmp_path)


def test_a_user_target_folder_adds_targets(tmp_path):
    (tmp_path / "my-box.toml").write_text('family = "x86-cpu"\n[tvm]\nkind = "llvm"\n'
                                          'mcpu = "znver3"\n[runtime]\narch = "x86_64"\n')
    assert get_target("my-box", targets_dir=tmp_path).resolved()["mcpu"] == "znver3"


def test_a_bad_family_lists_the_valid_ones(tmp_path):
    (tmp_path / "odd.toml").write_text('family = "gpu"\n[tvm]\nkind = "llvm"\n'
                                       '[runtime]\narch = "x86_64"\n')
    with pytest.raises(TargetError, match="valid: adreno, arm-cpu, cuda"):
        get_target("odd", targets_dir=tmp_path)

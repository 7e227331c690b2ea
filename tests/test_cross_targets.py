"""Every non-host target compiles the test models; what cannot run here is checked as built."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

import accel
from accel.errors import ArtifactError
from accel.export import ELF_MACHINES, elf_machine

from . import models
from .conftest import require_tool

pytestmark = pytest.mark.e2e

CROSS = {"aarch64-linux": "aarch64-linux-gnu-g++", "rpi4": "aarch64-linux-gnu-g++",
         "rpi5": "aarch64-linux-gnu-g++", "armv7-linux": "arm-linux-gnueabihf-g++",
         "mali-g78": "aarch64-linux-gnu-g++"}
ARCHIVES = ("android-arm64", "adreno-740")
OTHER_X86 = ("x86-64-avx2", "x86-64-avx512")


def _compile(target, name, tmp_path):
    return accel.compile(models.ALL_ONNX[name](), target, output=tmp_path / f"{name}.accel")


@pytest.mark.parametrize("target", sorted(CROSS))
@pytest.mark.parametrize("name", sorted(models.ALL_ONNX))
def test_cross_compiled_library_is_an_elf_for_the_target(target, name, tmp_path):
    require_tool(CROSS[target])
    artifact = _compile(target, name, tmp_path)
    spec_arch = artifact.manifest["runtime"]["arch"]
    assert elf_machine(artifact.library_bytes()) == ELF_MACHINES[spec_arch]


@pytest.mark.parametrize("target", ARCHIVES)
def test_android_targets_export_an_archive_of_aarch64_objects(target, tmp_path):
    artifact = _compile(target, "conv_block", tmp_path)
    assert artifact.manifest["library"]["format"] == "object-archive"
    with tarfile.open(fileobj=io.BytesIO(artifact.library_bytes())) as tar:
        objects = [m for m in tar.getmembers() if m.name.endswith(".o")]
        assert objects
        for member in objects:
            assert elf_machine(tar.extractfile(member).read()) == ELF_MACHINES["aarch64"]


@pytest.mark.parametrize("target", ["mali-g78", "adreno-740"])
def test_opencl_targets_carry_opencl_kernels(target, tmp_path):
    if target == "mali-g78":
        require_tool(CROSS[target])
    artifact = _compile(target, "conv_block", tmp_path)
    source = artifact.read_member("device/kernels.cl").decode()
    assert source.count("__kernel void") >= artifact.manifest["report"]["kernels"] - 1
    assert "get_local_id" in source


@pytest.mark.parametrize("target", OTHER_X86)
@pytest.mark.parametrize("name", sorted(models.ALL_ONNX))
def test_other_x86_targets_compile(target, name, tmp_path):
    artifact = _compile(target, name, tmp_path)
    assert elf_machine(artifact.library_bytes()) == ELF_MACHINES["x86_64"]
    assert artifact.manifest["target"]["tvm"]["mcpu"] in ("haswell", "skylake-avx512")


def test_an_aarch64_artifact_is_refused_on_this_machine_with_a_clear_error(tmp_path):
    require_tool(CROSS["rpi4"])
    artifact = _compile("rpi4", "conv_block", tmp_path)
    with pytest.raises(ArtifactError, match="target 'rpi4' \\(aarch64\\); this machine is"):
        accel.load(artifact.path)


def test_an_object_archive_cannot_be_loaded(tmp_path):
    artifact = _compile("android-arm64", "conv_block", tmp_path)
    with pytest.raises(ArtifactError, match="object archive, to be linked on the device"):
        accel.load(artifact.path)


def test_manifest_names_every_member(tmp_path):
    artifact = _compile("adreno-740", "conv_block", tmp_path)
    names = zipfile.ZipFile(artifact.path).namelist()
    assert names[0] == "manifest.json"
    assert artifact.manifest["library"]["path"] in names


CUDA = ("cuda-sm80", "cuda-sm90", "jetson-orin")


@pytest.mark.parametrize("target", CUDA)
def test_cuda_targets_embed_a_fatbin_and_report_ptxas_usage(target, tmp_path):
    require_tool("nvcc")
    if target == "jetson-orin":
        require_tool(CROSS["rpi4"])
    from accel.cuda import embedded_device_binaries, is_fatbin

    artifact = _compile(target, "conv_block", tmp_path)
    assert any(is_fatbin(b) for b in embedded_device_binaries(artifact.library_bytes()))
    kernels = artifact.manifest["report"]["cuda_kernels"]
    assert len(kernels) == artifact.manifest["report"]["kernels"]
    arch = artifact.manifest["target"]["tvm"]["arch"]
    assert all(k["arch"] == arch and k["registers"] > 0 and k["spill_stores_bytes"] == 0
               for k in kernels)


def test_a_cuda_artifact_without_a_gpu_is_refused_clearly(tmp_path):
    require_tool("nvcc")
    import tvm

    if tvm.cuda(0).exist:
        pytest.skip("this machine has a CUDA GPU: the refusal cannot be observed")
    artifact = _compile("cuda-sm80", "conv_block", tmp_path)
    with pytest.raises(ArtifactError, match="built for a cuda device.*no cuda device 0"):
        accel.load(artifact.path)


@pytest.mark.parametrize("target", ARCHIVES)
def test_android_targets_link_a_shared_library_with_a_named_toolchain(target, tmp_path, capsys):
    """The Debian cross g++ stands in for the NDK's aarch64-linux-android clang++."""
    from accel.cli import main

    cxx = require_tool("aarch64-linux-gnu-g++")
    model = tmp_path / "conv.onnx"
    import onnx

    onnx.save(models.conv_block(), model)
    out = tmp_path / f"{target}.accel"
    assert main(["compile", str(model), "-t", target, "--toolchain", cxx, "-o", str(out)]) == 0
    artifact = accel.open_artifact(out)
    data = artifact.library_bytes()
    assert artifact.manifest["library"] == {**artifact.manifest["library"],
                                            "format": "shared-library", "path": "lib/model.so"}
    assert elf_machine(data) == ELF_MACHINES["aarch64"]
    assert int.from_bytes(data[16:18], "little") == 3  # ET_DYN: a shared object


def test_a_missing_toolchain_is_a_clear_error(tmp_path, capsys):
    from accel.cli import main

    assert main(["compile", "x.onnx", "-t", "android-arm64", "--toolchain",
                 "/no/such/clang++", "-o", str(tmp_path / "a.accel")]) == 10
    assert "toolchain '/no/such/clang++' for target 'android-arm64'" in capsys.readouterr().err

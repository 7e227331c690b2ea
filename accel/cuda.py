"""CUDA code generation without a GPU driver, and per-kernel resource usage of compiled modules."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

from accel import env
from accel.errors import ToolchainError
from accel.fsutil import atomic_path

#: TVM reads this when it compiles CUDA: "nvcc" gives a fatbin, "nvrtc" (its default) needs the
#: ``cuda-bindings`` package.
COMPILE_MODE_VAR = "TVM_CUDA_COMPILE_MODE"

_NO_DEVICE = 100  # CUDA_ERROR_NO_DEVICE
_EM_CUDA = 190
_FATBIN_MAGIC = 0xBA55ED50
_ELF_MAGIC = b"\x7fELF"
_FATBIN_KIND_PTX, _FATBIN_KIND_ELF = 1, 2
_EIATTR_FRAME_SIZE, _EIATTR_REGCOUNT = 0x11, 0x2F
_STO_CUDA_ENTRY = 0x10
# From sm_90 on, a kernel's .nv.shared section also holds the 1 KiB the system reserves per block
# (marked by a .nv.shared.reserved.N section); ptxas -v does not count it, nor do we.
_RESERVED_SMEM_BYTES = 1024
_ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_SECTION = struct.Struct("<IIQQQQIIQQ")
_SYMBOL = struct.Struct("<IBBHQQ")

# Driver functions whose signature the stub must honour: the error-text ones hand back a string
# (TVM prints it), the rest report "no device" through their out-parameters. Every other `cu*`
# function that libtvm_runtime_cuda.so imports gets a `CUresult f(void)` returning no-device.
_STUB_C = r"""/* accel's stub libcuda.so.1: lets libtvm_runtime_cuda.so load for code generation.
   Every driver call fails with CUDA_ERROR_NO_DEVICE; it never reports a device. */
typedef int CUresult;
static const char kName[] = "CUDA_ERROR_NO_DEVICE";
static const char kText[] = "no CUDA driver: accel's code-generation stub libcuda.so.1 is loaded";
CUresult cuGetErrorName(CUresult e, const char **s) { (void)e; if (s) *s = kName; return 0; }
CUresult cuGetErrorString(CUresult e, const char **s) { (void)e; if (s) *s = kText; return 0; }
CUresult cuInit(unsigned int flags) { (void)flags; return 100; }
CUresult cuDriverGetVersion(int *v) { if (v) *v = 0; return 100; }
CUresult cuDeviceGetCount(int *n) { if (n) *n = 0; return 100; }
"""
_STUB_DEFINED = ("cuGetErrorName", "cuGetErrorString", "cuInit", "cuDriverGetVersion",
                 "cuDeviceGetCount")
# What libtvm_runtime_cuda.so of apache-tvm 0.27.0.post1 imports (`nm -D --undefined-only`);
# the symbols actually found in the installed library are added to these.
_KNOWN_DRIVER_IMPORTS = ("cuDeviceGetName", "cuFuncSetAttribute", "cuLaunchKernelEx",
                         "cuModuleGetFunction", "cuModuleLoadData", "cuModuleUnload",
                         "cuTensorMapEncodeTiled")

_lock = threading.Lock()
_ready = False
_stub: Path | None = None


# --------------------------------------------------------------------------- codegen setup


def ensure_cuda_codegen(cache_dir: str | os.PathLike | None = None) -> None:
    """Make ``tvm.compile`` produce real CUDA fatbins in this process, with or without a GPU.

    TVM turns CUDA kernels into a binary only when ``libtvm_runtime_cuda.so`` is loaded, and that
    library needs ``libcuda.so.1``, the driver. Without it TVM silently keeps CUDA source. If no
    driver can be loaded, this builds (once, cached) a stub ``libcuda.so.1`` whose every call
    fails with ``CUDA_ERROR_NO_DEVICE``, loads it, then loads TVM's CUDA runtime library against
    it. No device ever appears: ``tvm.cuda(0).exist`` stays False and nothing can run.

    It imports ``tvm`` itself and works whether or not ``tvm`` was imported before; calling it
    again is cheap. The caller must then compile inside :func:`cuda_compile_env`, i.e. with
    ``TVM_CUDA_COMPILE_MODE=nvcc`` set and the target entered (``with target:``), since TVM takes
    the ``-arch`` it passes to ``nvcc`` from ``Target.current()``::

        ensure_cuda_codegen()
        target = tvm.target.Target({"kind": "cuda", "arch": "sm_80"}, host={"kind": "llvm"})
        with cuda_compile_env(target):
            ex = tvm.compile(mod, target)

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        Where the stub is kept; default: accel's cache folder (``$ACCEL_CACHE_DIR``, else
        ``platformdirs.user_cache_dir("accel")``), under ``cuda-stub/``.

    Raises
    ------
    ToolchainError
        If ``nvcc`` is not on PATH, no C compiler can build the stub, or TVM's CUDA runtime
        library cannot be loaded (for instance without ``libcudart.so.13``).
    """
    global _ready, _stub
    with _lock:
        if _ready:
            return
        if shutil.which("nvcc") is None:
            raise ToolchainError("nvcc not found on PATH",
                                 hint="install the CUDA toolkit and put its bin/ on PATH")
        import tvm  # noqa: F401  (loads libtvm_runtime_cuda.so itself when a driver exists)

        if not _cuda_runtime_registered():
            if not _driver_loadable():
                _stub = _build_stub(_stub_dir(cache_dir))
                _load_stub(_stub)
            _load_tvm_cuda_runtime()
        _require_cuda_codegen()
        _ready = True


def loaded_stub() -> Path | None:
    """Return the stub ``libcuda.so.1`` that :func:`ensure_cuda_codegen` loaded, if it did.

    Returns
    -------
    pathlib.Path or None
        None when a real driver was found, or before :func:`ensure_cuda_codegen` ran.
    """
    return _stub


@contextlib.contextmanager
def cuda_compile_env(target) -> Iterator[None]:
    """Enter ``target`` with ``TVM_CUDA_COMPILE_MODE=nvcc`` set, for ``tvm.compile`` to CUDA.

    Calls :func:`ensure_cuda_codegen` first. The variable is process-wide: it is restored on exit,
    so do not compile CUDA from two threads at once with different modes.

    Parameters
    ----------
    target : tvm.target.Target
        The CUDA target (with ``arch``, e.g. ``"sm_80"``, and a host) being compiled for.

    Yields
    ------
    None
    """
    ensure_cuda_codegen()
    old = os.environ.get(COMPILE_MODE_VAR)
    os.environ[COMPILE_MODE_VAR] = "nvcc"
    try:
        with target:
            yield
    finally:
        if old is None:
            os.environ.pop(COMPILE_MODE_VAR, None)
        else:
            os.environ[COMPILE_MODE_VAR] = old


def _cuda_runtime_registered() -> bool:
    import tvm_ffi

    return tvm_ffi.get_global_func("ffi.Module.create.cuda", allow_missing=True) is not None


def _require_cuda_codegen() -> None:
    import tvm.support.nvcc  # noqa: F401  (registers tvm_callback_cuda_compile)
    import tvm_ffi

    if not _cuda_runtime_registered():
        raise ToolchainError("TVM's CUDA runtime did not register; CUDA would stay source")
    if tvm_ffi.get_global_func("tvm_callback_cuda_compile", allow_missing=True) is None:
        raise ToolchainError("tvm_callback_cuda_compile is not registered")


def _driver_loadable() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def _tvm_lib_dir() -> Path:
    from tvm.base import _LOADED_LIBS

    return Path(_LOADED_LIBS["tvm_runtime"]._name).resolve().parent


def _load_tvm_cuda_runtime() -> None:
    """Load libtvm_runtime_cuda.so as ``tvm.backend.cuda`` does, finding libcudart if needed."""
    from tvm.base import _LOADED_LIBS
    from tvm_ffi.libinfo import load_lib_ctypes

    def load():
        return load_lib_ctypes("tvm", "tvm_runtime_cuda", "RTLD_LOCAL", [_tvm_lib_dir()])

    try:
        lib = load()
    except OSError as err:
        if not _preload_cudart(str(err)):
            raise ToolchainError(f"cannot load TVM's CUDA runtime: {err}",
                                 hint="install the CUDA 13 runtime (libcudart.so.13)") from err
        lib = load()
    _LOADED_LIBS["tvm_runtime_cuda"] = lib


def _preload_cudart(message: str) -> bool:
    """Load the libcudart named in a loader error from the toolkit beside nvcc; True if found."""
    match = re.search(r"(libcudart\.so[.\d]*)", message)
    nvcc = shutil.which("nvcc")
    if not match or not nvcc:
        return False
    root = Path(nvcc).resolve().parent.parent
    for folder in ("lib64", "lib", f"targets/{os.uname().machine}-linux/lib"):
        candidate = root / folder / match.group(1)
        if candidate.is_file():
            ctypes.CDLL(str(candidate), mode=ctypes.RTLD_GLOBAL)
            return True
    return False


# --------------------------------------------------------------------------- the stub


def stub_source(symbols: tuple[str, ...] = ()) -> str:
    """Return the C source of the stub ``libcuda.so.1``, exporting ``symbols`` too.

    Parameters
    ----------
    symbols : tuple of str
        Driver functions to export besides the built-in ones; each returns no-device.

    Returns
    -------
    str
        C source for ``gcc -shared -fPIC -Wl,-soname,libcuda.so.1``.
    """
    extra = sorted((set(symbols) | set(_KNOWN_DRIVER_IMPORTS)) - set(_STUB_DEFINED))
    lines = [f"CUresult {name}(void) {{ return {_NO_DEVICE}; }}" for name in extra]
    return _STUB_C + "\n".join(lines) + "\n"


def _stub_dir(cache_dir: str | os.PathLike | None) -> Path:
    return env.cache_dir(cache_dir) / "cuda-stub"


def _build_stub(folder: Path) -> Path:
    """Compile the stub into ``folder/<hash>/libcuda.so.1`` unless it is there; return its path."""
    source = stub_source(_driver_imports(_tvm_lib_dir() / "libtvm_runtime_cuda.so"))
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    path = folder / digest / "libcuda.so.1"
    if path.is_file():
        return path
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not compiler:
        raise ToolchainError("no C compiler to build the stub libcuda.so.1",
                             hint="install gcc, or set CC")
    with atomic_path(path) as tmp, tempfile.TemporaryDirectory() as work:
        c_file = Path(work) / "libcuda_stub.c"
        c_file.write_text(source)
        cmd = [compiler, "-shared", "-fPIC", "-O2", "-Wl,-soname,libcuda.so.1", "-o", str(tmp),
               str(c_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ToolchainError(f"building the stub libcuda.so.1 failed: {proc.stderr.strip()}")
    return path


def _load_stub(path: Path) -> None:
    # Its SONAME is libcuda.so.1, so the loader uses it for libtvm_runtime_cuda.so's NEEDED entry
    # and for libcudart's later dlopen("libcuda.so.1").
    ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)


def _driver_imports(library: Path) -> tuple[str, ...]:
    """Undefined ``cu*`` (driver API) symbols of a shared library, read from its .dynsym."""
    if not library.is_file():
        return ()
    elf = _Elf(library.read_bytes())
    names = [name for name, _, _, shndx in elf.symbols(".dynsym") if shndx == 0]
    return tuple(sorted({n for n in names if re.fullmatch(r"cu[A-Z]\w*", n)}))


# --------------------------------------------------------------------------- binaries


def is_fatbin(blob: bytes) -> bool:
    """Tell whether ``blob`` is a well-formed CUDA fatbin holding device code (not source).

    Parameters
    ----------
    blob : bytes
        Candidate data, starting at the fatbin header.

    Returns
    -------
    bool
        True if the header is valid, its size fits, every entry is SASS or PTX, and every
        uncompressed SASS entry is a CUDA ELF (a cubin).
    """
    entries = _fatbin_entries(blob, 0)
    if not entries:
        return False
    return all(kind == _FATBIN_KIND_PTX or is_cubin(payload) or not payload.startswith(_ELF_MAGIC)
               for kind, payload in entries)


def is_cubin(blob: bytes) -> bool:
    """Tell whether ``blob`` is a cubin: a 64-bit ELF for ``EM_CUDA``.

    Parameters
    ----------
    blob : bytes
        Candidate data.

    Returns
    -------
    bool
        True for a CUDA device ELF.
    """
    if len(blob) < _ELF_HEADER.size or not blob.startswith(_ELF_MAGIC) or blob[4] != 2:
        return False
    return _ELF_HEADER.unpack_from(blob)[2] == _EM_CUDA


def embedded_device_binaries(compiled) -> list[bytes]:
    """Return the fatbins (or bare cubins) embedded in a compiled module or exported library.

    Parameters
    ----------
    compiled : tvm.runtime.Executable, tvm.runtime.Module, str, os.PathLike or bytes
        What ``tvm.compile`` returned, its ``.mod``, a module from ``tvm.runtime.load_module``,
        the path of an ``export_library`` file, or raw bytes.

    Returns
    -------
    list of bytes
        Each fatbin exactly as embedded; a cubin not inside a fatbin (the NVRTC path) as is.
        Empty when the module holds CUDA source only, or no CUDA at all.
    """
    blob = _as_bytes(compiled)
    found, spans = [], []
    for start in _find_all(blob, struct.pack("<I", _FATBIN_MAGIC)):
        if _fatbin_entries(blob, start):
            end = start + 16 + struct.unpack_from("<Q", blob, start + 8)[0]
            found.append(blob[start:end])
            spans.append((start, end))
    for start in _find_all(blob, _ELF_MAGIC):
        if not any(a <= start < b for a, b in spans) and is_cubin(blob[start:start + 64]):
            found.append(blob[start:start + _Elf(blob[start:]).size()])
    return found


def device_cubins(compiled) -> list[bytes]:
    """Return every uncompressed cubin in a compiled module, taken out of its fatbins.

    Parameters
    ----------
    compiled : tvm.runtime.Executable, tvm.runtime.Module, str, os.PathLike or bytes
        As for :func:`embedded_device_binaries`.

    Returns
    -------
    list of bytes
        One ELF per (fatbin entry, architecture).
    """
    cubins = []
    for binary in embedded_device_binaries(compiled):
        if is_cubin(binary):
            cubins.append(binary)
            continue
        cubins += [p for kind, p in _fatbin_entries(binary, 0)
                   if kind == _FATBIN_KIND_ELF and is_cubin(p)]
    return cubins


def _fatbin_entries(blob: bytes, start: int) -> list[tuple[int, bytes]]:
    """(kind, payload) of each entry of the fatbin at ``start``; empty if it is not one."""
    if len(blob) < start + 16:
        return []
    magic, version, header_size, size = struct.unpack_from("<IHHQ", blob, start)
    end = start + header_size + size
    if magic != _FATBIN_MAGIC or version != 1 or header_size != 16 or end > len(blob):
        return []
    entries, offset = [], start + header_size
    while offset + 16 <= end:
        kind, _, entry_header, payload_size = struct.unpack_from("<HHIQ", blob, offset)
        if kind not in (_FATBIN_KIND_PTX, _FATBIN_KIND_ELF) or entry_header < 16:
            return []
        payload_start = offset + entry_header
        entries.append((kind, blob[payload_start:payload_start + payload_size]))
        offset = payload_start + payload_size
    return entries if offset == end else []


def _find_all(blob: bytes, needle: bytes) -> Iterator[int]:
    start = blob.find(needle)
    while start >= 0:
        yield start
        start = blob.find(needle, start + 1)


def _as_bytes(compiled) -> bytes:
    if isinstance(compiled, bytes | bytearray | memoryview):
        return bytes(compiled)
    if isinstance(compiled, str | os.PathLike):
        return Path(compiled).read_bytes()
    return _imports_bytes(getattr(compiled, "mod", compiled))


def _imports_bytes(module) -> bytes:
    """Serialized import tree of ``module``, skipping what cannot be serialized (loaded DSOs)."""
    import tvm_ffi

    pack = tvm_ffi.get_global_func("runtime.ModulePackImportsToTensor")
    try:
        return pack(module).numpy().tobytes()
    except RuntimeError:  # e.g. "Module[library] does not support SaveToBytes" after load_module
        return b"".join(_imports_bytes(child) for child in module.imports)


# --------------------------------------------------------------------------- cubin ELF


class _Elf:
    """Just enough of a little-endian ELF64 reader for cubins and .dynsym."""

    def __init__(self, data: bytes):
        self.data = data
        header = _ELF_HEADER.unpack_from(data)
        self.osabi, self.flags = data[7], header[7]
        shoff, shnum, shstrndx = header[6], header[12], header[13]
        self.sections = [_SECTION.unpack_from(data, shoff + i * _SECTION.size)
                         for i in range(shnum)]
        names = self.sections[shstrndx] if self.sections else None
        self.names = [self._string(names, s[0]) for s in self.sections] if names else []

    def _string(self, table, offset: int) -> str:
        start = table[4] + offset
        return self.data[start:self.data.index(b"\0", start)].decode(errors="replace")

    def size(self) -> int:
        header = _ELF_HEADER.unpack_from(self.data)
        ends = [header[6] + header[12] * _SECTION.size, header[5] + header[10] * header[9]]
        ends += [s[4] + s[5] for s in self.sections if s[1] != 8]  # SHT_NOBITS takes no room
        return max(ends)

    def section(self, name: str) -> bytes | None:
        for header, section_name in zip(self.sections, self.names, strict=True):
            if section_name == name:
                return self.data[header[4]:header[4] + header[5]]
        return None

    def section_size(self, name: str) -> int:
        return next((h[5] for h, n in zip(self.sections, self.names, strict=True) if n == name), 0)

    def symbols(self, table: str = ".symtab") -> list[tuple[str, int, int, int]]:
        """(name, st_info, st_other, st_shndx) of every symbol in ``table``."""
        index = self.names.index(table) if table in self.names else -1
        if index < 0:
            return []
        header = self.sections[index]
        strings = self.sections[header[6]]
        rows = []
        for offset in range(header[4], header[4] + header[5], _SYMBOL.size):
            name, info, other, shndx, _, _ = _SYMBOL.unpack_from(self.data, offset)
            rows.append((self._string(strings, name), info, other, shndx))
        return rows

    def arch(self) -> str:
        """``sm_XX`` from the ptxas command line recorded in the cubin, else from e_flags."""
        note = self.section(".note.nv.tkinfo") or b""
        match = re.search(rb"-arch (sm_\w+)", note)
        if match:
            return match.group(1).decode()
        sm = (self.flags >> 8) & 0xFF if self.osabi == 0x41 else self.flags & 0xFF
        return f"sm_{sm}"


def _nv_info_values(data: bytes, attribute: int) -> dict[int, int]:
    """Per-symbol values of one EIATTR in a .nv.info section: {symbol index: value}."""
    values, offset = {}, 0
    while offset + 4 <= len(data):
        fmt, attr = data[offset], data[offset + 1]
        size = struct.unpack_from("<H", data, offset + 2)[0]
        if fmt != 0x04:  # EIFMT_SVAL carries a payload; the other formats are 4 bytes in all
            offset += 4
            continue
        if attr == attribute and size == 8:
            symbol, value = struct.unpack_from("<II", data, offset + 4)
            values[symbol] = value
        offset += 4 + size
    return values


def cubin_resource_usage(cubin: bytes) -> list[dict]:
    """Read each kernel's registers, static shared memory and stack frame from a cubin.

    Parameters
    ----------
    cubin : bytes
        A CUDA ELF, e.g. one of :func:`device_cubins`.

    Returns
    -------
    list of dict
        Per entry function: ``name``, ``arch``, ``registers``, ``shared_bytes`` (static, as
        ``ptxas -v`` counts it: without the system's reserved 1 KiB), ``stack_frame_bytes``; in
        symbol-table order.
    """
    elf = _Elf(cubin)
    info = elf.section(".nv.info") or b""
    registers = _nv_info_values(info, _EIATTR_REGCOUNT)
    frames = _nv_info_values(info, _EIATTR_FRAME_SIZE)
    reserved = any(n.startswith(".nv.shared.reserved.") for n in elf.names)
    arch, kernels = elf.arch(), []
    for index, (name, _, other, _) in enumerate(elf.symbols()):
        if not other & _STO_CUDA_ENTRY:
            continue
        shared = elf.section_size(f".nv.shared.{name}")
        if reserved and shared:
            shared = max(shared - _RESERVED_SMEM_BYTES, 0)
        kernels.append({"name": name, "arch": arch, "registers": registers.get(index, 0),
                        "shared_bytes": shared, "stack_frame_bytes": frames.get(index, 0)})
    return kernels


# --------------------------------------------------------------------------- ptxas -v


def ptxas_report(compiled, *, nvcc: str | None = None) -> list[dict]:
    """Per-kernel resource usage of the device code embedded in a compiled module.

    Registers, static shared memory and stack frame come from the embedded cubins themselves.
    Spill bytes exist only in ``ptxas -v`` output, which TVM discards, so when the module still
    holds its CUDA source (a fresh ``tvm.compile`` result; not one loaded from disk) the source is
    compiled again with TVM's nvcc flags and ``ptxas -v`` parsed; its spill figures are used only
    where its registers, shared memory and stack frame match the embedded binary's (else a
    warning).

    Parameters
    ----------
    compiled : tvm.runtime.Executable, tvm.runtime.Module, str, os.PathLike or bytes
        As for :func:`embedded_device_binaries`.
    nvcc : str, optional
        The nvcc to run; default: ``nvcc`` on PATH. Without one, spills are None.

    Returns
    -------
    list of dict
        One per kernel and architecture: ``name``, ``arch`` (``"sm_80"``), ``registers``,
        ``shared_bytes``, ``stack_frame_bytes`` (ints), ``spill_stores_bytes`` and
        ``spill_loads_bytes`` (ints, or None when unknown).
    """
    kernels = [k for cubin in device_cubins(compiled) for k in cubin_resource_usage(cubin)]
    sources = _cuda_sources(compiled)
    nvcc = nvcc or shutil.which("nvcc")
    measured = {}
    if sources and nvcc:
        for arch in sorted({k["arch"] for k in kernels}):
            for source in sources:
                measured.update(_run_ptxas(source, arch, nvcc))
    return [_with_spills(k, measured.get((k["name"], k["arch"]))) for k in kernels]


_CHECKED = ("registers", "shared_bytes", "stack_frame_bytes")


def _with_spills(kernel: dict, ptxas: dict | None) -> dict:
    row = dict(kernel, spill_stores_bytes=None, spill_loads_bytes=None)
    if ptxas is None:
        return row
    mismatch = [key for key in _CHECKED if ptxas[key] != kernel[key]]
    if mismatch:
        warnings.warn(f"{kernel['name']} ({kernel['arch']}): ptxas -v on the kept source and the "
                      f"embedded cubin differ in {', '.join(mismatch)}; spills left unknown",
                      stacklevel=3)
        return row
    row.update(spill_stores_bytes=ptxas["spill_stores_bytes"],
               spill_loads_bytes=ptxas["spill_loads_bytes"])
    return row


def _cuda_sources(compiled) -> list[str]:
    """CUDA source kept by the module's CUDA imports (only before export and reload)."""
    module = getattr(compiled, "mod", compiled)
    if not hasattr(module, "imports"):
        return []
    sources, stack = [], [module]
    while stack:
        current = stack.pop()
        stack.extend(current.imports)
        if current.kind == "cuda":
            with contextlib.suppress(Exception):
                source = str(current.inspect_source("cuda"))
                if "__global__" in source:
                    sources.append(source)
    return sources


def _ptxas_flags() -> list[str]:
    try:
        from tvm.support.nvcc import _ptxas_option_flags

        return list(_ptxas_option_flags())
    except (ImportError, AttributeError):
        return ["-v"]


def _nvcc_command(nvcc: str, arch: str, source: Path, output: Path) -> list[str]:
    """The nvcc line TVM 0.27 uses for a fatbin (tvm/support/nvcc.py), but for one cubin."""
    suffix = arch.removeprefix("sm_")
    fast_math = [] if os.environ.get("TVM_CUDA_NVCC_NO_FAST_MATH") else ["--use_fast_math"]
    undefs = [f"-U__CUDA_NO_{kind}_{what}__" for kind in ("HALF", "BFLOAT16", "BFLOAT162")
              for what in ("OPERATORS", "CONVERSIONS")]
    return [nvcc, "--cubin", "-O3", "-gencode", f"arch=compute_{suffix},code=sm_{suffix}",
            *undefs, "--expt-relaxed-constexpr", "--expt-extended-lambda", *fast_math,
            f"--ptxas-options={','.join(_ptxas_flags())}", "-o", str(output), str(source)]


def _run_ptxas(source: str, arch: str, nvcc: str) -> dict[tuple[str, str], dict]:
    with tempfile.TemporaryDirectory() as work:
        cu = Path(work) / "tvm_kernels.cu"
        cu.write_text(source)
        cmd = _nvcc_command(nvcc, arch, cu, Path(work) / "tvm_kernels.cubin")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        warnings.warn(f"nvcc failed for {arch}; spills left unknown:\n{proc.stderr[-2000:]}",
                      stacklevel=3)
        return {}
    rows = parse_ptxas_verbose(proc.stdout + proc.stderr)
    return {(row["name"], row["arch"]): row for row in rows}


_ENTRY_RE = re.compile(r"Compiling entry function '([^']+)' for '(\w+)'")
_PROPS_RE = re.compile(r"Function properties for (\S+)")
_FRAME_RE = re.compile(
    r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED_RE = re.compile(r"Used (\d+) registers")
_SMEM_RE = re.compile(r"(\d+) bytes smem")


def parse_ptxas_verbose(text: str) -> list[dict]:
    """Parse ``ptxas -v`` output into one dict per entry function.

    Parameters
    ----------
    text : str
        Output of nvcc or ptxas run with ``-v``; other lines, and the properties of non-entry
        (device) functions, are ignored.

    Returns
    -------
    list of dict
        ``name``, ``arch``, ``registers``, ``shared_bytes``, ``stack_frame_bytes``,
        ``spill_stores_bytes``, ``spill_loads_bytes``, in the order ptxas compiled them.
    """
    rows: list[dict] = []
    props_of = None
    for line in text.splitlines():
        if match := _ENTRY_RE.search(line):
            rows.append({"name": match.group(1), "arch": match.group(2), "registers": 0,
                         "shared_bytes": 0, "stack_frame_bytes": 0, "spill_stores_bytes": 0,
                         "spill_loads_bytes": 0})
        elif match := _PROPS_RE.search(line):
            props_of = match.group(1)
        elif rows and props_of == rows[-1]["name"] and (match := _FRAME_RE.search(line)):
            frame, stores, loads = map(int, match.groups())
            rows[-1].update(stack_frame_bytes=frame, spill_stores_bytes=stores,
                            spill_loads_bytes=loads)
        elif rows and (match := _USED_RE.search(line)):
            smem = _SMEM_RE.search(line)
            rows[-1].update(registers=int(match.group(1)),
                            shared_bytes=int(smem.group(1)) if smem else 0)
    return rows


__all__ = ["COMPILE_MODE_VAR", "cubin_resource_usage", "cuda_compile_env", "device_cubins",
           "embedded_device_binaries", "ensure_cuda_codegen", "is_cubin", "is_fatbin",
           "loaded_stub", "parse_ptxas_verbose", "ptxas_report", "stub_source"]

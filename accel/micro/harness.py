"""Test harness for a C package: a main() that checks embedded outputs, built for host or QEMU."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import numpy as np

from ..errors import ToolchainError
from .emit import c_literals, c_name, c_type

#: QEMU boards for the Cortex-M targets: machine, and flash/RAM (origin, length) in its map.
BOARDS = {"cortex-m4": ("mps2-an386", (0x0, 0x400000), (0x20000000, 0x200000)),
          "cortex-m7": ("mps2-an500", (0x0, 0x400000), (0x20000000, 0x200000)),
          "cortex-m55": ("mps3-an547", (0x0, 0x80000), (0x20000000, 0x80000))}

_MAIN = r"""/* main.c: runs the model once on embedded inputs and compares with embedded outputs. */
#include <math.h>
#include <stdint.h>
#include "model.h"
void accel_test_print(const char *s);
uint64_t accel_test_ticks(void);
uint64_t accel_test_calibrate(void);

static void print_u64(const char *label, uint64_t v) {
  char buf[48]; int n = 0, i; char digits[21]; int d = 0;
  while (label[n]) { buf[n] = label[n]; ++n; }
  do { digits[d++] = (char)('0' + v % 10); v /= 10; } while (v);
  for (i = d - 1; i >= 0; --i) buf[n++] = digits[i];
  buf[n++] = '\n'; buf[n] = 0;
  accel_test_print(buf);
}

@DATA@
int main(void) {
  uint64_t cal = accel_test_calibrate(), t0, t1;
  double worst = 0.0; int bad = 0, rc; unsigned i;
  t0 = accel_test_ticks();
  rc = accel_model_run(@ARGS@);
  t1 = accel_test_ticks();
  if (rc) { print_u64("kernel_failed=", (uint64_t)rc); return 2; }
@CHECKS@
  print_u64("max_abs_diff_e12=", (uint64_t)(worst * 1e12));
  print_u64("bad=", (uint64_t)bad);
  print_u64("ticks=", t1 - t0);
  print_u64("calibration_ticks=", cal);
  return bad ? 1 : 0;
}
"""

_CHECK = """  for (i = 0; i < @N@u; ++i) {
    double e = (double)@EXP@[i], d = fabs((double)@OUT@[i] - e);
    if (!(d <= @ATOL@ + @RTOL@ * fabs(e))) ++bad;
    if (!(d <= worst)) worst = d;
  }"""

_HOST_IO = r"""#include <stdio.h>
#include <stdint.h>
#include <time.h>
void accel_test_print(const char *s) { fputs(s, stdout); }
uint64_t accel_test_ticks(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
uint64_t accel_test_calibrate(void) { return 0; }
"""

#: Cortex-M start-up: vector table, .data/.bss set-up, FPU on, semihosting print and exit,
#: SysTick as a tick counter (with -icount its ticks are proportional to instructions).
_STARTUP = r"""#include <stdint.h>
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
static volatile uint32_t wraps;

static int semihost(int op, void *arg) {
  register int r0 __asm__("r0") = op;
  register void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
void accel_test_print(const char *s) { semihost(0x04, (void *)s); }
static void accel_test_exit(int code) {
  uint32_t block[2] = {0x20026u, (uint32_t)code}; /* ADP_Stopped_ApplicationExit */
  semihost(0x20, block);                              /* SYS_EXIT_EXTENDED */
  for (;;) {}
}
#define SYST ((volatile uint32_t *)0xE000E010u)
uint64_t accel_test_ticks(void) {
  uint32_t w, v;
  do { w = wraps; v = SYST[2]; } while (w != wraps);
  return (uint64_t)w * 0x1000000u + (0xFFFFFFu - v);
}
uint64_t accel_test_calibrate(void) { /* ticks for 2,000,000 instructions */
  uint64_t t0 = accel_test_ticks();
  uint32_t n = 1000000u;
  __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
  return accel_test_ticks() - t0;
}
void SysTick_Handler(void) { ++wraps; }
void Default_Handler(void) { accel_test_exit(99); }
void Reset_Handler(void) {
  uint32_t *src = &_sidata, *dst;
  for (dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: FPU (and MVE) full access */
  __asm__ volatile("dsb\n isb");
  SYST[1] = 0xFFFFFFu; SYST[2] = 0; SYST[0] = 7u; /* processor clock, interrupt, enable */
  while (SYST[2] == 0) {} /* the first reload from 0 raises no interrupt: let it pass */
  accel_test_exit(main());
}
__attribute__((section(".vectors"), used)) void *const accel_vectors[16] = {
  &_estack, Reset_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
  Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler,
  SysTick_Handler};
"""

_LINKER = """MEMORY {
  FLASH (rx) : ORIGIN = @FLASH_ORIGIN@, LENGTH = @FLASH_LENGTH@
  RAM (rwx) : ORIGIN = @RAM_ORIGIN@, LENGTH = @RAM_LENGTH@
}
ENTRY(Reset_Handler)
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); } > FLASH
  .ARM.exidx : { *(.ARM.exidx*) } > FLASH
  _sidata = LOADADDR(.data);
  .data : { _sdata = .; *(.data*) . = ALIGN(4); _edata = .; } > RAM AT > FLASH
  .bss (NOLOAD) : { _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; } > RAM
  end = _ebss;
  _estack = ORIGIN(RAM) + LENGTH(RAM);
}
"""


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a test binary reported: exit code, max |diff|, ticks, and the raw output."""

    returncode: int
    max_abs_diff: float | None
    ticks: int | None
    instructions: int | None
    output: str


def check_main(package, *, inputs: list[np.ndarray], expected: list[np.ndarray],
               rtol: float = 1e-4, atol: float = 1e-5) -> str:
    """main.c text with the inputs and expected outputs embedded as const arrays."""

    data, args, checks = [], [], []
    specs = [("in", t, a) for t, a in zip(package.inputs, inputs, strict=True)] + \
        [("exp", t, a) for t, a in zip(package.outputs, expected, strict=True)]
    for kind, spec, array in specs:
        arr = np.ascontiguousarray(array, dtype=spec.dtype).reshape(-1)
        name = f"{kind}_{c_name(spec.name)}"
        data.append(f"static const {c_type(spec.dtype)} {name}[{arr.size}] = {{"
                    + ", ".join(c_literals(arr)) + "};")
        if kind == "in":
            args.append(name)
        else:
            out = f"out_{c_name(spec.name)}"
            data.append(f"static {c_type(spec.dtype)} {out}[{arr.size}];")
            args.append(out)
            checks.append(_CHECK.replace("@N@", str(arr.size)).replace("@EXP@", name)
                          .replace("@OUT@", out).replace("@ATOL@", repr(atol))
                          .replace("@RTOL@", repr(rtol)))
    return (_MAIN.replace("@DATA@", "\n".join(data)).replace("@ARGS@", ", ".join(args))
            .replace("@CHECKS@", "\n".join(checks)))


def build_test(package, main_c: str, *, work: Path, board: str | None = None) -> Path:
    """Build the package with its Makefile, then link the test binary (host, or a QEMU board)."""
    work.mkdir(parents=True, exist_ok=True)
    pkg = Path(package.path)
    _run(["make", "-s", "-C", str(pkg), "libmodel.a"])
    (work / "main.c").write_text(main_c)
    cc = package.manifest["target"].get("cflags", [])
    make_vars = _make_vars(pkg / "Makefile")
    exe = work / "test.elf"
    if board is None:
        (work / "host_io.c").write_text(_HOST_IO)
        _run([make_vars["CC"], "-O2", "-I", str(pkg), str(work / "main.c"),
              str(work / "host_io.c"), str(pkg / "libmodel.a"), "-lm", "-o", str(exe)])
        return exe
    _, flash, ram = BOARDS[board]
    (work / "startup.c").write_text(_STARTUP)
    (work / "link.ld").write_text(
        _LINKER.replace("@FLASH_ORIGIN@", hex(flash[0])).replace("@FLASH_LENGTH@", hex(flash[1]))
        .replace("@RAM_ORIGIN@", hex(ram[0])).replace("@RAM_LENGTH@", hex(ram[1])))
    _run([make_vars["CC"], *cc, "-O2", "-nostartfiles", "--specs=nano.specs",
          "--specs=nosys.specs", "-T", str(work / "link.ld"), "-I", str(pkg),
          str(work / "startup.c"), str(work / "main.c"), str(pkg / "libmodel.a"), "-lm",
          "-o", str(exe)])
    return exe


def run_test(exe: Path, *, board: str | None = None, timeout: float = 120) -> RunResult:
    """Run a test binary natively or under qemu-system-arm (semihosting, -icount)."""
    if board is None:
        cmd = [str(exe)]
    else:
        cmd = ["qemu-system-arm", "-M", BOARDS[board][0], "-nographic", "-monitor", "none",
               "-serial", "none", "-semihosting-config", "enable=on,target=native",
               "-icount", "shift=0", "-kernel", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    values = dict(re.findall(r"^(\w+)=(\d+)$", out, re.M))
    ticks = int(values["ticks"]) if "ticks" in values else None
    cal = int(values.get("calibration_ticks", 0))
    insns = round(ticks * 2_000_000 / cal) if ticks is not None and cal else None
    diff = int(values["max_abs_diff_e12"]) * 1e-12 if "max_abs_diff_e12" in values else None
    return RunResult(proc.returncode, diff, ticks, insns, out)


def _make_vars(makefile: Path) -> dict[str, str]:
    return dict(re.findall(r"^(\w+) = (.*)$", makefile.read_text(), re.M))


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"{cmd[0]} failed: {(proc.stderr or proc.stdout).strip()[-600:]}",
                             hint=" ".join(cmd))

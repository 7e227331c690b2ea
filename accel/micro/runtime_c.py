"""The C runtime shim in every package: the few TVM types and backend symbols kernels use."""

from __future__ import annotations

#: accel_rt.h: just enough of DLPack and tvm-ffi's C ABI for TVM's C codegen output (same
#: layouts as dlpack.h and tvm/ffi/c_api.h in the apache-tvm-ffi wheel).
RT_HEADER = r"""/* accel_rt.h: the subset of the DLPack / tvm-ffi C ABI that TVM kernels use. */
#ifndef ACCEL_RT_H_
#define ACCEL_RT_H_
#include <stddef.h>
#include <stdint.h>

#ifndef TVM_DLL
#define TVM_DLL
#endif

typedef struct { int32_t device_type; int32_t device_id; } DLDevice;
typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } DLDataType;
typedef struct {
  void *data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t *shape;
  int64_t *strides;
  uint64_t byte_offset;
} DLTensor;

/* Generated code reads args[i].type_index and args[i].v_ptr: the union is anonymous there. */
typedef struct {
  int32_t type_index;
  uint32_t zero_padding;
  union { int64_t v_int64; double v_float64; void *v_ptr; const char *v_c_str; };
} TVMFFIAny;

enum { kTVMFFIDLTensorPtr = 7 };

typedef int32_t (*accel_kernel_fn)(void *self, void *args, int32_t num_args, void *result);

void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes,
                               int dtype_code_hint, int dtype_bits_hint);
int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr);
void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **parts, int32_t n);

/* Call a kernel on n buffers; its workspaces come from [ws, ws + ws_size). */
int accel_call(accel_kernel_fn fn, int n, void *const *buffers, uint8_t *ws, uint32_t ws_size);
#endif
"""

#: accel_runtime.c: a bump allocator over the kernel's arena slice, and the call helper
#: (``@MAX_ARGS@`` is the most buffers any kernel of the model takes).
RT_SOURCE = r"""/* accel_runtime.c: workspace allocation from the static arena, and kernel calls. */
#include "accel_rt.h"

#define ACCEL_MAX_ARGS @MAX_ARGS@

static uint8_t *ws_top, *ws_end;

void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes,
                               int dtype_code_hint, int dtype_bits_hint) {
  uint8_t *p = ws_top;
  uint64_t size = (nbytes + 15u) & ~(uint64_t)15u;
  (void)device_type; (void)device_id; (void)dtype_code_hint; (void)dtype_bits_hint;
  if (size > (uint64_t)(ws_end - ws_top)) return NULL;
  ws_top += size;
  return p;
}

int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr) {
  (void)device_type; (void)device_id;
  ws_top = (uint8_t *)ptr; /* kernels free in reverse order of allocation */
  return 0;
}

void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **parts, int32_t n) {
  (void)kind; (void)parts; (void)n; /* asserts are compiled out; nothing to report */
}

int accel_call(accel_kernel_fn fn, int n, void *const *buffers, uint8_t *ws, uint32_t ws_size) {
  DLTensor t[ACCEL_MAX_ARGS];
  TVMFFIAny a[ACCEL_MAX_ARGS];
  int i;
  if (n > ACCEL_MAX_ARGS) return -1;
  for (i = 0; i < n; ++i) {
    t[i].data = buffers[i];
    t[i].device.device_type = 1;
    t[i].device.device_id = 0;
    t[i].ndim = 0;
    t[i].shape = NULL; /* static shapes: the kernels never read them */
    t[i].strides = NULL;
    t[i].byte_offset = 0;
    a[i].type_index = kTVMFFIDLTensorPtr;
    a[i].zero_padding = 0;
    a[i].v_ptr = &t[i];
  }
  ws_top = ws;
  ws_end = ws + ws_size;
  return fn(NULL, a, n, NULL);
}
"""


def runtime_source(max_args: int) -> str:
    """accel_runtime.c for kernels taking at most ``max_args`` buffers."""
    return RT_SOURCE.replace("@MAX_ARGS@", str(max(1, max_args)))

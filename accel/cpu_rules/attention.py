"""Fused attention kernel for CPUs: softmax(scale * Q @ K^T) @ V in one PrimFunc, computed per
block of query rows so that the scores never leave the cache (the FuseAttention pass emits it)."""

from __future__ import annotations

#: Query rows per parallel task: a (rows x keys) score tile stays in L1 (8 x 512 floats: 16 KiB).
ROWS = 8


def attention_te(q, kt, v, scale: float):
    """TE stages: q [B, H, S, D], kt [B, H, D, T] (keys transposed), v [B, H, T, E] ->
    [B, H, S, E], with a numerically stable softmax over T (max subtracted, fast exp);
    ``scale`` must be positive."""
    from tvm import te, topi

    b_n, h_n, s_n, d_n = (int(x) for x in q.shape)
    t_n, e_n = int(kt.shape[3]), int(v.shape[3])
    d = te.reduce_axis((0, d_n), name="d")
    score = te.compute((b_n, h_n, s_n, t_n), lambda b, h, i, j: te.sum(
        q[b, h, i, d] * kt[b, h, d, j], axis=d), name="attn_score")
    j = te.reduce_axis((0, t_n), name="j")
    top = te.compute((b_n, h_n, s_n), lambda b, h, i: te.max(score[b, h, i, j], axis=j),
                     name="attn_max")
    shifted = te.compute(score.shape, lambda b, h, i, j: (score[b, h, i, j] - top[b, h, i])
                         * scale, name="attn_shift")  # scale > 0: the max is the same
    exp = topi.math.fast_exp(shifted)
    j2 = te.reduce_axis((0, t_n), name="j2")
    total = te.compute((b_n, h_n, s_n), lambda b, h, i: te.sum(exp[b, h, i, j2], axis=j2),
                       name="attn_sum")
    j3 = te.reduce_axis((0, t_n), name="j3")
    pv = te.compute((b_n, h_n, s_n, e_n), lambda b, h, i, e: te.sum(
        exp[b, h, i, j3] * v[b, h, j3, e], axis=j3), name="attn_pv")
    return te.compute(pv.shape, lambda b, h, i, e: pv[b, h, i, e] / total[b, h, i],
                      name="attention")


def attention_prim_func(q, kt, v, scale: float, lanes: int):
    """The scheduled PrimFunc for the given TE placeholders."""
    from tvm import te

    out = attention_te(q, kt, v, scale)
    func = te.create_prim_func([q, kt, v, out])
    scheduled = schedule_attention(func, lanes).mod["main"]
    return scheduled.without_attr("global_symbol").with_attr("tirx.is_scheduled", True)


def schedule_attention(func, lanes: int):
    """Parallel over (batch, head, row block); every stage computed inside, vectorized along
    keys (scores, exp) or the value dim (P @ V, output)."""
    from tvm import s_tir

    sch = s_tir.Schedule(func)
    out = sch.get_sblock("attention")
    b, h, i, e = sch.get_loops(out)
    rows = _divisor(int(sch.get(i).extent), ROWS)
    i_outer, _ = sch.split(i, factors=[None, rows])
    task = sch.fuse(b, h, i_outer)
    sch.parallel(task)
    for name in ("attn_pv", "attn_sum", "T_fast_exp", "attn_shift", "attn_max", "attn_score"):
        sch.compute_at(sch.get_sblock(name), task)
    sch.compute_inline(sch.get_sblock("attn_shift"))
    for name in ("attn_score", "T_fast_exp", "attn_pv"):
        sch.set_scope(sch.get_sblock(name), 0, "local")
    _matmul_like(sch, "attn_score", lanes)
    _matmul_like(sch, "attn_pv", lanes)
    _vectorize_inner(sch, "T_fast_exp", lanes)
    _vectorize_inner(sch, "attention", lanes)
    return sch


def _matmul_like(sch, name: str, lanes: int) -> None:
    """Loops (row, col, k) -> (col/lanes, k, row, lanes): a register tile of one vector per
    row, the k-th vector of the right operand loaded once for all rows."""
    block = sch.get_sblock(name)
    row, col, red = sch.get_loops(block)[-3:]
    if int(sch.get(col).extent) % lanes:
        return
    col_outer, col_inner = sch.split(col, factors=[None, lanes])
    sch.reorder(col_outer, red, row, col_inner)
    sch.unroll(row)
    sch.vectorize(col_inner)
    init = sch.decompose_reduction(block, red)
    sch.vectorize(sch.get_loops(init)[-1])


def _vectorize_inner(sch, name: str, lanes: int) -> None:
    loop = sch.get_loops(sch.get_sblock(name))[-1]
    if int(sch.get(loop).extent) % lanes == 0:
        _, inner = sch.split(loop, factors=[None, lanes])
        sch.vectorize(inner)


def _divisor(n: int, most: int) -> int:
    return next(r for r in range(min(n, most), 0, -1) if n % r == 0)

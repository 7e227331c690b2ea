"""Static arena planning: buffer lifetimes in kernel order, greedy offsets, 16-byte aligned."""

from __future__ import annotations

import dataclasses

from .graph import Graph

ALIGN = 16


def align(n: int, to: int = ALIGN) -> int:
    """Round ``n`` up to a multiple of ``to``."""
    return (n + to - 1) // to * to


@dataclasses.dataclass(frozen=True)
class Block:
    """One arena block: a temp buffer or a kernel's workspace, live over calls [first, last]."""

    key: str  # "b<id>" for buffers, "ws<call index>" for workspaces
    size: int
    first: int
    last: int
    #: What it holds, for the printed plan (a Relax value name, or the kernel of a workspace).
    label: str = ""


@dataclasses.dataclass(frozen=True)
class ArenaPlan:
    """Offsets into the one arena; ``peak_live`` is the lower bound any plan needs."""

    offsets: dict[str, int]
    size: int
    peak_live: int
    blocks: tuple[Block, ...]

    def describe(self) -> list[str]:
        """One line per block, by offset: what a --verbose compile prints."""
        lines = [f"arena {self.size} B (largest live set {self.peak_live} B)"]
        for b in sorted(self.blocks, key=lambda b: (self.offsets[b.key], b.first)):
            lines.append(f"  @{self.offsets[b.key]:>7} {b.size:>7} B  calls "
                         f"{b.first:>2}..{b.last:<2} {b.label or b.key}")
        return lines


def lifetimes(graph: Graph, workspaces: dict[str, int]) -> list[Block]:
    """Arena blocks: each temp lives from the call writing it to the last call reading it."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, call in enumerate(graph.calls):
        for bid in call.args:
            first.setdefault(bid, i)
            last[bid] = i
    made_by = {bid: c.kernel for c in graph.calls for bid in c.outputs}
    blocks = [Block(f"b{b.id}", align(b.nbytes), first[b.id], last[b.id],
                    f"{b.name} = {made_by.get(b.id, '?')}(...)")
              for b in graph.buffers if b.kind == "temp" and b.id in first]
    blocks += [Block(f"ws{i}", align(workspaces.get(c.kernel, 0)), i, i,
                     f"workspace of {c.kernel}")
               for i, c in enumerate(graph.calls) if workspaces.get(c.kernel, 0)]
    return blocks


def plan_arena(blocks: list[Block]) -> ArenaPlan:
    """Greedy by size: each block takes the lowest offset free during its whole lifetime."""
    placed: list[tuple[Block, int]] = []
    for block in sorted(blocks, key=lambda b: (-b.size, b.first, b.key)):
        clashes = sorted((off, off + other.size) for other, off in placed
                         if other.first <= block.last and block.first <= other.last)
        offset = 0
        for start, end in clashes:
            if offset + block.size <= start:
                break
            offset = max(offset, end)
        placed.append((block, offset))
    offsets = {b.key: off for b, off in placed}
    size = max((off + b.size for b, off in placed), default=0)
    return ArenaPlan(offsets, size, peak_live(blocks), tuple(blocks))


def peak_live(blocks: list[Block]) -> int:
    """The largest total size of blocks live at the same call."""
    steps = {t for b in blocks for t in (b.first, b.last)}
    return max((sum(b.size for b in blocks if b.first <= t <= b.last) for t in steps), default=0)

"""Which snapshots a run file keeps once they no longer fit its byte budget.

The policy (pure bookkeeping here; the writer applies it to the database):

- Every snapshot gets a sequence number n = 0, 1, 2, ... in the order it reached
  the writer, and a rank: the number of trailing zero bits of n (n = 12 has rank 2).
- The thinner has a level L, starting at 0. Stored snapshots all have rank >= L,
  except the protected ones and the newest.
- When the stored snapshots exceed the budget, L goes up by one and every stored
  snapshot of rank < L that is neither protected nor the newest is deleted: every
  other one, spread evenly over the whole run. A new snapshot of rank < L stays
  only while it is the newest (so the last one of a run or an epoch is there when
  it turns out to be the last) and is deleted when the next one arrives.
- Protected, never deleted: the first snapshot, the last snapshot of every epoch
  (known when a snapshot of a later epoch arrives, or at the epoch's end), and the
  one at (or else the last before) each step reported as diverged.

So a run is always covered evenly: after k rises, one snapshot in 2^k is kept
from start to end, and the stored bytes stay between half the budget and the
budget (plus the protected ones, which are kept even past it).
"""
from __future__ import annotations

from dataclasses import dataclass, field


def rank(seq: int) -> int:
    """Trailing zero bits of ``seq`` (0 has the highest rank of all)."""
    return 64 if seq == 0 else (seq & -seq).bit_length() - 1


@dataclass
class Kept:
    step: int
    epoch: int
    seq: int
    nbytes: int
    keep: bool


@dataclass
class Plan:
    """What the database must do after one call: rows to delete, rows to mark as kept."""

    delete: list[int] = field(default_factory=list)
    protect: list[int] = field(default_factory=list)


class SnapshotThinner:
    def __init__(self, budget_bytes: int):
        self.budget = int(budget_bytes)
        self.level = 0
        self.total = 0
        self.next_seq = 0
        self.thinned = 0
        self.kept: dict[int, Kept] = {}
        self.newest: int | None = None
        self._diverged: set[int] = set()

    def add(self, step: int, epoch: int, nbytes: int) -> tuple[Kept, Plan]:
        """A snapshot at ``step`` is being stored: its entry, and what to delete or protect."""
        plan = Plan()
        seq = self.next_seq
        self.next_seq += 1
        keep = seq == 0 or step in self._diverged
        old = self.kept.pop(step, None)
        if old is not None:                  # the same step again replaces the stored one
            self.total -= old.nbytes
            keep = keep or old.keep
        prev = self.kept.get(self.newest) if self.newest is not None else None
        if prev is not None:
            if prev.epoch != epoch:
                if not prev.keep:
                    prev.keep = True
                    plan.protect.append(prev.step)
            elif not prev.keep and rank(prev.seq) < self.level:
                self._drop(prev, plan)
        entry = Kept(step, epoch, seq, nbytes, keep)
        self.kept[step] = entry
        self.newest = step
        self.total += nbytes
        while self.total > self.budget and self.level < 64:
            self.level += 1
            for k in list(self.kept.values()):
                if not k.keep and k.step != step and rank(k.seq) < self.level:
                    self._drop(k, plan)
        return entry, plan

    def _drop(self, k: Kept, plan: Plan) -> None:
        del self.kept[k.step]
        self.total -= k.nbytes
        self.thinned += 1
        plan.delete.append(k.step)

    def end_epoch(self, epoch: int) -> Plan:
        """Epoch ``epoch`` ended: its last snapshot (the newest, if of that epoch) is protected."""
        plan = Plan()
        k = self.kept.get(self.newest) if self.newest is not None else None
        if k is not None and k.epoch == epoch and not k.keep:
            k.keep = True
            plan.protect.append(k.step)
        return plan

    def diverged(self, step: int) -> Plan:
        """Training diverged at ``step``: protect its snapshot (or the last one before it)."""
        plan = Plan()
        self._diverged.add(step)
        before = [s for s in self.kept if s <= step]
        if before:
            k = self.kept[max(before)]
            if not k.keep:
                k.keep = True
                plan.protect.append(k.step)
        return plan

    def reload(self, rows) -> None:
        """Replace the stored set by ``rows`` of (step, epoch, seq, nbytes, keep) read back
        from the database, after a failed transaction left memory and disk apart."""
        self.kept = {int(s): Kept(int(s), int(e), int(q), int(n), bool(k)) for s, e, q, n, k in rows}
        self.total = sum(k.nbytes for k in self.kept.values())
        self.newest = max(self.kept.values(), key=lambda k: k.seq).step if self.kept else None
        self.next_seq = max([self.next_seq, *(k.seq + 1 for k in self.kept.values())])

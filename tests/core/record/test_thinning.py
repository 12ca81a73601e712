"""The thinning policy alone: budget kept, coverage even, protected snapshots never dropped."""
import numpy as np

from visualizer.core.record.thinning import SnapshotThinner, rank


def feed(thinner, n, nbytes=1000, per_epoch=1000, diverged=()):
    """Drive ``thinner`` like the writer does, mirroring its plans in a plain set (the 'database')."""
    stored, peak = set(), 0
    for i in range(n):
        step = 3 * i
        if i and i % per_epoch == 0:
            stored_plan = thinner.end_epoch(step // (3 * per_epoch) - 1)
            assert stored_plan.delete == []
        _, plan = thinner.add(step, i // per_epoch, nbytes)
        stored -= set(plan.delete)
        stored.add(step)
        if step in diverged:
            thinner.diverged(step)
        assert stored == set(thinner.kept), "plans must describe exactly what the thinner keeps"
        assert thinner.total == nbytes * len(stored)
        peak = max(peak, thinner.total)
    return stored, peak


def test_rank_counts_trailing_zero_bits():
    assert [rank(n) for n in (1, 2, 3, 4, 12, 1024)] == [0, 1, 0, 2, 2, 10]
    assert rank(0) == 64


def test_budget_is_kept_and_coverage_stays_even():
    t = SnapshotThinner(budget_bytes=100_000)
    stored, peak = feed(t, 20_000, nbytes=1000, per_epoch=5000)
    protected = {k.step for k in t.kept.values() if k.keep}
    assert peak <= 100_000 + 1000 * len(protected)
    assert t.total >= 100_000 // 2 - 1000 * len(protected)    # never thinned far below half
    seqs = np.array(sorted(k.seq for k in t.kept.values() if not k.keep))
    gaps = np.diff(seqs[:-1])       # the newest may sit between grid points
    assert gaps.max() <= 2 ** t.level and gaps.min() >= 1
    assert t.thinned == 20_000 - len(stored)


def test_first_last_of_each_epoch_and_diverged_are_never_dropped():
    t = SnapshotThinner(budget_bytes=20_000)
    stored, _ = feed(t, 8_000, nbytes=1000, per_epoch=1000, diverged={3 * 4321})
    steps = set(t.kept)
    assert 0 in steps                                       # the first
    for epoch in range(8):
        assert 3 * (1000 * epoch + 999) in steps            # the last of every epoch
    assert 3 * 4321 in steps                                # the diverged step
    assert 3 * 7999 in steps and t.newest == 3 * 7999       # the newest, until the next arrives
    assert len(stored) < 40


def test_diverged_without_its_own_snapshot_protects_the_last_before():
    t = SnapshotThinner(budget_bytes=5_000)
    for i in range(100):
        t.add(10 * i, 0, 1000)
    last_before = max(s for s in t.kept if s <= 555)
    t.diverged(555)
    for i in range(100, 400):
        t.add(10 * i, 0, 1000)
    assert last_before in t.kept and t.kept[last_before].keep


def test_a_repeated_step_replaces_and_keeps_the_accounting():
    t = SnapshotThinner(budget_bytes=10_000)
    t.add(5, 0, 1000)
    t.add(5, 0, 3000)
    assert t.total == 3000 and list(t.kept) == [5] and t.kept[5].keep

"""Property-based tests of the numeric core: CCC and its torch loss, stamp order, and the aligner that
puts the face and audio streams on the 25 Hz grid (core/alignment.py's docstring states the rules
checked here)."""
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from emo_perception.core.alignment import (ADDED, BAD_STAMP, GONE_AFTER, HELD, JUMPED, LATE, MAX_WAIT, PERIOD,
                                         StreamAligner)
from emo_perception.core.metrics import ccc, pcc
from emo_perception.core.stream_time import FIRST, JUMP_BACK, JUMP_FORWARD, NEXT, OLDER, StampOrder, drop_stale
from emo_perception.nets.losses import ccc_loss, masked_ccc_loss

seeds = st.integers(0, 2**32 - 1)
values = st.floats(-10, 10, allow_nan=False)


@st.composite
def series_pairs(draw, min_size=1):
    n = draw(st.integers(min_size, 200))
    return draw(arrays(np.float64, n, elements=values)), draw(arrays(np.float64, n, elements=values))


# ---------------------------------------------------------------------------------- CCC
@settings(max_examples=100)
@given(pair=series_pairs())
def test_ccc_is_symmetric_within_minus_one_and_one_and_no_larger_than_pearson(pair):
    x, y = pair
    c = ccc(x, y)
    assert -1.0 - 1e-12 <= c <= 1.0 + 1e-12
    assert c == ccc(y, x)
    assert abs(c) <= abs(pcc(x, y)) + 1e-9      # CCC = Pearson x a factor in [0, 1]


@settings(max_examples=100)
@given(x=arrays(np.float64, st.integers(2, 200), elements=values), scale=st.floats(0.5, 2.0),
       shift=st.floats(-1.0, 1.0))
def test_ccc_is_one_exactly_for_identical_series_and_below_one_for_any_other_line(x, scale, shift):
    assume(x.var() > 1e-6)
    assert ccc(x, x) == pytest.approx(1.0, abs=1e-12)
    if abs(scale - 1.0) > 1e-3 or abs(shift) > 1e-3:
        assert ccc(x, scale * x + shift) < 1.0


@settings(max_examples=50)
@given(n=st.integers(1, 50), a=values, b=values, seed=seeds)
def test_ccc_of_two_constant_series_and_pearson_of_one_are_zero(n, a, b, seed):
    # also when the constant is no binary fraction and its computed variance is rounding noise
    assert ccc(np.full(n, a), np.full(n, b)) == 0.0 and ccc(np.full(n, a), np.full(n, a)) == 0.0
    other = np.random.default_rng(seed).normal(size=n)
    assert pcc(np.full(n, a), other) == 0.0 and pcc(other, np.full(n, b)) == 0.0
    assert pcc(np.full(n, a), np.full(n, a)) == 0.0


@settings(max_examples=100)
@given(batch=st.integers(1, 4), steps=st.integers(2, 60), seed=seeds, dtype=st.sampled_from([torch.float64,
                                                                                              torch.float32]))
def test_ccc_loss_is_one_minus_ccc_averaged_over_the_batch(batch, steps, seed, dtype):
    rng = np.random.default_rng(seed)
    pred = rng.normal(rng.normal(), rng.uniform(0.1, 2), (batch, steps))
    gold = 0.5 * pred + rng.normal(rng.normal(), rng.uniform(0.1, 2), (batch, steps))
    expected = np.mean([1 - ccc(p, g) for p, g in zip(pred, gold)])
    loss = ccc_loss(torch.tensor(pred, dtype=dtype), torch.tensor(gold, dtype=dtype))
    assert loss.dtype == dtype and loss.shape == ()
    assert loss.item() == pytest.approx(expected, abs=1e-5)


@settings(max_examples=100)
@given(batch=st.integers(1, 3), steps=st.integers(1, 40), columns=st.integers(1, 3),
       missing=st.sampled_from([0.0, 0.2, 0.6, 1.0]), seed=seeds)
def test_masked_ccc_loss_is_one_minus_ccc_over_the_labelled_entries_of_each_sequence(batch, steps, columns, missing,
                                                                                   seed):
    rng = np.random.default_rng(seed)
    pred = rng.normal(0, 1, (batch, steps, columns))
    gold = 0.5 * pred + rng.normal(0, 1, pred.shape)
    gold[rng.random(gold.shape) < missing] = np.nan
    per_sequence = [1 - ccc(pred[b, ok, c], gold[b, ok, c])
                    for b in range(batch) for c in range(columns)
                    for ok in [np.isfinite(gold[b, :, c])] if ok.sum() >= 2]
    loss = masked_ccc_loss(torch.tensor(pred), torch.tensor(gold), dim=-2)
    assert math.isfinite(loss.item())
    assert loss.item() == pytest.approx(np.mean(per_sequence) if per_sequence else 0.0, abs=1e-5)


# ---------------------------------------------------------------------------------- stamp order
# Dyadic times (multiples of 1/1024 s) keep the arithmetic exact, so boundaries are tested exactly.
dyadic = st.integers(-2**20, 2**20).map(lambda k: k / 1024)


@settings(max_examples=100)
@given(last=dyadic, delta=dyadic, threshold=st.integers(1, 2**12).map(lambda k: k / 1024))
def test_a_stamp_is_judged_by_its_distance_from_the_last_accepted_one_only(last, delta, threshold):
    order = StampOrder(threshold)
    assert order.classify(last) == FIRST
    order.accept(last)
    expected = (JUMP_BACK if delta < -threshold else OLDER if delta < 0 else
                JUMP_FORWARD if delta > threshold else NEXT)
    assert order.classify(last + delta) == expected
    moved = StampOrder(threshold, last=last + 1000.0)
    assert moved.classify(last + 1000.0 + delta) == expected      # the same distance anywhere on the clock


@settings(max_examples=100)
@given(seen=st.dictionaries(st.text(max_size=3), dyadic, max_size=20), now=dyadic,
       max_age=st.integers(0, 2**12).map(lambda k: k / 1024))
def test_drop_stale_removes_exactly_the_entries_older_than_max_age(seen, now, max_age):
    states = dict(seen)
    dropped = drop_stale(states, now, max_age, lambda t: t)
    assert set(dropped) | set(states) == set(seen) and not set(dropped) & set(states)
    assert all(now - seen[k] > max_age for k in dropped)
    assert all(now - t <= max_age for t in states.values())


# ---------------------------------------------------------------------------------- the aligner
@st.composite
def streams(draw, min_gap_ms=1, max_gap_ms=300, audio_min_gap_ms=1):
    """Stamps (s) of the face and audio streams: each strictly increasing, both starting within 200 ms,
    on a whole-ms grid, at an offset that is small, moderate or today's epoch seconds."""
    t0 = draw(st.sampled_from([0.0, 1000.0, 1.7e9]))
    out = {}
    for name, lo in (("face", min_gap_ms), ("audio", max(min_gap_ms, audio_min_gap_ms))):
        start = draw(st.integers(0, 200))
        gaps = draw(st.lists(st.integers(lo, max_gap_ms), min_size=0, max_size=40))
        out[name] = [t0 + (start + g) / 1000 for g in np.cumsum([0] + gaps)]
    return out


def _run(aligner, arrivals, incremental=True):
    """Add (stream, stamp) samples in arrival order (ready() after each, as the nodes do); then flush.
    Items are (stream, stamp). Returns the steps as tuples and the add() verdicts."""
    steps, verdicts = [], []
    for stream, stamp in arrivals:
        verdicts.append(aligner.add(stream, stamp, (stream, stamp)))
        if incremental:
            steps += aligner.ready()
    steps += aligner.ready(flush=True)
    return [(s.time, s.face, s.audio, s.epoch) for s in steps], verdicts


def _by_stamp(stamps):
    return sorted(((n, t) for n, ts in stamps.items() for t in ts), key=lambda a: (a[1], a[0]))


def _interleaved(stamps, delays):
    """Arrival order when each sample arrives up to `delay` after its stamp, each stream in order."""
    arrivals = []
    for name, ts in stamps.items():
        latest = -math.inf
        for t, d in zip(ts, delays[name]):
            latest = max(latest, t + d)        # a stream's own samples never overtake each other
            arrivals.append((latest, name, t))
    return [(n, t) for _, n, t in sorted(arrivals)]


def _check_steps(steps, aligner):
    times = [t for t, *_ in steps]
    assert all(a < b for a, b in zip(times, times[1:])), "steps not strictly increasing"
    for t, face, audio, _ in steps:
        assert face is not None or audio is not None, f"step {t} rests on no data"
        assert abs(t - round(t / aligner.period) * aligner.period) < 1e-6, f"step {t} is off the grid"
        for item in (face, audio):
            if item is not None:
                s = item[1]
                assert abs(s - t) <= aligner.tolerance + 1e-6 or 0 < t - s <= aligner.hold + 1e-6, (t, item)


@settings(max_examples=100)
@given(stamps=streams(), order_seed=seeds)
def test_steps_rise_on_the_grid_and_rest_on_near_samples_whatever_the_interleaving(stamps, order_seed):
    # any interleaving that keeps each stream in order; jumps are another test
    rng = np.random.default_rng(order_seed)
    labels = rng.permutation(["face"] * len(stamps["face"]) + ["audio"] * len(stamps["audio"]))
    queues = {n: list(ts) for n, ts in stamps.items()}
    arrivals = [(n, queues[n].pop(0)) for n in labels]
    aligner = StreamAligner(jump_threshold=1e6)
    steps, verdicts = _run(aligner, arrivals)
    _check_steps(steps, aligner)
    assert set(verdicts) <= {ADDED, LATE} and verdicts.count(LATE) == aligner.stats.late_dropped
    assert aligner.stats.steps == len(steps)


@settings(max_examples=100)
@given(data=st.data(), audio_hop_ms=st.sampled_from([0, 30]), lag=st.floats(0.0, 0.25))
def test_arrival_within_the_wait_window_gives_the_steps_of_stamp_order(data, audio_hop_ms, lag):
    # The audio node's stamps are at least a hop apart, and the aligner may rely on it (min_interval).
    stamps = data.draw(streams(audio_min_gap_ms=max(1, audio_hop_ms)))
    # each sample up to `lag` (< max_wait - tolerance) after its stamp; the earliest one first (it sets the grid)
    delays = {n: data.draw(st.lists(st.floats(0.0, lag), min_size=len(ts), max_size=len(ts)))
              for n, ts in stamps.items()}
    first = min(stamps, key=lambda n: (stamps[n][0], n))
    delays[first][0] = 0.0

    def aligner():
        return StreamAligner(min_interval={"audio": audio_hop_ms / 1000} if audio_hop_ms else {})

    # the other stream starts while the first runs: it is fused from max_wait after its first stamp
    second = "audio" if first == "face" else "face"
    joins = {first: -math.inf, second: stamps[second][0] + MAX_WAIT} if stamps[second] else {first: -math.inf}
    ordered, _ = _run(aligner(), _by_stamp(stamps))
    arrivals = _interleaved(stamps, delays)
    late, verdicts = _run(aligner(), arrivals)
    at_once, _ = _run(aligner(), _by_stamp(stamps), incremental=False)
    assert late == ordered
    # only samples from before their stream joined can come too late (no step waited for them)
    assert all(t < joins[n] for (n, t), v in zip(arrivals, verdicts) if v == LATE)
    assert at_once == ordered
    _check_steps(ordered, aligner())
    # every step takes a nearest sample within tolerance of each stream once it has joined (to 1 us: at
    # epoch seconds a float resolves 0.24 us, and which of two equidistant samples wins is then rounding)
    for t, face, audio, _ in ordered:
        for name, item in (("face", face), ("audio", audio)):
            if t < joins.get(name, math.inf) - 1e-6:
                assert item is None, (t, name, item)
                continue
            near = [abs(s - t) for s in stamps[name] if abs(s - t) <= PERIOD + 1e-6]
            if near and min(near) < PERIOD - 1e-6:
                assert item is not None and abs(item[1] - t) <= min(near) + 1e-6, (t, name, item)


@settings(max_examples=100)
@given(stamps=streams(max_gap_ms=100), data=st.data())
def test_one_bad_stamp_costs_only_itself(stamps, data):
    arrivals = _by_stamp(stamps)
    span = arrivals[-1][1] - arrivals[0][1]
    at = data.draw(st.integers(1, len(arrivals)), label="position")
    stream = data.draw(st.sampled_from(["face", "audio"]), label="stream")
    ahead = data.draw(st.booleans(), label="ahead")
    bad = arrivals[0][1] + (span + data.draw(st.floats(5, 1e4)) if ahead else -data.draw(st.floats(5, 1e4)))
    with_bad = arrivals[:at] + [(stream, bad)] + arrivals[at:]
    clean, _ = _run(StreamAligner(), arrivals)
    aligner = StreamAligner()
    steps, verdicts = _run(aligner, with_bad)
    assert steps == clean
    assert verdicts[at] == HELD and aligner.stats.time_jumps == 0 and aligner.epoch == 0
    resolved = any(n == stream for n, _ in arrivals[at:])      # its own stream went on in the old base
    assert aligner.stats.bad_stamps == int(resolved) and verdicts.count(BAD_STAMP) == int(resolved)


@settings(max_examples=100)
@given(old=streams(max_gap_ms=100), new=streams(max_gap_ms=100), back=st.booleans(), distance=st.floats(5, 1e4))
def test_a_confirmed_time_jump_ends_one_base_and_starts_the_next_as_if_fresh(old, new, back, distance):
    old_arrivals = _by_stamp(old)
    # the new base: a looping bag (back) or a clock step (forward), well clear of the old one
    base = old_arrivals[0][1] - distance - 20 if back else old_arrivals[-1][1] + distance
    new_arrivals = [(n, base + t - min(ts[0] for ts in new.values())) for n, t in _by_stamp(new)]
    assume(len(new_arrivals) >= 2)
    # confirmed by the first held sample after which every stream producing in the old base has
    # jumped, or once the held ones ran gone_after alone
    newest_old = old_arrivals[-1][1]
    live = {n for n, ts in old.items() if ts and max(ts) >= newest_old - GONE_AFTER}
    confirm = next((j for j in range(1, len(new_arrivals))
                    if live <= {n for n, _ in new_arrivals[:j + 1]}
                    or new_arrivals[j][1] - new_arrivals[0][1] > GONE_AFTER), None)
    assume(confirm is not None)
    aligner = StreamAligner()
    steps, verdicts = _run(aligner, old_arrivals + new_arrivals)
    k = len(old_arrivals)
    assert verdicts[k:k + confirm + 1] == [HELD] * confirm + [JUMPED]
    assert aligner.stats.time_jumps == 1 and aligner.epoch == 1
    before, _ = _run(StreamAligner(), old_arrivals)
    after, _ = _run(StreamAligner(), new_arrivals)
    assert steps == before + [(t, f, a, 1) for t, f, a, _ in after]

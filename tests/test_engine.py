"""The event engine on its own (kalab.engine), as SimPy tests its core: order, instants, lateness,
cancelling and shifting, the step limit.  No scenario, no host: plain callbacks."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalab.engine import APP, DELIVER, FAULT, TIMER, Engine, StepLimit, resolution_s


def recorder(engine):
    seen = []

    def note(name):
        seen.append((name, engine.now, engine.late_s))
    return seen, note


def names(seen):
    return [x[0] for x in seen]


def test_events_run_by_time_then_priority_then_insertion():
    e = Engine(100)
    seen, note = recorder(e)
    e.at(2.0, FAULT, note, "late fault")
    e.at(1.0, APP, note, "app")
    e.at(1.0, TIMER, note, "timer")
    e.at(1.0, DELIVER, note, "deliver 1")
    e.at(1.0, DELIVER, note, "deliver 2")
    e.at(1.0, FAULT, note, "fault")
    e.run(100)
    assert names(seen) == ["fault", "deliver 1", "deliver 2", "timer", "app", "late fault"]
    assert [t for _, t, _ in seen] == [1.0, 1.0, 1.0, 1.0, 1.0, 2.0]


def test_the_same_instant_is_the_same_to_the_runs_resolution():
    """29.4995 + 6 and 35.499 + 0.0005 differ in the last bits: one instant all the same, so the
    arrival (DELIVER) goes before the program timer (APP) whichever sum is a few 1e-15 s smaller."""
    a, b = 29.4995 + 6, 35.499 + 0.0005
    assert a != b
    for t_app, t_deliver in ((a, b), (b, a)):
        e = Engine(86400)
        seen, note = recorder(e)
        e.at(t_app, APP, note, "sshd wait")
        e.at(t_deliver, DELIVER, note, "arrival")
        e.run(86400)
        assert names(seen) == ["arrival", "sshd wait"]
        assert seen[0][1] == t_deliver                       # the event keeps its exact time ...
        assert seen[1][1] == max(a, b)                       # ... and time never runs backwards


def test_events_further_apart_than_the_resolution_keep_their_time_order():
    e = Engine(86400)
    seen, note = recorder(e)
    q = resolution_s(86400)
    e.at(10.0 + 2 * q, FAULT, note, "later, higher priority")
    e.at(10.0, APP, note, "earlier, lower priority")
    e.run(100)
    assert names(seen) == ["earlier, lower priority", "later, higher priority"]


@pytest.mark.parametrize("until_s, expected", [(1, 2.0 ** -29), (86400, 2.0 ** -29), (12 * 86400, 2.0 ** -29),
                                               (1e8, 2.0 ** -22)])
def test_the_resolution_is_a_power_of_two_above_1ns_and_16_ulp(until_s, expected):
    q = resolution_s(until_s)
    assert q == expected
    assert q >= 1e-9 and q >= 16 * math.ulp(until_s)
    assert math.log2(q).is_integer()


@given(st.floats(0.001, 1e8))
def test_the_instant_is_monotone_in_time(t):
    e = Engine(1e8)
    assert e.instant(t) <= e.instant(math.nextafter(t, math.inf)) <= e.instant(t + 1e-6)


def test_lateness_is_inherited_unless_given():
    e = Engine(100)
    seen, note = recorder(e)

    def first():
        note("first")
        e.at(2.0, TIMER, note, "inherits")
        e.at(2.0, TIMER, note, "own", late_s=0.5)
        e.at_fixed(3.0, DELIVER, note, "fixed inherits")

    e.at(1.0, TIMER, first, late_s=0.25)
    e.run(100)
    assert seen == [("first", 1.0, 0.25), ("inherits", 2.0, 0.25), ("own", 2.0, 0.5), ("fixed inherits", 3.0, 0.25)]


def test_cancelled_events_do_not_run():
    e = Engine(100)
    seen, note = recorder(e)
    h = e.at(1.0, TIMER, note, "cancelled")
    e.at(2.0, TIMER, note, "kept")
    h.cancel()
    e.run(100)
    assert names(seen) == ["kept"]


def test_cancel_owner_cancels_only_that_owners_events():
    e = Engine(100)
    seen, note = recorder(e)
    a, b = object(), object()
    e.at(1.0, TIMER, note, "a1", owner=a)
    e.at(2.0, TIMER, note, "b", owner=b)
    e.at(3.0, TIMER, note, "a2", owner=a)
    e.at(4.0, TIMER, note, "nobody's")
    e.cancel_owner(a)
    e.run(100)
    assert names(seen) == ["b", "nobody's"]


def test_postpone_shifts_an_owners_pending_events_and_keeps_their_lateness():
    """A sleeping host's clocks stop: its timers move by the sleep, others stay put."""
    e = Engine(100)
    seen, note = recorder(e)
    host = object()
    e.at(1.0, TIMER, note, "host timer", owner=host, late_s=0.125)
    dead = e.at(1.5, TIMER, note, "cancelled host timer", owner=host)
    e.at(2.0, DELIVER, note, "segment")
    dead.cancel()
    assert e.postpone(host, 5.0) == 1
    e.run(100)
    assert seen == [("segment", 2.0, 0.0), ("host timer", 6.0, 0.125)]


def test_no_event_in_the_past_or_at_an_impossible_time():
    e = Engine(100)
    e.at(5.0, TIMER, lambda: None)
    e.run(100)
    assert e.now == 5.0
    for bad in (4.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="finite and not in the past"):
            e.at(bad, TIMER, lambda: None)
        with pytest.raises(ValueError, match="finite and not in the past"):
            e.at_fixed(bad, DELIVER, lambda: None)
    h = e.at(5.0 - 1e-13, TIMER, lambda: None)       # rounding noise below now: now
    assert h.t == 5.0


def test_a_fixed_sequence_number_keeps_its_place_among_same_instant_events():
    """Traffic scheduled one send at a time keeps the place it had if scheduled at the start."""
    e = Engine(100)
    seen, note = recorder(e)
    e.at(1.0, APP, note, "scheduled first")
    e.at(1.0, APP, note, "traffic entry 0", seq=-2)
    e.at(1.0, APP, note, "traffic entry 1", seq=-1)
    e.run(100)
    assert names(seen) == ["traffic entry 0", "traffic entry 1", "scheduled first"]


def test_run_stops_at_until_and_can_go_on():
    e = Engine(100)
    seen, note = recorder(e)
    for t in (1.0, 2.0, 3.0):
        e.at(t, TIMER, note, t)
    e.run(2.0)
    assert names(seen) == [1.0, 2.0] and e.steps == 2 and e.now == 2.0
    e.run(100)
    assert names(seen) == [1.0, 2.0, 3.0] and e.steps == 3


def test_an_endless_chain_hits_the_step_limit():
    e = Engine(1e8)

    def again():
        e.at(e.now + 1.0, TIMER, again)

    e.at(0.0, TIMER, again)
    with pytest.raises(StepLimit, match="exceeded 50 events"):
        e.run(1e8, max_steps=50)
    assert isinstance(StepLimit("x"), RuntimeError) and e.steps == 50

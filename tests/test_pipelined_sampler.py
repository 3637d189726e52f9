"""The pipelined sampler (rig.sampler) and the two-phase SCPI transport under it (``send`` / ``collect``),
against the simulated instruments over real sockets (nothing of pyvisa or pymodbus is mocked).

What is proven here, by what reached each simulated unit and by the order of events (never by timing):

- every unit's request goes out before any reply is read, one line per unit, as ``measure()`` sends it;
- a reply owed to a sent batch never answers another request: not when another thread talks to the
  unit in between, nor after a late, garbled, duplicated or lost reply;
- a reading over a live limit trips the rig before the rest of the sample is collected.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from instruments import fixture_map as fm
from instruments.drivers.chroma_63200a import Chroma63200A
from instruments.drivers.ea_psi import EaPsi
from instruments.drivers.itech_it6000c import ItechIT6000C
from instruments.drivers.nacs_fixture import NacsInletFixture
from instruments.errors import InstrumentTimeout, ModbusDeviceError
from instruments.roles import LoadReading, Rating, SupplyReading
from instruments.sim.bench import SimulatedBench
from rig.clock import Clock
from rig.errors import SafetyTrip
from rig.safety import reading_trip_reason, trip_reason
from rig.sampler import Sampler
from rig.session import Rig
from tests.test_serial_transports import PtyInstrument
from tests.test_transport_faults import PROXY_TIMEOUT, TIMEOUT, DuplicatingProxy, lines_since, wait_until

PSU_RATING = Rating(voltage=1500, current=60, power=30000)
LOAD_RATING = Rating(voltage=150, current=600, power=6000)
MEASURE_LINE = "MEAS:ARR?;:OUTP?;:STAT:QUES:COND?"


@pytest.fixture
def psu(bench: SimulatedBench) -> Iterator[EaPsi]:
    drv = EaPsi("psu_hv", bench.servers["psu_hv"].resource, PSU_RATING)
    drv.transport.settings = dataclasses.replace(EaPsi.SETTINGS, timeout_s=TIMEOUT)
    drv.open()
    drv.set_voltage(400)
    drv.set_current_limit(5)
    yield drv
    bench.servers["psu_hv"].faults = type(bench.servers["psu_hv"].faults)()
    drv.close()


@pytest.fixture
def load(bench: SimulatedBench) -> Iterator[Chroma63200A]:
    drv = Chroma63200A("load_hc1", bench.servers["load_hc1"].resource, LOAD_RATING)
    drv.transport.settings = dataclasses.replace(Chroma63200A.SETTINGS, timeout_s=TIMEOUT)
    drv.open()
    yield drv
    drv.close()


@pytest.fixture
def inlet(bench: SimulatedBench) -> Iterator[NacsInletFixture]:
    fixture = NacsInletFixture("inlet", bench.fixture.resource, bench.fixture.unit_id, timeout_s=TIMEOUT)
    fixture.open()
    yield fixture
    fixture.close()


def sampler_of(*instruments: Any, on_reading: Callable[..., None] | None = None) -> Sampler:
    return Sampler({i.name: i for i in instruments}, Clock(1.0), 1.0, lambda s: None, on_reading=on_reading)


class Events:
    """The order in which things happened, stamped by wrapping the instruments' own methods."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def add(self, kind: str, what: str) -> None:
        with self.lock:
            self.log.append((kind, what))

    def wrap(self, inst: Any, method: str, kind: str) -> None:
        original = getattr(inst, method)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            self.add(kind, inst.name)
            return result
        setattr(inst, method, wrapped)  # on the instance only: the sampler calls the same object

    def index(self, kind: str, what: str) -> int:
        return self.log.index((kind, what))


# --- the wire ------------------------------------------------------------------------------------------


def test_requests_go_out_before_replies_are_read_and_gap_limited_units_come_last(
        bench: SimulatedBench, psu: EaPsi, load: Chroma63200A, inlet: NacsInletFixture) -> None:
    itech = ItechIT6000C("psu_hc1", bench.servers["psu_hc1"].resource, Rating(80, 450, 15000))
    itech.open()
    events = Events()
    for unit in (psu, load, itech, inlet):
        events.wrap(unit, "send_measure", "send")
        events.wrap(unit, "collect_measure", "collect")
    events.wrap(inlet, "read", "read")
    names = ("psu_hv", "load_hc1", "psu_hc1")
    starts = {n: len(bench.servers[n].dialect.log) for n in names}
    try:
        sample = sampler_of(psu, load, itech, inlet).sample_once()
        sent = {n: lines_since(bench.servers[n], starts[n]) for n in names}
    finally:
        itech.close()
    assert not sample.errors, sample.errors
    assert isinstance(sample.readings["psu_hv"], SupplyReading)
    assert isinstance(sample.readings["load_hc1"], LoadReading)
    # The units without a gap rule are asked, then the fixture (one block read, also split in two),
    # before any reply is read; their replies are collected in the order they arrive; the EA supply
    # (5 ms between messages) is asked once every other reading is in. No whole read of the fixture.
    assert events.log[:3] == [("send", "load_hc1"), ("send", "psu_hc1"), ("send", "inlet")]
    assert sorted(events.log[3:6]) == [("collect", "inlet"), ("collect", "load_hc1"), ("collect", "psu_hc1")]
    assert events.log[6:] == [("send", "psu_hv"), ("collect", "psu_hv")]
    assert sent == {"psu_hv": [MEASURE_LINE], "load_hc1": ["MEAS:VOLT?;:MEAS:CURR?;:LOAD?;:LOAD:PROT?"],
                    "psu_hc1": ["MEAS:VOLT?;:MEAS:CURR?;:OUTP?;:STAT:QUES:COND?"]}


def test_another_exchange_between_send_and_collect_reads_the_owed_reply_first(
        bench: SimulatedBench, psu: EaPsi) -> None:
    """The wrong-order case: a plan's query from another thread lands between the sampler's send and
    its collect. Each gets its own answer; the wire stays request, reply, request, reply."""
    psu.output_on()
    server = bench.servers["psu_hv"]
    start = len(server.dialect.log)
    sent = psu.send_measure()
    assert sent is not None
    answers: list[str] = []
    other = threading.Thread(target=lambda: answers.append(psu.transport.query("SOUR:CURR?")))
    other.start()
    other.join(5)
    assert answers == ["5.00 A"]  # not the measurement's reply
    reading = psu.collect_measure(sent)
    assert (reading.voltage, reading.output_on) == (400.0, True)  # not "5.00 A"
    assert lines_since(server, start) == [MEASURE_LINE, "SOUR:CURR?"]
    assert psu.transport.fault_count == 0
    psu.safe_state()


def test_a_late_reply_to_a_pipelined_batch_never_answers_the_next_request(
        bench: SimulatedBench, psu: EaPsi) -> None:
    server = bench.servers["psu_hv"]
    psu.output_on()
    server.faults.latency_s = 3 * TIMEOUT  # the batch's reply comes after the timeout
    start = len(server.dialect.log)
    sent = psu.send_measure()
    assert sent is not None
    with pytest.raises(InstrumentTimeout, match=r"no reply within 0\.2 s"):
        sent.pending.collect()  # the first attempt alone: the connection is closed after it
    server.faults.latency_s = 0.0
    wait_until(lambda: MEASURE_LINE in lines_since(server, start))  # its reply has gone out
    assert psu.transport.query("SOUR:CURR?") == "5.00 A"  # on a fresh connection, not the late batch reply
    reading = psu.measure()
    assert (reading.voltage, reading.output_on) == (400.0, True)
    psu.safe_state()


def test_a_sampler_over_a_late_reply_asks_again_on_a_fresh_connection(
        bench: SimulatedBench, psu: EaPsi, inlet: NacsInletFixture) -> None:
    """A reply dropped once costs one fault and one ask again, as ``measure()`` does; the reading is
    the present one."""
    server = bench.servers["psu_hv"]
    psu.output_on()
    sampler = sampler_of(psu, inlet)
    server.faults.drop_replies = 1
    start = len(server.dialect.log)
    sample = sampler.sample_once()
    assert not sample.errors, sample.errors
    reading = sample.readings["psu_hv"]
    assert isinstance(reading, SupplyReading) and (reading.voltage, reading.output_on) == (400.0, True)
    assert psu.transport.fault_count == 1
    sent = lines_since(server, start)
    assert sent[0] == MEASURE_LINE and sent[-1] == MEASURE_LINE  # asked again, after the reconnect
    psu.safe_state()


def test_a_garbled_pipelined_reply_is_asked_again_and_never_parsed_as_a_reading(
        bench: SimulatedBench, psu: EaPsi, inlet: NacsInletFixture) -> None:
    psu.output_on()
    bench.servers["psu_hv"].faults.garbage_replies = 1
    sample = sampler_of(psu, inlet).sample_once()
    assert not sample.errors, sample.errors
    reading = sample.readings["psu_hv"]
    assert isinstance(reading, SupplyReading) and (reading.voltage, reading.output_on) == (400.0, True)
    psu.safe_state()


def test_a_connection_closed_before_collect_fails_the_owed_reply_and_it_is_asked_again(
        bench: SimulatedBench, psu: EaPsi) -> None:
    sent = psu.send_measure()
    assert sent is not None
    psu.transport.close()  # e.g. a reopen after another exchange's timeout: the reply is gone with it
    with pytest.raises(InstrumentTimeout, match="connection closed before the reply was read"):
        sent.pending.collect()
    reading = psu.collect_measure(sent)  # the driver's collect asks again on a fresh connection
    assert reading.output_on is False and psu.transport.query("SOUR:VOLT?") == "400.00 V"


def test_no_stale_reading_while_a_proxy_duplicates_every_batch_reply(bench: SimulatedBench) -> None:
    """The surplus-line case of the fail-closed issue, through the pipelined sampler: each duplicate is
    found before the next send, the connection reopened (a fault each), and every reading is the present
    one while the setpoint changes between samples."""
    proxy = DuplicatingProxy(bench.servers["psu_hv"], lambda line: line.count(";") == 2)  # the batch reply
    psu = EaPsi("psu_hv", proxy.resource, PSU_RATING)
    psu.transport.settings = dataclasses.replace(EaPsi.SETTINGS, timeout_s=PROXY_TIMEOUT)  # counts faults
    psu.open()
    try:
        psu.set_current_limit(5)
        psu.output_on()
        sampler = sampler_of(psu)
        faults = psu.transport.fault_count
        for volts in range(10, 110, 10):
            psu.set_voltage(volts)  # its error-queue check finds the duplicate first, then reconnects
            sample = sampler.sample_once()
            assert not sample.errors, sample.errors
            reading = sample.readings["psu_hv"]
            assert isinstance(reading, SupplyReading) and (reading.voltage, reading.output_on) == (volts, True)
        assert proxy.duplicated == 10
        assert psu.transport.resyncs == 9  # the last duplicate waits for the next exchange
        assert psu.transport.query("SOUR:CURR?") == "5.00 A"  # which finds it, and is answered in step
        assert psu.transport.resyncs == 10 and psu.transport.fault_count == faults + 10
        psu.safe_state()
    finally:
        psu.close()
        proxy.close()


def test_sampling_and_a_plan_on_two_threads_never_swap_replies(
        bench: SimulatedBench, psu: EaPsi, load: Chroma63200A, inlet: NacsInletFixture) -> None:
    """One thread samples (send, read the fixture, collect) while another sets and reads back setpoints
    on the same units: every answer is the one asked for, and nothing is counted as a fault."""
    sampler = sampler_of(psu, load, inlet)
    failures: list[str] = []
    done = threading.Event()

    def sample_until_done() -> None:
        while not done.is_set():
            sample = sampler.sample_once()
            if sample.errors:
                failures.append(str(sample.errors))

    worker = threading.Thread(target=sample_until_done)
    worker.start()
    try:
        for k in range(40):
            volts = 100 + k
            psu.set_voltage(volts)
            assert psu.transport.query("SOUR:VOLT?") == f"{volts:.2f} V"
            assert psu.transport.query("SOUR:CURR?") == "5.00 A"
            assert load.transport.query("LOAD?") in ("0", "OFF")
    finally:
        done.set()
        worker.join(10)
    assert failures == []
    assert (psu.transport.fault_count, load.transport.fault_count) == (0, 0)
    assert sampler.count > 0


def test_pipelined_sample_over_rs232_and_a_late_reply_is_flushed_at_the_reopen(bench: SimulatedBench) -> None:
    unit = PtyInstrument(bench.servers["psu_hv"].dialect)
    psu = EaPsi("psu_hv", unit.resource, PSU_RATING)
    psu.transport.settings = dataclasses.replace(EaPsi.SETTINGS, timeout_s=TIMEOUT)
    try:
        psu.open()
        psu.set_current_limit(5)
        sample = sampler_of(psu).sample_once()
        assert not sample.errors, sample.errors
        assert MEASURE_LINE in unit.dialect.log
        unit.hold_next = True
        sent = psu.send_measure()
        assert sent is not None
        with pytest.raises(InstrumentTimeout):
            sent.pending.collect()
        unit.release.set()
        assert unit.released.wait(5)  # the late batch reply now waits in the port's input queue
        assert psu.transport.query("SOUR:CURR?") == "5.00 A"  # the reopen flushed it
    finally:
        psu.close()
        unit.close()


# --- live limits, reading by reading --------------------------------------------------------------------


def test_a_trip_on_one_reading_is_raised_before_the_rest_of_the_sample_is_collected(
        bench: SimulatedBench, sim_rig: Rig) -> None:
    sim_rig.sampler.stop()  # this test takes the samples itself, on its own thread
    events = Events()
    sim_rig.listeners.append(lambda kind, payload: events.add(kind, "rig") if kind in ("trip", "safe") else None)
    for inst in sim_rig.instruments.values():
        if hasattr(inst, "collect_measure"):
            events.wrap(inst, "collect_measure", "collect")
    bench.inject("estop")
    with pytest.raises(SafetyTrip, match="E-stop pressed"):  # the plan's reading never reaches it
        sim_rig.sample()
    sample = sim_rig.sampler.latest
    assert sample is not None and sim_rig.trip is not None and sim_rig.trip.startswith("E-stop pressed")
    trip = events.index("trip", "rig")
    # A reading tripped the rig as it was collected (the fixture's E-stop, or a unit's inhibit, which
    # the rig names by the fixture's chain: whichever arrived first), and the trip's safe state was
    # done before the sample went on: the gap-limited EA units, asked last, were collected after both.
    assert events.log[trip - 1][0] == "collect"
    assert all(events.index("collect", name) > events.index("safe", "rig") > trip for name in ("psu_hv", "load_hv"))
    collected = [what for kind, what in events.log if kind == "collect"]
    assert sorted(collected) == sorted(sim_rig.instruments)  # every unit once
    assert set(sample.readings) | set(sample.errors) == set(sim_rig.instruments)
    assert sim_rig.safe_reports[-1].ok, sim_rig.safe_reports[-1].lines()


def test_the_sample_check_composes_the_reading_checks_and_keeps_their_precedence(
        bench: SimulatedBench, sim_rig: Rig) -> None:
    """An E-stop inhibits the EA load (INH) too: read alone, the load's reading names its protection;
    the whole sample names the chain, which comes first."""
    sim_rig.sampler.stop()
    bench.inject("estop")
    sample = sim_rig.sampler.sample_once()
    load = sample.readings["load_hv"]
    assert isinstance(load, LoadReading) and load.protection is not None and "INH" in load.protection
    assert reading_trip_reason(load, sim_rig.limits, "load_hv") == "instrument protection: load_hv INH latched"
    assert trip_reason(sample, sim_rig.limits) == "E-stop pressed"
    assert sample.fixture is not None
    assert reading_trip_reason(sample.fixture, sim_rig.limits) == "E-stop pressed"


# --- arrival order, the fixture's split read ---------------------------------------------------------


def test_a_reading_that_arrived_is_checked_while_a_stalled_unit_is_still_awaited(
        bench: SimulatedBench, load: Chroma63200A, inlet: NacsInletFixture) -> None:
    """A unit that never answers is asked first, yet the readings that did arrive are checked before
    its timeout: the sampler collects replies as they arrive (select on their sockets)."""
    itech = ItechIT6000C("psu_hc1", bench.servers["psu_hc1"].resource, Rating(80, 450, 15000))
    itech.transport.settings = dataclasses.replace(ItechIT6000C.SETTINGS, timeout_s=TIMEOUT)
    itech.open()
    bench.servers["psu_hc1"].faults.stalled = True
    seen: list[tuple[str, str]] = []
    try:
        sample = sampler_of(itech, load, inlet, on_reading=lambda t, name, result: seen.append(
            (name, type(result).__name__))).sample_once()
    finally:
        bench.servers["psu_hc1"].faults.stalled = False
        itech.close()
    assert sorted(seen[:2]) == [("inlet", "FixtureReading"), ("load_hc1", "LoadReading")]
    assert seen[2][0] == "psu_hc1" and isinstance(sample.errors["psu_hc1"], InstrumentTimeout)


def test_a_fixture_request_between_send_and_collect_reads_the_owed_reply_first(
        bench: SimulatedBench, inlet: NacsInletFixture) -> None:
    """The fixture's block read is split in two like a SCPI batch: a request from another thread in
    between (the heartbeat, a plan) first reads the owed reply, then gets its own answer."""
    sent = inlet.send_measure()
    assert sent is not None
    answers: list[list[int]] = []
    other = threading.Thread(target=lambda: answers.append(inlet.transport.read_input(0, 2)))
    other.start()
    other.join(5)
    assert answers == [[fm.IDENT_MAGIC, fm.MAP_VERSION]]  # its own two registers, not the block
    reading = inlet.collect_measure(sent)  # decoding checks the block's identity register
    assert reading.safety_chain_ok and not reading.contactors_closed
    assert inlet.transport.fault_count == 0


def test_a_late_fixture_reply_never_answers_the_next_request_and_the_read_is_asked_again(
        bench: SimulatedBench, inlet: NacsInletFixture) -> None:
    bench.fixture.faults.latency_s = 3 * TIMEOUT
    sent = inlet.send_measure()
    assert sent is not None
    with pytest.raises(InstrumentTimeout, match=r"no reply within 0\.2 s"):
        sent.collect()  # the split read alone: its connection is dropped with the late reply
    bench.fixture.faults.latency_s = 0.0
    assert inlet.transport.read_input(0, 2) == [fm.IDENT_MAGIC, fm.MAP_VERSION]  # fresh connection
    bench.fixture.faults.latency_s = 3 * TIMEOUT
    sent = inlet.send_measure()
    assert sent is not None
    with pytest.raises(InstrumentTimeout):  # asked again once on a fresh connection, as ``read`` does
        inlet.collect_measure(sent)
    assert inlet.transport.fault_count == 3
    bench.fixture.faults.latency_s = 0.0
    assert inlet.collect_measure(inlet.send_measure()).safety_chain_ok  # no late reply taken for it


def test_a_modbus_exception_to_a_split_read_names_the_code_and_the_registers(
        bench: SimulatedBench, inlet: NacsInletFixture) -> None:
    bench.fixture.faults.exception_next = 4
    sent = inlet.send_measure()
    assert sent is not None
    with pytest.raises(ModbusDeviceError, match=r"Modbus exception 4 \(server device failure\)"):
        inlet.collect_measure(sent)
    assert inlet.read().safety_chain_ok  # an answer, not a broken link: the next read just works


# --- a trip's off commands, from the thread that saw it --------------------------------------------------


def test_write_if_ready_sends_only_what_needs_no_wait(bench: SimulatedBench, psu: EaPsi) -> None:
    server = bench.servers["psu_hv"]
    transport = psu.transport
    transport.settings = dataclasses.replace(transport.settings, min_gap_s=0.0)
    start = len(server.dialect.log)
    assert transport.write_if_ready("OUTP OFF")
    wait_until(lambda: lines_since(server, start) == ["OUTP OFF"])

    held, release = threading.Event(), threading.Event()

    def hold_the_unit() -> None:
        with transport._lock:  # another thread mid-exchange with the unit
            held.set()
            release.wait(5)
    other = threading.Thread(target=hold_the_unit)
    other.start()
    held.wait(5)
    assert not transport.write_if_ready("OUTP OFF")
    release.set()
    other.join(5)

    server.faults.stalled = True  # a reply owed to a sent batch that has not arrived
    sent = psu.send_measure()
    assert sent is not None and not transport.write_if_ready("OUTP OFF")
    with pytest.raises(InstrumentTimeout):
        sent.pending.collect()
    server.faults.stalled = False

    sent = psu.send_measure()  # a reply owed that has arrived is read first, then the command goes
    assert sent is not None
    wait_until(sent.ready)
    assert transport.write_if_ready("OUTP OFF")
    assert psu.collect_measure(sent).output_on is False

    transport.settings = dataclasses.replace(transport.settings, min_gap_s=60.0)  # a gap still to keep
    start = len(server.dialect.log)
    assert not transport.write_if_ready("OUTP OFF")
    assert lines_since(server, start) == []
    transport.settings = dataclasses.replace(transport.settings, min_gap_s=EaPsi.SETTINGS.min_gap_s)


def test_a_trips_off_commands_leave_from_the_thread_that_saw_it_before_anyone_is_told(
        bench: SimulatedBench, sim_rig: Rig) -> None:
    """The energised supply's OUTP OFF reaches it while the trip's listeners are still being told: the
    off commands are on their way before anything else happens (from the tripping thread itself, or
    from the pool when the EA supply still has its 5 ms gap to keep)."""
    from tests.test_safety_live import energised

    path = energised(sim_rig, 100.0, 1.0)
    supply = bench.servers[path.supply.name]
    start = len(supply.dialect.log)
    off_before_told: list[bool] = []

    def on_trip(kind: str, payload: Any) -> None:
        if kind == "trip":  # the tripping thread waits here; the safe state's pool has not started
            try:
                wait_until(lambda: "OUTP OFF" in lines_since(supply, start))
                off_before_told.append(True)
            except AssertionError:
                off_before_told.append(False)
    sim_rig.listeners.append(on_trip)
    hot = sim_rig.limits.max_temperature.value + 10
    with bench.model.lock:  # the whole inlet, ambient included, so it stays hot in the scaled time
        bench.model.advance()
        bench.model.params.ambient_c = hot
        for contact in bench.model.contacts.values():
            contact.node.temperature = hot
    with pytest.raises(SafetyTrip, match="over-temperature"):
        for _ in range(200):  # counted in samples, not in time
            sim_rig.sample()
    assert off_before_told == [True]
    assert sim_rig.safe_reports[-1].ok, sim_rig.safe_reports[-1].lines()

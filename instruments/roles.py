"""The roles the rest of the code speaks: DC supply, electronic load, NACS inlet fixture.

Plans and the rig never name a vendor; they call these methods. Each public setter checks the
setpoint against ``limits`` (the instrument's rating, narrowed by the rig to the DUT tier, rig config
and profile) *before* the driver is asked to send anything, and refuses with ``SetpointRefused``
rather than clipping. Drivers implement the ``_``-prefixed methods with the vendor's commands.

Units: volts, amperes, watts, ohms, degrees Celsius, seconds, percent for duty cycles.
"""

from __future__ import annotations

import enum
import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import ClassVar

from instruments.capabilities import Capability
from instruments.errors import BadReply, NotSupported, SetpointRefused, WrongInstrument

log = logging.getLogger("instruments")


@dataclass(frozen=True)
class Identity:
    """What an instrument says it is (``*IDN?`` or the fixture's identity registers)."""

    manufacturer: str
    model: str
    serial: str
    firmware: str

    @classmethod
    def parse_idn(cls, instrument: str, reply: str) -> Identity:
        fields = [f.strip() for f in reply.split(",")]
        if len(fields) < 4 or not fields[0] or not fields[1]:
            raise BadReply(instrument, f"reply {reply!r} is not 'maker,model,serial,firmware'", "*IDN?")
        # Some vendors (EA) put spaces and further comma-separated firmware parts after field 4.
        return cls(fields[0], fields[1], fields[2], ",".join(fields[3:]))

    def __str__(self) -> str:
        return f"{self.manufacturer} {self.model} s/n {self.serial} fw {self.firmware}"


@dataclass(frozen=True)
class Rating:
    """Nameplate maxima of one unit (or of a parallel group)."""

    voltage: float
    current: float
    power: float


@dataclass(frozen=True)
class Bound:
    """One upper bound and where it came from (shown when a setpoint is refused)."""

    value: float
    source: str


@dataclass(frozen=True)
class SetpointLimits:
    """Upper bounds on what may be programmed; each bound remembers its source."""

    voltage: Bound
    current: Bound
    power: Bound

    @classmethod
    def from_rating(cls, rating: Rating, source: str) -> SetpointLimits:
        return cls(Bound(rating.voltage, source), Bound(rating.current, source), Bound(rating.power, source))

    def narrowed(
        self,
        source: str,
        *,
        voltage: float | None = None,
        current: float | None = None,
        power: float | None = None,
    ) -> SetpointLimits:
        """The tighter of these limits and the given ones (a limit can only shrink)."""

        def tighter(old: Bound, new: float | None) -> Bound:
            return Bound(new, source) if new is not None and new < old.value else old

        return replace(
            self,
            voltage=tighter(self.voltage, voltage),
            current=tighter(self.current, current),
            power=tighter(self.power, power),
        )

    def check(self, instrument: str, what: str, value: float, bound: Bound, unit: str) -> None:
        if not math.isfinite(value) or value < 0:
            raise SetpointRefused(instrument, f"{what} {value!r} {unit} is not a finite value >= 0")
        if value > bound.value:
            raise SetpointRefused(
                instrument,
                f"{what} {value:g} {unit} refused: above the {bound.value:g} {unit} limit ({bound.source})",
            )


class Instrument(ABC):
    """Anything the rig opens, identifies, arms and makes safe."""

    role: ClassVar[str]
    #: ``*IDN?`` model field (or fixture identity) this driver accepts.
    MODEL_PATTERN: ClassVar[re.Pattern[str]]
    #: Short, human name of the family the driver speaks to.
    FAMILY: ClassVar[str]

    def __init__(self, name: str) -> None:
        self.name = name
        self.identity: Identity | None = None
        #: Optional features by key, as this unit showed them (see instruments.capabilities).
        self.capabilities: dict[str, Capability] = {}

    def open(self, *, prepare: bool = True) -> Identity:
        """Connect, identify (refusing a wrong model) and, with ``prepare``, take remote control.

        ``prepare=False`` is for read-only use (``rig monitor``): nothing is written to the unit.
        """
        self._connect()
        identity = self._identify()
        if not self.MODEL_PATTERN.search(identity.model):
            self.close()
            raise WrongInstrument(
                self.name,
                f"found {identity.manufacturer} {identity.model}, expected a {self.FAMILY} "
                f"(model matching {self.MODEL_PATTERN.pattern!r})",
            )
        self.identity = identity
        if prepare:
            self._prepare()
        return identity

    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def _identify(self) -> Identity: ...

    def _prepare(self) -> None:  # noqa: B027 - optional hook
        """After identification: remote lock, clear errors. Default: nothing."""

    def probe_capabilities(self) -> dict[str, Capability]:
        """Ask the unit which optional features it has, with queries that change nothing."""
        return self.capabilities

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def safe_state(self) -> None:
        """Command the safe state explicitly and read it back; never rely on defaults or *RST."""

    def arm_watchdog(self, timeout_s: float) -> None:
        """Arm the instrument's own I/O watchdog, so a dead PC still ends in a safe output."""
        raise NotSupported(self.name, f"{self.FAMILY} has no I/O watchdog")


# --- DC supply ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupplyReading:
    voltage: float
    current: float
    output_on: bool
    #: Name of a latched protection (``"OVP"``, ``"OCP"``, ``"INH"``, ``"WDOG"``...), or None.
    protection: str | None = None


@dataclass(frozen=True)
class SupplyProtection:
    """Protection settings as read back from the instrument."""

    ovp_volts: float
    ocp_amps: float | None  # None where OCP is "trip at the current limit" (Keysight), see driver.


class PowerInstrument(Instrument):
    """A supply or load: rated, limited, and guarded by the rig."""

    def __init__(self, name: str, rating: Rating) -> None:
        super().__init__(name)
        self.rating = rating
        self.limits = SetpointLimits.from_rating(rating, f"{name} rating")
        #: Called before anything that could energise the bench (setpoints, output on). The rig
        #: installs a check that refuses while a safety trip stands. Never called on the way to safe.
        self.guard: Callable[[], None] | None = None

    def _guarded(self) -> None:
        if self.guard is not None:
            self.guard()

    @abstractmethod
    def emergency_off(self) -> None:
        """Switch off at once, without waiting for the error queue; the caller reads back."""

    def emergency_off_now(self) -> bool:
        """``emergency_off`` if it needs no wait at all (nobody else talking to the unit, no gap to
        keep, no reply outstanding); False if nothing was sent. Drivers that can tell override it."""
        return False


class DCSupply(PowerInstrument):
    role = "supply"
    #: How far above the rating the unit accepts OVP/OCP trip levels (EA: 110 %). Drivers override.
    PROTECTION_HEADROOM: ClassVar[float] = 1.1

    def __init__(self, name: str, rating: Rating) -> None:
        super().__init__(name, rating)
        #: Loads on this supply's bus (the rig wires each power path): a voltage setpoint is also the
        #: voltage their power ratings are checked at.
        self.loads: list[ElectronicLoad] = []

    def set_voltage(self, volts: float) -> None:
        self._guarded()
        self.limits.check(self.name, "voltage", volts, self.limits.voltage, "V")
        for load in self.loads:  # a CC load already set would draw more than its power rating at this voltage
            load.check_power_at(volts)
        log.debug("%s: set voltage %g V", self.name, volts)
        for load in self.loads:
            load.set_path_voltage(volts)
        self._set_voltage(volts)

    def set_current_limit(self, amps: float) -> None:
        self._guarded()
        self.limits.check(self.name, "current limit", amps, self.limits.current, "A")
        log.debug("%s: set current limit %g A", self.name, amps)
        self._set_current_limit(amps)

    def set_protection(self, ovp_volts: float, ocp_amps: float) -> SupplyProtection:
        """Program OVP and OCP, read them back, and return what the instrument holds.

        OVP may sit above the setpoint limit (it is a trip level, not a setpoint) but never above the
        unit's rating plus the vendor's margin, which the driver enforces.
        """
        self._guarded()
        headroom = self.PROTECTION_HEADROOM
        where = f"{self.name} rating x {headroom:g}"
        self.limits.check(self.name, "OVP level", ovp_volts, Bound(self.rating.voltage * headroom, where), "V")
        self.limits.check(self.name, "OCP level", ocp_amps, Bound(self.rating.current * headroom, where), "A")
        self._set_protection(ovp_volts, ocp_amps)
        return self.read_protection()

    def output_on(self) -> None:
        self._guarded()
        log.debug("%s: output on", self.name)
        self._set_output(True)

    def output_off(self) -> None:
        log.debug("%s: output off", self.name)
        self._set_output(False)

    def safe_state(self) -> None:
        self._set_output(False)
        if self.measure().output_on:
            raise BadReply(self.name, "output still reads ON after OUTP OFF", "safe state")

    @abstractmethod
    def _set_voltage(self, volts: float) -> None: ...

    @abstractmethod
    def _set_current_limit(self, amps: float) -> None: ...

    @abstractmethod
    def _set_protection(self, ovp_volts: float, ocp_amps: float) -> None: ...

    @abstractmethod
    def read_protection(self) -> SupplyProtection: ...

    @abstractmethod
    def _set_output(self, on: bool) -> None: ...

    @abstractmethod
    def measure(self) -> SupplyReading:
        """Voltage, current, output state and latched protection, in as few round trips as possible."""

    @abstractmethod
    def clear_protection(self) -> None: ...


# --- Electronic load -------------------------------------------------------------------------------


class LoadMode(enum.StrEnum):
    CC = "CC"  # constant current, level in A
    CV = "CV"  # constant voltage, level in V
    CR = "CR"  # constant resistance, level in ohms
    CP = "CP"  # constant power, level in W


@dataclass(frozen=True)
class LoadReading:
    voltage: float
    current: float
    input_on: bool
    protection: str | None = None


class ElectronicLoad(PowerInstrument):
    role = "load"

    def __init__(self, name: str, rating: Rating) -> None:
        super().__init__(name, rating)
        #: The voltage of the power path this load is on (its supply's setpoint), once known: a CC level
        #: is checked against the power limit at it. Unknown (None) until a supply on the path is set.
        self.path_voltage: float | None = None
        self._cc_level: float | None = None  # the CC level in force, for checks on a later voltage
        self._input_may_be_on = False  # off confirmed: a CC level draws nothing, whatever the voltage

    def set_path_voltage(self, volts: float) -> None:
        self.path_voltage = volts

    def check_power_at(self, volts: float, amps: float | None = None) -> None:
        """Refuse (SetpointRefused, nothing sent) a CC current that would exceed the power limit at
        ``volts`` (``amps`` default: the CC level in force, if the input may be on)."""
        if amps is None and not self._input_may_be_on:
            return
        amps = self._cc_level if amps is None else amps
        lim = self.limits.power
        if amps is not None and amps * volts > lim.value:
            raise SetpointRefused(
                self.name, f"CC level {amps:g} A at {volts:g} V refused: {amps * volts:g} W is above the "
                           f"{lim.value:g} W limit ({lim.source})")

    def set_mode(self, mode: LoadMode, level: float) -> None:
        """Select the regulation mode and its level in one step (level first checked against limits)."""
        self._guarded()
        mode = LoadMode(mode)
        lim = self.limits
        if mode is LoadMode.CC:
            lim.check(self.name, "CC level", level, lim.current, "A")
            if self.path_voltage is not None:
                self.check_power_at(self.path_voltage, level)
        elif mode is LoadMode.CV:
            lim.check(self.name, "CV level", level, lim.voltage, "V")
        elif mode is LoadMode.CP:
            lim.check(self.name, "CP level", level, lim.power, "W")
        else:
            # In CR the load draws V/R and V²/R: at the voltage limit both must stay within limits.
            v = lim.voltage.value
            r_current, r_power = v / lim.current.value, v * v / lim.power.value
            if not math.isfinite(level) or level < max(r_current, r_power):
                which = (f"more than {lim.current.value:g} A ({lim.current.source})" if r_current >= r_power
                         else f"more than {lim.power.value:g} W ({lim.power.source})")
                raise SetpointRefused(
                    self.name,
                    f"CR level {level!r} ohm refused: below {max(r_current, r_power):g} ohm, which would "
                    f"allow {which} at {v:g} V",
                )
        log.debug("%s: mode %s level %g", self.name, mode, level)
        if mode is LoadMode.CC:  # until the unit confirms, either level may be in force: keep the higher
            self._cc_level = max(self._cc_level or 0.0, level)
        self._set_mode(mode, level)
        self._cc_level = level if mode is LoadMode.CC else None

    def input_on(self) -> None:
        self._guarded()
        if self.path_voltage is not None and self._cc_level is not None:
            self.check_power_at(self.path_voltage, self._cc_level)
        log.debug("%s: input on", self.name)
        self._input_may_be_on = True
        self._set_input(True)

    def input_off(self) -> None:
        log.debug("%s: input off", self.name)
        self._set_input(False)
        self._input_may_be_on = False

    def safe_state(self) -> None:
        self._set_input(False)
        self._input_may_be_on = False
        if self.measure().input_on:
            raise BadReply(self.name, "input still reads ON after switching it off", "safe state")

    @abstractmethod
    def _set_mode(self, mode: LoadMode, level: float) -> None: ...

    @abstractmethod
    def _set_input(self, on: bool) -> None: ...

    @abstractmethod
    def measure(self) -> LoadReading: ...

    @abstractmethod
    def clear_protection(self) -> None: ...


# --- NACS inlet fixture -----------------------------------------------------------------------------


class CpMode(enum.IntEnum):
    """What the fixture's EVSE-side pilot generator drives."""

    OFF = 0  # 0 V: state E (no pilot)
    DC = 1  # steady +12 V: no PWM
    PWM = 2  # +/-12 V, 1 kHz, at the programmed duty
    NEGATIVE = 3  # steady -12 V: state F (EVSE not available)


class VehicleState(enum.IntEnum):
    """Vehicle-side CP load the fixture switches in (J1772 / IEC 61851-1 Annex A resistors)."""

    A = 0  # no vehicle: open
    B = 1  # 2.74 kohm: connected, not ready
    C = 2  # 2.74 kohm || 1.3 kohm: charging
    D = 3  # 2.74 kohm || 270 ohm: charging with ventilation
    E = 4  # CP shorted to PE (fault emulation)


class Connector(enum.IntEnum):
    """Connector-side PP emulation."""

    UNPLUGGED = 0
    LATCHED = 1  # 150 ohm to PE
    BUTTON_PRESSED = 2  # 150 + 330 ohm


@dataclass(frozen=True)
class FixtureReading:
    """Everything the fixture measures, from one block read."""

    contact_temp_dc_plus: float
    contact_temp_dc_minus: float
    inlet_sensor_1: float
    inlet_sensor_2: float
    ambient_temp: float
    sensor_open: frozenset[str]
    cp_high: float
    cp_low: float
    cp_duty: float
    cp_frequency: float
    pp_voltage: float
    iso_dc_plus_ohm: float
    iso_dc_minus_ohm: float
    inlet_voltage: float
    inlet_current: float
    drop_dc_plus_mv: float
    drop_dc_minus_mv: float
    contactors_closed: bool
    contactor_dc_plus_closed: bool
    contactor_dc_minus_closed: bool
    interlock_closed: bool
    estop_pressed: bool
    heartbeat_tripped: bool
    safety_chain_ok: bool
    path: int
    shutdown_current_ms: float | None = None
    shutdown_voltage_ms: float | None = None
    #: Ownership (map v2): the holder's claim tag (None when unclaimed), how long it has held it, and
    #: the count of safe requests other sessions sent (``rig safe``) while it was claimed.
    claim_tag: int | None = None
    claim_age_s: float | None = None
    safe_requests: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def hottest_contact(self) -> float:
        return max(self.contact_temp_dc_plus, self.contact_temp_dc_minus)


class InletFixture(Instrument):
    role = "fixture"

    @abstractmethod
    def read(self) -> FixtureReading: ...

    @abstractmethod
    def select_path(self, selector: int) -> None:
        """Route a power path (supply + load group) to the inlet; 0 = none. Refused while closed."""

    @abstractmethod
    def set_contactors(self, closed: bool) -> None: ...

    @abstractmethod
    def set_pilot(self, mode: CpMode, duty_percent: float = 100.0) -> None: ...

    @abstractmethod
    def set_vehicle_state(self, state: VehicleState) -> None: ...

    @abstractmethod
    def set_connector(self, connector: Connector) -> None: ...

    @abstractmethod
    def actuate(self, *, estop: bool = False, open_interlock: bool = False) -> None:
        """Drive the fixture's test relays that press E-stop / break the interlock loop."""

    @abstractmethod
    def reset_trip(self) -> None:
        """Clear a latched safety trip (only succeeds once its cause has cleared)."""

    @abstractmethod
    def feed_heartbeat(self) -> None: ...

    @abstractmethod
    def arm_heartbeat(self, timeout_s: float) -> None:
        """Claim the fixture for this session and arm its heartbeat watchdog (renews when ours)."""

    @abstractmethod
    def release(self) -> None:
        """Give up this session's claim (refused by the fixture while the bench is energised)."""

    @abstractmethod
    def request_safe(self) -> None:
        """Announce that this session, not the owner, is making the bench safe (``rig safe``)."""

    #: The part of this session's token other sessions see as the fixture's claim tag.
    tag: int = 0

    def safe_state(self) -> None:
        """Command the contactors open. The rig then waits for the feedback (contactors take time to
        open) and deselects the path, which the fixture refuses while they are still closed."""
        self.set_contactors(False)

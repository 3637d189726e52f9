"""Several supplies (or loads) wired in parallel on one bus, driven as one role.

NACS endurance currents (900 A and more) exceed one unit. A group programs every member with the same
voltage and shares current in proportion to each member's current rating. The group's rating is the
lowest member voltage and the summed currents and powers. Every member still checks its own rating,
and the rig narrows the group's limits like any single instrument's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from instruments.errors import InstrumentError
from instruments.roles import (
    DCSupply,
    ElectronicLoad,
    Identity,
    Instrument,
    LoadMode,
    LoadReading,
    Rating,
    SupplyProtection,
    SupplyReading,
)

M = TypeVar("M", bound=Instrument)


def _combined_rating(members: Sequence[DCSupply] | Sequence[ElectronicLoad]) -> Rating:
    return Rating(
        voltage=min(m.rating.voltage for m in members),
        current=sum(m.rating.current for m in members),
        power=sum(m.rating.power for m in members),
    )


def _on_all(members: Sequence[M], action: Callable[[M], None]) -> None:
    """Apply to every member even if some fail; then raise the first failure (naming its unit)."""
    errors: list[InstrumentError] = []
    for member in members:
        try:
            action(member)
        except InstrumentError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


class _Group:
    FAMILY = "parallel group"
    MODEL_PATTERN = re.compile("")
    members: Sequence[Instrument]

    def _connect(self) -> None:
        for m in self.members:
            if m.identity is None:
                m.open()

    def _identify(self) -> Identity:
        models = ", ".join(m.identity.model for m in self.members if m.identity)
        return Identity("group", f"{len(self.members)} x [{models}]", "-", "-")

    def close(self) -> None:
        for m in self.members:
            m.close()

    def arm_watchdog(self, timeout_s: float) -> None:
        _on_all(self.members, lambda m: m.arm_watchdog(timeout_s))

    def emergency_off(self) -> None:
        _on_all(self.members, lambda m: m.emergency_off())

    def clear_protection(self) -> None:
        _on_all(self.members, lambda m: m.clear_protection())

    def safe_state(self) -> None:
        _on_all(self.members, lambda m: m.safe_state())

    def _switch(self, on: bool, switch_on: Callable[[Any], None], switch_off: Callable[[Any], None]) -> None:
        """All members on, or all off. If one refuses to come on, all go off: never a group half on."""
        if not on:
            _on_all(self.members, switch_off)
            return
        try:
            for m in self.members:
                switch_on(m)
        except InstrumentError:
            _on_all(self.members, switch_off)
            raise

    def _protections(self, readings: Sequence[SupplyReading | LoadReading]) -> str | None:
        return "; ".join(f"{m.name}:{r.protection}" for m, r in zip(self.members, readings, strict=True)
                         if r.protection) or None


class ParallelSupply(_Group, DCSupply):
    def __init__(self, name: str, members: Sequence[DCSupply]) -> None:
        if not members:
            raise ValueError(f"{name}: a group needs at least one supply")
        DCSupply.__init__(self, name, _combined_rating(members))
        self.members = list(members)
        self.PROTECTION_HEADROOM = min(m.PROTECTION_HEADROOM for m in self.members)
        self._share = [m.rating.current / self.rating.current for m in self.members]

    def _set_voltage(self, volts: float) -> None:
        for m in self.members:
            m.set_voltage(volts)

    def _set_current_limit(self, amps: float) -> None:
        for m, share in zip(self.members, self._share, strict=True):
            m.set_current_limit(amps * share)

    def _set_protection(self, ovp_volts: float, ocp_amps: float) -> None:
        for m, share in zip(self.members, self._share, strict=True):
            m.set_protection(ovp_volts, ocp_amps * share)

    def read_protection(self) -> SupplyProtection:
        settings = [m.read_protection() for m in self.members]
        ocps = [s.ocp_amps for s in settings]
        return SupplyProtection(
            ovp_volts=min(s.ovp_volts for s in settings),
            ocp_amps=None if any(o is None for o in ocps) else sum(o for o in ocps if o is not None),
        )

    def _set_output(self, on: bool) -> None:
        self._switch(on, lambda m: m.output_on(), lambda m: m.output_off())

    def measure(self) -> SupplyReading:
        readings = [m.measure() for m in self.members]
        return SupplyReading(
            voltage=max(r.voltage for r in readings),
            current=sum(r.current for r in readings),
            output_on=any(r.output_on for r in readings),
            protection=self._protections(readings),
        )


class ParallelLoad(_Group, ElectronicLoad):
    def __init__(self, name: str, members: Sequence[ElectronicLoad]) -> None:
        if not members:
            raise ValueError(f"{name}: a group needs at least one load")
        ElectronicLoad.__init__(self, name, _combined_rating(members))
        self.members = list(members)
        self._share = [m.rating.current / self.rating.current for m in self.members]

    def _set_mode(self, mode: LoadMode, level: float) -> None:
        for m, share in zip(self.members, self._share, strict=True):
            if mode in (LoadMode.CC, LoadMode.CP):
                m.set_mode(mode, level * share)  # current and power add up in parallel
            elif mode is LoadMode.CR:
                m.set_mode(mode, level / share)  # conductances add up in parallel
            else:
                m.set_mode(mode, level)  # CV: every member holds the same voltage

    def _set_input(self, on: bool) -> None:
        self._switch(on, lambda m: m.input_on(), lambda m: m.input_off())

    def set_path_voltage(self, volts: float) -> None:
        """Every member sits on the same bus: each checks its own power rating at this voltage too."""
        super().set_path_voltage(volts)
        for m in self.members:
            m.set_path_voltage(volts)

    def check_power_at(self, volts: float, amps: float | None = None) -> None:
        if amps is not None:  # a level about to be set or switched on: the group's rating, then each share
            super().check_power_at(volts, amps)
        for m, share in zip(self.members, self._share, strict=True):  # else each member's level in force
            m.check_power_at(volts, None if amps is None else amps * share)

    def measure(self) -> LoadReading:
        readings = [m.measure() for m in self.members]
        return LoadReading(
            voltage=max(r.voltage for r in readings),
            current=sum(r.current for r in readings),
            input_on=any(r.input_on for r in readings),
            protection=self._protections(readings),
        )

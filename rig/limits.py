"""Effective limits for a run: the tightest of rig config, DUT and profile, each bound with its source.

Two kinds:
- **setpoint ceilings**: nothing above them is ever sent (applied to every supply and load, on top of
  each instrument's own rating);
- **live limits**: checked on every sample; an excursion trips the rig into the safe state.
"""

from __future__ import annotations

from dataclasses import dataclass

from instruments.roles import Bound
from rig.config import RigConfig
from rig.errors import DutRefused
from rig.profile import Profile
from rig.safety import LiveLimits, tightest
from rig.session import SetpointCeilings

TIERS = (500, 1000)


@dataclass(frozen=True)
class Dut:
    serial: str
    tier: int  # the inlet's DC configuration: 500 or 1000 V
    rated_current: float  # A


def check_dut(dut: Dut, profile: Profile) -> None:
    """Refuse a DUT description the profile cannot test (before anything is opened)."""
    if dut.tier not in TIERS:
        raise DutRefused(f"--tier: expected one of {', '.join(map(str, TIERS))} (V), got {dut.tier}")
    profile.parameter(f"tier.{dut.tier}.voltage")
    if not dut.rated_current > 0:
        raise DutRefused(f"--rated-current: expected a current > 0 A, got {dut.rated_current:g}")


def effective_limits(config: RigConfig, profile: Profile, dut: Dut) -> tuple[SetpointCeilings, LiveLimits]:
    s = config.safety
    rig_src = f"rig config {config.source}"
    tier_v = profile.parameter(f"tier.{dut.tier}.voltage")
    trip_v = profile.parameter(f"tier.{dut.tier}.overvoltage_trip")
    setpoint_factor = profile.value("dut.current_setpoint_factor")
    trip_factor = profile.value("dut.overcurrent_trip_factor")
    abort = profile.parameter("endurance.abort_temperature")
    ceilings = SetpointCeilings(
        voltage=tightest(Bound(s.max_voltage, f"{rig_src} safety.max_voltage"),
                         Bound(tier_v.value, f"DUT tier {dut.tier} V (profile tier.{dut.tier}.voltage)")),
        current=tightest(Bound(s.max_current, f"{rig_src} safety.max_current"),
                         Bound(dut.rated_current * setpoint_factor,
                               f"DUT rated {dut.rated_current:g} A x {setpoint_factor:g} "
                               "(profile dut.current_setpoint_factor)")),
    )
    live = LiveLimits(
        max_voltage=tightest(Bound(s.max_voltage * 1.1, f"{rig_src} safety.max_voltage + 10 %"),
                             Bound(trip_v.value, f"over-voltage trip for the {dut.tier} V class "
                                   f"(profile tier.{dut.tier}.overvoltage_trip, {trip_v.source})")),
        max_current=tightest(Bound(s.max_current * 1.1, f"{rig_src} safety.max_current + 10 %"),
                             Bound(dut.rated_current * trip_factor,
                                   f"DUT rated {dut.rated_current:g} A x {trip_factor:g} "
                                   "(profile dut.overcurrent_trip_factor)")),
        max_temperature=tightest(Bound(s.abort_temperature, f"{rig_src} safety.abort_temperature"),
                                 Bound(abort.value, "profile endurance.abort_temperature")),
        current_band=Bound(profile.value("bench.current_band") / 100, "profile bench.current_band"),
        current_settle_s=profile.value("bench.current_settle"),
    )
    return ceilings, live

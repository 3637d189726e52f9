"""First-order thermal models of the inlet contacts and of the sensors that watch them.

A contact dissipating P watts settles at ``T_amb + P * R_th`` with time constant ``tau = R_th * C``:

    T(t) = T_ss + (T0 - T_ss) * exp(-t / tau)

Updates use that closed form, not Euler steps, so they are exact for any step length while the power
is constant (it only changes when a setpoint does, and the model advances to that instant first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def step_response(t: float, power: float, r_th: float, tau: float, t0: float, ambient: float) -> float:
    """Temperature ``t`` seconds after a power step from ``t0`` (the analytic reference for tests)."""
    steady = ambient + power * r_th
    return steady + (t0 - steady) * math.exp(-t / tau)


@dataclass
class ThermalNode:
    """One contact: thermal resistance to ambient (K/W), time constant (s), temperature (°C)."""

    r_th: float
    tau: float
    temperature: float

    def steady_state(self, power: float, ambient: float) -> float:
        return ambient + power * self.r_th

    def advance(self, dt: float, power: float, ambient: float) -> None:
        self.temperature = step_response(dt, power, self.r_th, self.tau, self.temperature, ambient)


@dataclass
class LaggedSensor:
    """A sensor that follows a node through its own first-order lag, reading a fraction of the rise.

    The inlet's own sensors sit a little away from the contact: they lag it (``tau``) and see
    ``coupling`` of its rise over ambient.
    """

    tau: float
    coupling: float
    lagged: float  # the lagged node temperature (°C)

    def reading(self, ambient: float) -> float:
        return ambient + self.coupling * (self.lagged - ambient)

    def advance(self, dt: float, node_start: float, node_steady: float, node_tau: float) -> None:
        """Exact solution of ``dS/dt = (T(t) - S)/tau`` where T relaxes from node_start to node_steady."""
        a = node_start - node_steady
        if abs(node_tau - self.tau) < 1e-9:  # equal time constants: the resonant form
            s = self.lagged - node_steady
            self.lagged = node_steady + (s + a * dt / self.tau) * math.exp(-dt / self.tau)
            return
        k = a * node_tau / (node_tau - self.tau)
        self.lagged = (node_steady + k * math.exp(-dt / node_tau)
                       + (self.lagged - node_steady - k) * math.exp(-dt / self.tau))

"""Building blocks of the CK->PD models: modules, the composed system and its integrator.

Every PD compartment of this package is *linear in its own state given its inputs*::

    dx/dt = u(t, inputs) - a(t, inputs) * x

(production ``u`` >= 0 and a first-order loss rate ``a`` that may include CAR-T killing;
``a`` may be negative for proliferating CAR-T cells). A :class:`PDModule` returns ``(u, a)``
for its states from the *signals* of the system (the CAR-T level, relative B cells, plasma
cells, autoantibody ...), which are functions of the current states only. This is what
makes the system fast to integrate for many participants at once:

* the **exponential midpoint** step (:func:`integrate`) freezes ``u`` and ``a`` at the
  midpoint of each step and advances every state with the exact solution of the frozen
  linear ODE, ``x e^{-a h} + u h phi(a h)`` with ``phi(z) = (1 - e^{-z}) / z``: second
  order, exact when the inputs are constant (the analytic limit the tests check), positive
  for ``u >= 0`` and stable for any killing rate, so a fixed step shared by all participants
  (vectorised over the participant axis) needs no step-size control;
* :func:`solve_ivp_reference` integrates the same right-hand side ``u - a x`` with
  :func:`scipy.integrate.solve_ivp`, one participant at a time (the baseline of
  ``benchmarks/pd.py`` and the reference of the accuracy tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from carkinetics._validation import closest
from carkinetics.exceptions import ModelSpecError
from carkinetics.models.base import ParameterSpec

__all__ = ["PDModule", "CKPDSystem", "integrate", "default_grid", "solve_ivp_reference",
           "Simulation", "first_crossing"]

Arr = NDArray[np.float64]


def _phi(z: Arr) -> Arr:
    """``(1 - exp(-z)) / z`` with its limit 1 at ``z = 0`` (any sign of ``z``)."""
    small = np.abs(z) < 1e-8
    if not small.any():
        return -np.expm1(-z) / z
    zs = np.where(small, 1.0, z)
    return np.where(small, 1.0 - 0.5 * z, -np.expm1(-zs) / zs)


class PDModule:
    """One PD model: its parameters, states, signals and linear rates.

    Subclasses set :attr:`name`, :attr:`params`, :attr:`states`, :attr:`endpoints`
    (endpoint code -> state), :attr:`needs` (signals read), :attr:`provides` (signals
    written) and implement :meth:`initial`, :meth:`signals` and :meth:`rates`.
    """

    name: str = ""
    description: str = ""
    params: tuple[ParameterSpec, ...] = ()
    thresholds: tuple[ParameterSpec, ...] = ()
    states: tuple[str, ...] = ()
    endpoints: Mapping[str, str] = {}
    needs: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    #: Parameters a fit holds at their typical values unless asked to estimate them
    #: (weakly identified from the module's own endpoints).
    fixed_by_default: tuple[str, ...] = ()

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the parameters, in order."""
        return tuple(p.name for p in self.params)

    def typical(self) -> dict[str, float]:
        """Typical values of the parameters."""
        return {p.name: p.typical for p in self.params}

    def spec(self, name: str) -> ParameterSpec:
        """The :class:`ParameterSpec` called ``name`` (parameters and thresholds)."""
        for p in (*self.params, *self.thresholds):
            if p.name == name:
                return p
        names = [p.name for p in (*self.params, *self.thresholds)]
        raise ModelSpecError(f"Unknown parameter {name!r} of PD model {self.name!r}; expected "
                             f"one of {names}." + closest(name, names))

    def params_for(self, endpoints: Sequence[str]) -> list[str]:
        """Parameters a fit of ``endpoints`` estimates by default (none if unobserved)."""
        if not any(e in self.endpoints for e in endpoints):
            return []
        return [p.name for p in self.params if p.name not in self.fixed_by_default]

    def initial(self, p: Mapping[str, Arr]) -> dict[str, Arr]:
        """Pre-infusion (baseline steady-state) value of every state."""
        raise NotImplementedError

    def signals(self, t: float, y: Mapping[str, Arr], p: Mapping[str, Arr],
                sig: dict[str, Arr]) -> None:
        """Write this module's signals (functions of its states and ``t``) into ``sig``."""

    def rates(self, t: float, y: Mapping[str, Arr], p: Mapping[str, Arr],
              sig: Mapping[str, Arr]) -> dict[str, tuple[Arr, Arr]]:
        """``(u, a)`` of each state: ``dx/dt = u - a x``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: states {list(self.states)}>"


def default_grid(t_end: float, *, fine: float = 0.1, coarse: float = 0.5,
                 switch: float = 60.0) -> Arr:
    """Integration grid: step ``fine`` to day ``switch`` (expansion), ``coarse`` after."""
    if not t_end > 0:
        raise ModelSpecError(f"Invalid t_end={t_end!r}; expected a positive number of days.")
    a = np.arange(0.0, min(switch, t_end), fine)
    b = np.arange(min(switch, t_end), t_end, coarse)
    return np.unique(np.concatenate([a, b, [t_end]]))


@dataclass(frozen=True)
class Simulation:
    """States and endpoints of a simulated system on an output grid.

    Attributes
    ----------
    times : ndarray, shape (m,)
        Output days (0 and later; the pre-infusion baseline is the value at 0).
    values : dict of str to ndarray, shape (n, m)
        Every state, every signal (``car``, ``b_rel`` ...) and every endpoint of the system.
    """

    times: Arr
    values: dict[str, Arr]

    def __getitem__(self, key: str) -> Arr:
        try:
            return self.values[key]
        except KeyError:
            raise ModelSpecError(f"Unknown output {key!r}; expected one of "
                                 f"{sorted(self.values)}." + closest(key, self.values)) from None

    def at(self, key: str, t: ArrayLike) -> Arr:
        """Linear interpolation of ``key`` at days ``t``: shape (n, len(t)) or (n, m) per row.

        ``t`` may be 1-D (shared times) or 2-D (one row of times per participant); times
        before 0 take the baseline value.
        """
        v = self[key]
        t = np.asarray(t, dtype=float)
        tt = np.clip(t, 0.0, self.times[-1])
        j = np.clip(np.searchsorted(self.times, tt, side="right") - 1, 0, self.times.size - 2)
        w = (tt - self.times[j]) / (self.times[j + 1] - self.times[j])
        if t.ndim == 1:
            return v[:, j] * (1.0 - w) + v[:, j + 1] * w
        rows = np.arange(v.shape[0])[:, None]
        return v[rows, j] * (1.0 - w) + v[rows, j + 1] * w


class CKPDSystem:
    """A CAR-T kinetic driver and PD modules, integrated together.

    Parameters
    ----------
    modules : sequence of PDModule
        The CAR-T module first (it provides the ``car`` signal), then PD modules in any
        order; every needed signal must be provided by some module.
    name : str, default "custom"
        Label of the system in fit results.

    Raises
    ------
    ModelSpecError
        If two modules share a parameter or state name, or a needed signal is missing.
    """

    def __init__(self, modules: Sequence[PDModule], name: str = "custom") -> None:
        self.name = name
        self.modules = tuple(modules)
        names: list[str] = []
        states: list[str] = []
        provided: set[str] = set()
        for m in self.modules:
            names += [p.name for p in m.params]
            states += list(m.states)
            provided |= set(m.provides)
        dup = sorted({n for n in names if names.count(n) > 1} |
                     {s for s in states if states.count(s) > 1})
        if dup:
            raise ModelSpecError(f"Invalid modules: names {dup} appear in more than one module.")
        missing = sorted({s for m in self.modules for s in m.needs} - provided)
        if missing:
            raise ModelSpecError(f"Invalid modules: signals {missing} are needed but no module "
                                 f"provides them (modules: {[m.name for m in self.modules]}).")
        self.params: tuple[ParameterSpec, ...] = tuple(p for m in self.modules for p in m.params)
        self.states = tuple(states)
        self.endpoints = {e: s for m in self.modules for e, s in m.endpoints.items()}
        self._slices = []
        k = 0
        for m in self.modules:
            self._slices.append(slice(k, k + len(m.states)))
            k += len(m.states)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of all parameters, module by module."""
        return tuple(p.name for p in self.params)

    def spec(self, name: str) -> ParameterSpec:
        """The :class:`ParameterSpec` called ``name``."""
        for m in self.modules:
            if name in m.param_names or name in [t.name for t in m.thresholds]:
                return m.spec(name)
        raise ModelSpecError(f"Unknown parameter {name!r}; expected one of "
                             f"{list(self.param_names)}." + closest(name, self.param_names))

    def typical(self) -> dict[str, float]:
        """Typical values of every parameter."""
        return {p.name: p.typical for p in self.params}

    def module(self, name: str) -> PDModule:
        """The module called ``name``."""
        for m in self.modules:
            if m.name == name:
                return m
        names = [m.name for m in self.modules]
        raise ModelSpecError(f"Unknown module {name!r}; expected one of {names}."
                             + closest(name, names))

    def check_params(self, params: Mapping[str, ArrayLike]) -> dict[str, Arr]:
        """Validate ``params`` (every parameter, scalars or arrays of shape (n,))."""
        if not isinstance(params, Mapping):
            raise ModelSpecError(f"Invalid params of type {type(params).__name__}; expected a "
                                 f"mapping of {list(self.param_names)} to values.")
        missing = [n for n in self.param_names if n not in params]
        if missing:
            raise ModelSpecError(f"Invalid params: missing {missing}; expected every one of "
                                 f"{list(self.param_names)}.")
        out = {p.name: p.check(params[p.name]) for p in self.params}
        arrs = np.broadcast_arrays(*(np.atleast_1d(v) for v in out.values()))
        if arrs[0].ndim != 1:
            raise ModelSpecError(f"Invalid params shape {arrs[0].shape}; expected scalars or "
                                 "1-D arrays (one value per participant).")
        return {k: np.ascontiguousarray(v) for k, v in zip(out, arrs, strict=True)}

    # -- pieces used by the integrators ----------------------------------------------
    def _split(self, y: Arr) -> dict[str, Arr]:
        return {s: y[i] for i, s in enumerate(self.states)}

    def signals(self, t: float, y: Arr, p: Mapping[str, Arr],
                pre: Mapping[str, Arr] | None = None) -> dict[str, Arr]:
        """Signals at time ``t`` for the stacked state ``y`` (shape (k, n)).

        ``pre`` holds signals already computed for this time (the closed-form CAR-T level,
        evaluated once for the whole grid by :func:`integrate`).
        """
        yd = self._split(y)
        sig: dict[str, Arr] = dict(pre) if pre else {}
        for m in self.modules:
            if pre and m.provides and all(s in pre for s in m.provides) and not m.states:
                continue
            m.signals(t, yd, p, sig)
        return sig

    def rates(self, t: float, y: Arr, p: Mapping[str, Arr],
              pre: Mapping[str, Arr] | None = None) -> tuple[Arr, Arr]:
        """Stacked ``(u, a)`` (shape (k, n)) of ``dy/dt = u - a y``."""
        yd = self._split(y)
        sig = self.signals(t, y, p, pre)
        u = np.empty_like(y)
        a = np.empty_like(y)
        for m, sl in zip(self.modules, self._slices, strict=True):
            r = m.rates(t, yd, p, sig)
            for i, s in enumerate(m.states):
                u[sl.start + i], a[sl.start + i] = r[s]
        return u, a

    def rhs(self, t: float, y: Arr, p: Mapping[str, Arr]) -> Arr:
        """``dy/dt = u - a y`` for the stacked state ``y``."""
        u, a = self.rates(t, y, p)
        return u - a * y

    def initial(self, p: Mapping[str, Arr]) -> Arr:
        """Stacked initial state at the infusion (shape (k, n))."""
        n = next(iter(p.values())).shape[0]
        y0 = np.empty((len(self.states), n))
        for m, sl in zip(self.modules, self._slices, strict=True):
            init = m.initial(p)
            for i, s in enumerate(m.states):
                y0[sl.start + i] = init[s]
        return y0

    # -- simulation ------------------------------------------------------------------
    def simulate(self, params: Mapping[str, ArrayLike], t_end: float = 730.0, *,
                 times: ArrayLike | None = None, grid: ArrayLike | None = None,
                 record_every: float = 1.0) -> Simulation:
        """Integrate the system for every participant of ``params`` at once.

        Parameters
        ----------
        params : mapping
            Every parameter of the system (:attr:`param_names`): scalars or arrays of
            shape (n,), CAR-T parameters at the participant's dose.
        t_end : float, default 730
            Last day (2 years).
        times : array_like, optional
            Extra output days (e.g. the visits); they are added to the integration grid so
            that no interpolation is needed there.
        grid : array_like, optional
            Integration grid (default :func:`default_grid`: 0.1 d to day 60, 0.5 d after).
        record_every : float, default 1
            Spacing (days) of the regular output grid; 0 records only ``times`` and 0.

        Returns
        -------
        Simulation
        """
        p = self.check_params(params)
        g = default_grid(t_end) if grid is None else np.asarray(grid, dtype=float)
        out_t = [np.zeros(1)]
        if record_every > 0:
            out_t.append(np.arange(0.0, t_end + 1e-9, record_every))
        if times is not None:
            tt = np.asarray(times, dtype=float).ravel()
            out_t.append(np.clip(tt[np.isfinite(tt)], 0.0, None))
        out = np.unique(np.concatenate(out_t))
        out = out[out <= g[-1] + 1e-9]
        g = np.unique(np.concatenate([g, out]))
        ys, sig = integrate(self, p, g, record=out)
        values = {s: ys[i] for i, s in enumerate(self.states)}
        values.update(sig)
        for e, s in self.endpoints.items():
            values[e] = values[s]
        return Simulation(times=out, values=values)

    def __repr__(self) -> str:
        return f"<CKPDSystem {[m.name for m in self.modules]}>"


def integrate(system: CKPDSystem, p: Mapping[str, Arr], grid: Arr, *,
              record: ArrayLike | None = None) -> tuple[Arr, dict[str, Arr]]:
    """Exponential-midpoint integration on ``grid``, vectorised over participants.

    Returns the states (shape (k, n, m)) and the signals (shape (n, m)) at the ``record``
    days (default: every grid point); ``record`` must be a subset of ``grid``.
    """
    grid = np.asarray(grid, dtype=float)
    rec = grid if record is None else np.asarray(record, dtype=float)
    want = np.zeros(grid.size, dtype=bool)
    pos = np.searchsorted(grid, rec)
    if np.any(pos >= grid.size) or not np.allclose(grid[np.minimum(pos, grid.size - 1)], rec):
        raise ModelSpecError("Invalid record: every recorded day must be a grid point.")
    want[pos] = True
    y = system.initial(p)
    k, n = y.shape
    ck = system.modules[0]
    pre_car = None
    if not ck.states and hasattr(ck, "level_grid"):
        # closed-form CAR-T level: evaluate it once at every stage time of the grid
        stage = np.empty(2 * grid.size - 1)
        stage[0::2] = grid
        stage[1::2] = 0.5 * (grid[:-1] + grid[1:])
        pre_car = {"car": ck.level_grid(stage, p)}
        for m in system.modules[1:]:
            if hasattr(m, "precompute"):
                pre_car.update(m.precompute(pre_car["car"], p))
    m = int(want.sum())
    ys = np.empty((k, n, m))
    sig_names: list[str] | None = None
    sigs: dict[str, Arr] = {}
    j = 0

    def pre(i: int) -> dict[str, Arr] | None:
        return None if pre_car is None else {k: v[:, i] for k, v in pre_car.items()}

    def store(t: float, y: Arr, i: int) -> None:
        nonlocal sig_names, j
        ys[:, :, j] = y
        s = system.signals(t, y, p, pre(i))
        if sig_names is None:
            sig_names = list(s)
            for name in sig_names:
                sigs[name] = np.empty((n, m))
        for name in sig_names:
            sigs[name][:, j] = s[name]
        j += 1

    if want[0]:
        store(float(grid[0]), y, 0)
    with np.errstate(over="ignore", under="ignore"):
        for i in range(grid.size - 1):
            t0, t1 = float(grid[i]), float(grid[i + 1])
            h = t1 - t0
            u, a = system.rates(t0, y, p, pre(2 * i))
            ah = 0.5 * h * a
            y_half = y * np.exp(-ah) + u * (0.5 * h) * _phi(ah)
            u, a = system.rates(t0 + 0.5 * h, y_half, p, pre(2 * i + 1))
            ah = h * a
            y = y * np.exp(-ah) + u * h * _phi(ah)
            if want[i + 1]:
                store(t1, y, 2 * i + 2)
    return ys, sigs


def solve_ivp_reference(system: CKPDSystem, params: Mapping[str, ArrayLike],
                        times: ArrayLike, *, rtol: float = 1e-8, atol: float = 1e-10,
                        method: str = "LSODA") -> Arr:
    """States at ``times`` from :func:`scipy.integrate.solve_ivp`, one participant at a time.

    The right-hand side is the system's own ``u - a y`` (same rates as :func:`integrate`).
    The integration is split at the CAR-T module's kinks (``breakpoints``) so that the
    adaptive solver never steps over one.

    Returns
    -------
    ndarray, shape (k, n, len(times))
    """
    from scipy.integrate import solve_ivp

    p = system.check_params(params)
    t = np.asarray(times, dtype=float)
    n = next(iter(p.values())).shape[0]
    out = np.empty((len(system.states), n, t.size))
    ck = system.modules[0]
    for i in range(n):
        pi = {k: v[i:i + 1] for k, v in p.items()}
        y0 = system.initial(pi)[:, 0]
        brk = sorted({0.0, *[b for b in getattr(ck, "breakpoints", lambda q: [])(pi)
                             if 0.0 < b < t[-1]], float(t[-1])})

        def f(s, yy, pi=pi):
            return system.rhs(s, yy[:, None], pi)[:, 0]

        cur = y0
        for a, b in zip(brk[:-1], brk[1:], strict=True):
            sel = (t >= a) & (t <= b)
            ev = t[sel]
            sol = solve_ivp(f, (a, b), cur, method=method, rtol=rtol, atol=atol,
                            t_eval=ev if ev.size else None)
            if not sol.success:
                raise ModelSpecError(f"solve_ivp failed for participant {i}: {sol.message}")
            if ev.size:
                out[:, i, sel] = sol.y
            cur = sol.y[:, -1] if not ev.size or ev[-1] == b else solve_ivp(
                f, (ev[-1], b), sol.y[:, -1], method=method, rtol=rtol, atol=atol).y[:, -1]
    return out


def first_crossing(times: Arr, values: Arr, level: ArrayLike, *, direction: str = "down",
                   after: ArrayLike = 0.0) -> Arr:
    """First day (per row) at which ``values`` crosses ``level`` after day ``after``.

    Linear interpolation between output days on the log scale (positive values); ``inf``
    where there is no crossing. ``direction`` is ``"down"`` (falls below) or ``"up"``.

    Parameters
    ----------
    times : ndarray, shape (m,)
    values : ndarray, shape (n, m)
    level, after : array_like, broadcast to (n,)
    direction : {"down", "up"}
    """
    if direction not in ("down", "up"):
        raise ModelSpecError(f"Invalid direction={direction!r}; expected 'down' or 'up'.")
    v = np.log(np.maximum(values, 1e-300))
    n = v.shape[0]
    lv = np.log(np.broadcast_to(np.asarray(level, dtype=float), (n,)))[:, None]
    aft = np.broadcast_to(np.asarray(after, dtype=float), (n,))[:, None]
    d = v - lv if direction == "down" else lv - v
    ok = (d <= 0) & (times[None, :] >= aft)
    # a crossing at index j: d[j-1] > 0 (or j is the first index after `after`) and d[j] <= 0
    j = np.where(ok.any(axis=1), ok.argmax(axis=1), -1)
    res = np.full(n, math.inf)
    for i in np.flatnonzero(j >= 0):
        jj = j[i]
        if jj == 0 or times[jj - 1] < aft[i, 0] or d[i, jj - 1] <= 0:
            res[i] = max(times[jj], aft[i, 0])
            continue
        w = d[i, jj - 1] / (d[i, jj - 1] - d[i, jj])
        res[i] = times[jj - 1] + w * (times[jj] - times[jj - 1])
    return res

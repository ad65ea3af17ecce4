"""PD modules against closed forms in limiting cases, mass balance, and solve_ivp."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from carkinetics.exceptions import ModelSpecError
from carkinetics.models.base import ParameterSpec
from carkinetics.pd import (
    AntigenDrivenCAR,
    AutoantibodyModel,
    BCellModel,
    CKPDSystem,
    ComplementModel,
    DiseaseActivityModel,
    ImmunoglobulinModel,
    PDModule,
    PlasmaCellModel,
    available_pd_models,
    bcell_events,
    default_grid,
    get_pd_model,
    ig_events,
    seroconversion,
    solve_ivp_reference,
)

LN2 = math.log(2.0)
T = np.array([0.0, 0.5, 1.0, 3.0, 7.0, 20.0, 60.0, 200.0])


class Const(PDModule):
    """Test driver: signals held at constant parameter values."""

    name = "const"

    def __init__(self, **signals: float) -> None:
        self.provides = tuple(signals)
        self.params = tuple(ParameterSpec(f"k_{s}", "1", v, 0.0, 1e9, "none")
                            for s, v in signals.items())

    def initial(self, p):
        return {}

    def signals(self, t, y, p, sig):
        for s in self.provides:
            sig[s] = p[f"k_{s}"]

    def rates(self, t, y, p, sig):
        return {}


def run(mods, params, times=T, grid=None):
    sys_ = CKPDSystem(mods)
    p = sys_.typical()
    p.update(params)
    return sys_.simulate(p, float(times[-1]), times=times, record_every=0.0,
                         grid=grid), p


def approach(x0, xss, rate, t):
    return xss + (x0 - xss) * np.exp(-rate * t)


@pytest.mark.parametrize("kill", ["emax", "mass_action"])
def test_bcell_constant_car_is_exponential_approach(kill):
    m = BCellModel(kill)
    c = 400.0
    sim, p = run([Const(car=c), m], {"b0": 180.0, "kb": 0.03})
    if kill == "emax":
        k = p["kmax"] * c ** p["hill"] / (p["ec50"] ** p["hill"] + c ** p["hill"])
    else:
        k = p["kkill"] * c
    bss = 0.03 * 180.0 / (0.03 + k)
    assert m.steady_state(p, c) == pytest.approx(bss, rel=1e-12)
    # the exponential-midpoint step is exact for constant inputs
    np.testing.assert_allclose(sim["b"][0], approach(180.0, bss, 0.03 + k, T), rtol=1e-10)
    np.testing.assert_allclose(sim["b_rel"][0], sim["b"][0] / 180.0, rtol=1e-14)


def test_bcell_events_match_closed_form():
    m = BCellModel()
    c = 2000.0
    sys_ = CKPDSystem([Const(car=c), m])
    p = sys_.typical()
    sim = sys_.simulate(p, 60.0, record_every=0.01)
    k = p["kmax"] / (1 + (p["ec50"] / c) ** p["hill"])
    bss = p["kb"] * p["b0"] / (p["kb"] + k)
    t_ap = -math.log((5.0 - bss) / (p["b0"] - bss)) / (p["kb"] + k)
    ev = bcell_events(sim, aplasia_level=5.0)
    assert ev["time_to_aplasia"][0] == pytest.approx(t_ap, rel=1e-4)
    assert math.isinf(ev["time_to_reconstitution"][0])
    assert math.isinf(ev["aplasia_duration"][0])  # still in aplasia at the end
    assert ev["b_nadir"][0] == pytest.approx(approach(p["b0"], bss, p["kb"] + k, 60.0))


def test_plasma_cells_constant_inputs():
    m = PlasmaCellModel()
    s, c = 0.2, 3000.0
    sim, p = run([Const(car=c, b_rel=s), m], {})
    kill = p["kmax_bcma"] * c / (p["ec50_bcma"] + c)
    np.testing.assert_allclose(sim["ps"][0], approach(1.0, s, p["k_ps"], T), rtol=1e-10)
    pl_ss = p["k_pl"] * s / (p["k_pl"] + kill)
    np.testing.assert_allclose(sim["pl"][0], approach(1.0, pl_ss, p["k_pl"] + kill, T),
                               rtol=1e-10)


def test_plasma_cells_exponential_input_closed_form():
    """B cells falling exponentially (constant CAR-T): Ps has a two-exponential closed form."""
    b, pc = BCellModel(), PlasmaCellModel()
    c = 800.0
    grid = default_grid(200.0, fine=0.02, coarse=0.05)
    sim, p = run([Const(car=c), b, pc], {}, grid=grid)
    kill = p["kmax"] / (1 + (p["ec50"] / c) ** p["hill"])
    lam = p["kb"] + kill
    s = p["kb"] / lam  # B/b0 -> s
    k = p["k_ps"]
    a = k * (1 - s) / (k - lam)
    ps = s + a * np.exp(-lam * T) + (1 - s - a) * np.exp(-k * T)
    np.testing.assert_allclose(sim["ps"][0], ps, rtol=2e-5, atol=1e-9)


def test_antibody_production_stopped_falls_with_half_life():
    ig = ImmunoglobulinModel()
    sim, p = run([Const(ps=0.0, pl=0.0), ig], {})
    for cls, th in (("igg", 21.0), ("iga", 6.0), ("igm", 5.0)):
        np.testing.assert_allclose(sim[cls][0], p[f"{cls}0"] * 0.5 ** (T / th), rtol=1e-10)
    # partial depletion: approach a0 (f Ps + (1 - f) Pl)
    sim, p = run([Const(ps=0.1, pl=0.6), ig], {})
    f = p["f_short_igg"]
    target = p["igg0"] * (f * 0.1 + (1 - f) * 0.6)
    np.testing.assert_allclose(sim["igg"][0], approach(p["igg0"], target, LN2 / 21.0, T),
                               rtol=1e-10)


def test_autoantibody_seroconversion_closed_form():
    aa = AutoantibodyModel(["anti_dsdna", "anti_ro_ssa"])
    sys_ = CKPDSystem([Const(ps=0.0, pl=0.0), aa])
    p = sys_.typical()
    sim = sys_.simulate(p, 200.0, record_every=0.1)
    # anti-dsDNA 200 -> cut-off 30 with t1/2 21 d
    t_neg = 21.0 * math.log2(200.0 / 30.0)
    assert seroconversion(sim, "anti_dsdna")[0] == pytest.approx(t_neg, rel=1e-4)
    np.testing.assert_allclose(sim["anti_ro_ssa_rel"][0], 0.5 ** (sim.times / 21.0),
                               rtol=1e-10)
    with pytest.raises(ModelSpecError, match="anti_dsdna"):
        AutoantibodyModel(["anti_dsdn"])


def test_complement_constant_driver():
    cm = ComplementModel()
    d = 0.25
    sim, p = run([Const(anti_dsdna_rel=d), cm], {})
    for c in ("c3", "c4"):
        k = LN2 / p[f"t_half_{c}"]
        q = p[f"{c}_norm"] / p[f"{c}_base"] - 1
        xss = p[f"{c}_norm"] / (1 + q * d)
        np.testing.assert_allclose(sim[c][0], approach(p[f"{c}_base"], xss, k * (1 + q * d), T),
                                   rtol=1e-10)
    # no consumption change at baseline: the level stays at its baseline
    sim, p = run([Const(anti_dsdna_rel=1.0), cm], {})
    np.testing.assert_allclose(sim["c3"][0], p["c3_base"], rtol=1e-12)


def test_disease_activity_constant_driver():
    dm = DiseaseActivityModel("sledai2k", "b_rel")
    d = 0.1
    sim, p = run([Const(b_rel=d), dm], {})
    e = p["imax_sledai2k"] * 0.9 / (p["d50_sledai2k"] + 0.9)
    np.testing.assert_allclose(
        sim["sledai2k"][0], approach(12.0, 12.0 * (1 - e), p["kout_sledai2k"], T), rtol=1e-10)
    with pytest.raises(ModelSpecError, match="score"):
        DiseaseActivityModel("sledai")


def test_antigen_driven_constant_antigen():
    a = AntigenDrivenCAR()
    grid = default_grid(100.0, fine=0.01, coarse=0.01)
    t = np.array([0.0, 2.0, 5.0, 10.0, 30.0, 100.0])
    sim, p = run([Const(b_rel=0.5, pl=0.4), a], {}, times=t, grid=grid)
    ag = 0.5 + p["w_bcma"] * 0.4
    le = a.constant_antigen_log_e(t, p, ag)
    np.testing.assert_allclose(np.log(sim["car_e"][0]), le, atol=1e-5)

    # memory: M(t) = k_em * int_0^t E(s) exp(-beta (t - s)) ds
    def m_ref(tt):
        f = lambda s: p["k_em"] * math.exp(a.constant_antigen_log_e(s, p, ag)  # noqa: E731
                                           - p["beta"] * (tt - s))
        return quad(f, 0.0, tt, epsabs=0.0, epsrel=1e-11, limit=200)[0]

    np.testing.assert_allclose(sim["car_m"][0], [m_ref(x) for x in t], rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(sim["car"][0], sim["car_e"][0] + sim["car_m"][0], rtol=1e-14)


def test_mass_balance_of_b_cells_and_igg():
    """Production - natural loss - CAR-T killing = change of the pool (B cells, IgG)."""
    sys_ = get_pd_model("immunoglobulins")
    p = sys_.typical()
    p.update(foldx=1500.0, tmax=10.0, cmax=15000.0, alpha=0.12, fb=0.03, beta=0.006)
    sim = sys_.simulate(p, 200.0, record_every=0.025)
    t = sim.times
    b, car = sim["b"][0], sim["car"][0]
    bm = sys_.module("bcell")
    q = {k: np.asarray(v) for k, v in p.items()}
    killed = np.trapezoid(bm.kill_rate(car, q) * b, t)
    produced = p["kb"] * p["b0"] * t[-1]
    lost = np.trapezoid(p["kb"] * b, t)
    assert b[-1] - b[0] == pytest.approx(produced - lost - killed, rel=2e-3, abs=0.05)
    k = LN2 / p["t_half_igg"]
    f = p["f_short_igg"]
    made = np.trapezoid(k * p["igg0"] * (f * sim["ps"][0] + (1 - f) * sim["pl"][0]), t)
    gone = np.trapezoid(k * sim["igg"][0], t)
    assert sim["igg"][0, -1] - p["igg0"] == pytest.approx(made - gone, abs=2e-3)
    ev = ig_events(sim)
    j = np.argmin(sim["igg"][0])
    assert ev["igg_time_to_nadir"][0] == t[j] and ev["igg_nadir"][0] == sim["igg"][0, j]


@pytest.mark.parametrize("name", ["full", "antigen_full"])
def test_vectorised_integrator_agrees_with_solve_ivp(name):
    sys_ = get_pd_model(name)
    rng = np.random.default_rng(3)
    p = {}
    ck = {"foldx": 1500.0, "tmax": 10.0, "cmax": 15000.0, "alpha": 0.12, "fb": 0.03,
          "beta": 0.006}
    for s in sys_.params:
        p[s.name] = s.from_internal(s.to_internal(ck.get(s.name, s.typical))
                                    + rng.normal(0, 0.2, 2))
    if "beta" in ck and "alpha" in p:
        p["beta"] = np.minimum(p["beta"], 0.5 * p["alpha"])
    t = np.array([1.0, 4.0, 9.0, 14.0, 28.0, 60.0, 120.0, 365.0])
    ours = sys_.simulate(p, 365.0, times=t, record_every=0.0)
    ref = solve_ivp_reference(sys_, p, t, rtol=1e-10, atol=1e-12)
    j = np.searchsorted(ours.times, t)
    for i, s in enumerate(sys_.states):
        o, r = ours[s][:, j], ref[i]
        big = r > 1e-3 * np.abs(r[:, :1])
        np.testing.assert_allclose(o[big], r[big], rtol=1e-2, err_msg=s)


def test_system_checks_and_registry():
    assert set(available_pd_models()) >= {"bcell", "full", "antigen"}
    with pytest.raises(ModelSpecError, match="signals"):
        CKPDSystem([BCellModel()])
    with pytest.raises(ModelSpecError, match="more than one"):
        CKPDSystem([Const(car=1.0), BCellModel(), BCellModel()])
    sys_ = get_pd_model("bcell")
    with pytest.raises(ModelSpecError, match="missing"):
        sys_.simulate({"b0": 1.0})
    with pytest.raises(ModelSpecError, match="Did you mean 'full'"):
        get_pd_model("ful")
    p = sys_.typical()
    p.update(foldx=1500.0, tmax=10.0, cmax=15000.0, alpha=0.12, fb=0.03, beta=0.006)
    sim = sys_.simulate(p, 30.0)
    with pytest.raises(ModelSpecError, match="cd19_b"):
        sim["cd19"]

"""Small simulation-estimation check of FOCE-I (the full study: benchmarks/simest_focei.py).

Three trials of the protocol's design (18 participants, four dose levels, protocol visits,
qPCR and flow with per-sample LLOQs; seeds spawned from one root) with between-participant
variability on cmax and alpha only (so each fit takes a few seconds), fitted with the
matching specification. Loose bounds that a biased or mis-scaled estimator fails: mean
relative error of the typical values within 20%, and at least 60% of the 90% confidence
intervals of the typical values covering the truth (expected 90%).
"""

import math
import warnings

import numpy as np

from carkinetics.fitting.population import PopulationSpec, fit_focei
from carkinetics.simulate import simulate_trial
from carkinetics.simulate.trial import CKPopulation

POP = CKPopulation(omega={"foldx": 0.0, "tmax": 0.0, "cmax": 0.6, "alpha": 0.3, "fb": 0.0,
                          "beta": 0.0}, omega_flow_scale=0.0)
TRUTH = {**POP.typical, "dose_exp": POP.dose_exp,
         "log_scale_car_flow": math.log(POP.flow_per_copy)}


def test_small_simulation_estimation():
    seeds = [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(7).spawn(3)]
    rel = {k: [] for k in TRUTH}
    covered = []
    blq_late = []
    for s in seeds:
        data = simulate_trial(s, population=POP, include_pd=False).data
        late = data[data["time"] > 180]
        blq_late.append((late["cens"] == 1).mean())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit_focei(PopulationSpec(random_effects=("cmax", "alpha")), data,
                            diagnostics=False, ci_level=0.9)
        fr = res.to_frame().set_index("parameter")
        for k, v in TRUTH.items():
            est = fr.loc[k, "estimate"]
            rel[k].append(math.exp(est - v) - 1 if k == "log_scale_car_flow" else est / v - 1)
            covered.append(fr.loc[k, "ci_lower"] <= v <= fr.loc[k, "ci_upper"])
    assert 0.3 <= np.median(blq_late) <= 0.6
    for k, r in rel.items():
        if k != "dose_exp":  # dose_exp's truth is 0.5 with an SE of about 0.2
            assert abs(np.mean(r)) < 0.2, (k, r)
    assert abs(np.mean(rel["dose_exp"])) < 0.6
    assert np.mean(covered) >= 0.6

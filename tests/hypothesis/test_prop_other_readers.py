"""Property tests of the other readers: adverse events, CRS/ICANS observations, the
escalation state file, population / CK parameter tables (escalation and PD), and the CLI
reading them. Each input either loads with its values kept, or gives a DataError (or, from
the CLI, exit code 1 with a message); never another exception."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from _props import NA_TOKENS, any_float, examples, odd_text, same_cell
from hypothesis import assume, event, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from carkinetics.cli import app
from carkinetics.endpoints.inputs import (
    AE_CATEGORIES,
    read_ae,
    validate_ae,
    validate_crs_observations,
    validate_icans_observations,
)
from carkinetics.exceptions import DataError, ModelSpecError

_CELL = st.one_of(any_float, st.integers(-5, 10), st.none(), odd_text,
                  st.sampled_from(["true", "false", "yes", "1", "0", "crs", "other", "none",
                                   "grade 2", "1e400", "inf"]))


def _frame(draw, columns: dict, n: int, drop: bool = True) -> pd.DataFrame:
    """A frame whose columns draw from their likely strategy, or anything (1 in 4)."""
    names = [c for c in columns if not drop or draw(st.integers(0, 9))]
    data = {}
    for c in names:
        strat = columns[c] if draw(st.integers(0, 3)) else _CELL
        data[c] = [draw(strat) for _ in range(n)]
    return pd.DataFrame(data, dtype=object)


_AE = {
    "id": st.sampled_from(["1", "2", "007", "A-1"]),
    "term": st.one_of(odd_text, st.just("Cytokine release syndrome")),
    "onset_day": st.floats(-30, 400),
    "resolution_day": st.one_of(st.none(), st.floats(-30, 800)),
    "grade": st.integers(1, 5),
    "serious": st.sampled_from([True, False, "yes", "n", 1, 0]),
    "category": st.sampled_from(AE_CATEGORIES),
    "extra": odd_text,
}


@examples(40)
@given(data=st.data())
def test_adverse_events_keep_values_or_raise_data_error(data):
    n = data.draw(st.integers(0, 5))
    df = _frame(data.draw, _AE, n)
    try:
        out = validate_ae(df, source="ae.csv")
    except DataError as err:
        event("DataError")
        assert err.problems and all(p.startswith("ae.csv: ") for p in err.problems)
        return
    event("valid")
    assert len(out) == len(df) and out["row"].tolist() == list(range(1, n + 1))
    for i in range(n):
        assert out["id"][i] == str(df["id"][i])
        assert out["term"][i] == str(df["term"][i]).strip()
        assert out["onset_day"][i] == float(df["onset_day"][i])
        assert out["grade"][i] == float(df["grade"][i])
        assert out["category"][i] == df["category"][i]
        assert same_cell(out["resolution_day"][i],
                         float(df["resolution_day"][i]) if df["resolution_day"][i] is not None
                         else np.nan)
        assert out["serious"][i] == (str(df["serious"][i]).strip().lower()
                                     in ("true", "yes", "y", "1", "1.0"))
    if "extra" in df:
        assert out["extra"].tolist() == df["extra"].tolist()


@examples(25)
@given(data=st.data(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1",
                                                  "utf-16-le"]))
def test_adverse_event_files_load_or_raise_data_error(data, encoding, tmp_path_factory):
    df = _frame(data.draw, _AE, data.draw(st.integers(0, 4)))
    path = tmp_path_factory.mktemp("ae") / "ae.csv"
    try:
        path.write_bytes(df.to_csv(index=False).encode(encoding))
    except UnicodeEncodeError:
        assume(False)
    try:
        out = read_ae(path)
    except DataError as err:
        event("DataError")
        assert all(p.startswith(f"{path}: ") for p in err.problems)
        return
    event("loaded")
    assert len(out) == len(df)


_CRS = {
    "id": st.sampled_from(["1", "2"]),
    "day": st.integers(0, 30),
    "fever": st.sampled_from([True, False, "yes", None]),
    "temperature": st.floats(35, 42),
    "hypotension": st.sampled_from(["none", "no_vasopressor", "one_vasopressor",
                                    "multiple_vasopressors"]),
    "hypoxia": st.sampled_from(["none", "low_flow", "high_flow", "positive_pressure"]),
    "o2_route": st.sampled_from(["none", "nasal_cannula", "high_flow_cannula", "facemask"]),
    "o2_flow": st.one_of(st.none(), st.floats(0, 60)),
    "antipyretic": st.sampled_from([True, False, None]),
    "death": st.sampled_from([False, None]),
}
_ICANS = {
    "id": st.sampled_from(["1", "2"]),
    "day": st.integers(0, 30),
    "ice_score": st.one_of(st.none(), st.integers(0, 10)),
    "consciousness": st.sampled_from(["awake", "awakens_to_voice", "awakens_to_touch",
                                      "unarousable"]),
    "seizure": st.sampled_from(["none", "self_limiting", "repetitive"]),
    "motor": st.sampled_from(["none", "focal_weakness"]),
    "raised_icp": st.sampled_from(["none", "focal_edema", "diffuse_edema"]),
}


@examples(40)
@given(data=st.data(), which=st.sampled_from(["crs", "icans"]))
def test_crs_and_icans_observations_keep_values_or_raise_data_error(data, which):
    spec = _CRS if which == "crs" else _ICANS
    df = _frame(data.draw, spec, data.draw(st.integers(0, 5)))
    fn = validate_crs_observations if which == "crs" else validate_icans_observations
    try:
        out = fn(df, source=f"{which}.csv")
    except DataError as err:
        event("DataError")
        assert err.problems and all(p.startswith(f"{which}.csv: ") for p in err.problems)
        return
    event("valid")
    assert len(out) == len(df)
    for i in range(len(df)):
        assert out["id"][i] == str(df["id"][i]) and out["day"][i] == float(df["day"][i])
    for c in ("hypotension", "consciousness", "seizure", "motor", "raised_icp"):
        if c in df:
            assert out[c].tolist() == df[c].tolist()


# ------------------------------------------------------------------ escalation state (CLI)

_STATE = {
    "id": st.one_of(st.integers(1, 6), odd_text),
    "dose_level": st.integers(1, 3),
    "delivered_dose": st.one_of(st.none(), st.sampled_from([2.5e5, 5e5, 1e6, 1e5, 2e6])),
    "dlt": st.integers(0, 1),
    "in_window": st.integers(0, 1),
    "exposure": st.one_of(st.none(), st.floats(0, 1e6)),
}


def _cli(*args) -> tuple[int, str, BaseException | None]:
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r.exit_code, r.output, r.exception


@examples(30)
@given(data=st.data(), design=st.sampled_from(["boin", "3+3", "crm"]),
       doses=st.booleans(), raw=st.one_of(st.none(), st.binary(max_size=40)))
def test_escalate_state_file_decides_or_exits_1(data, design, doses, raw, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("esc")
    state = tmp / "state.csv"
    if raw is not None:
        state.write_bytes(raw)
    else:
        _frame(data.draw, _STATE, data.draw(st.integers(0, 6))).to_csv(state, index=False)
    args = ["escalate", state, "--out", tmp / "d.json", "--design", design]
    args += ["--doses", "2.5e5,5e5,1e6"] if doses else ["--n-doses", "3"]
    code, out, exc = _cli(*args)
    assert code in (0, 1), (code, out, exc)
    assert isinstance(exc, SystemExit | None), repr(exc)
    if code == 1:
        event("exit 1")
        assert out.startswith("error: ") and str(state) in out
    else:
        event("decided")
        obj = json.loads((tmp / "d.json").read_text())
        assert sum(obj["n_per_dose"]) == len(pd.read_csv(state))


# ------------------------------------------------------------------ parameter tables

_PIECEWISE = ["foldx", "tmax", "cmax", "alpha", "fb", "beta"]
_TYPICAL = [3900.0, 9.3, 24000.0, 0.16, 0.0079, 0.0032]


@st.composite
def population_tables(draw):
    names = list(_PIECEWISE)
    if draw(st.booleans()):
        names += draw(st.lists(st.sampled_from(["dose_exp", "omega(tmax)", "omega(cmax)",
                                                "sigma_log_car_qpcr", "weight_exp",
                                                "omega(zzz)", "foldx", " tmax ", ""]),
                               max_size=3))
    if draw(st.booleans()):
        names = draw(st.permutations(names))[:draw(st.integers(0, len(names)))]
    typical = dict(zip(_PIECEWISE, _TYPICAL, strict=True))
    est = [draw(st.one_of(st.just(typical.get(n.strip(), 0.3)), any_float,
                          st.sampled_from(["x", None, "NA"]))) if draw(st.integers(0, 3)) == 0
           else typical.get(n.strip(), 0.3) for n in names]
    cols = {"parameter": names, draw(st.sampled_from(["estimate", "value", "est"])): est}
    if draw(st.booleans()):
        cols["se"] = [draw(st.one_of(st.none(), any_float, st.just(0.1))) for _ in names]
    return pd.DataFrame(cols, dtype=object)


@examples(25)
@given(table=population_tables())
def test_population_tables_give_a_source_with_their_values_or_a_clear_error(table):
    from carkinetics.escalation.exposure import source_from_table

    try:
        src = source_from_table(table, source="population.csv")
    except (DataError, ModelSpecError) as err:
        event(type(err).__name__)
        assert "population.csv" in str(err) or isinstance(err, ModelSpecError)
        return
    event("source")
    col = "estimate" if "estimate" in table else "value"
    given_values = dict(zip(table["parameter"].astype(str).str.strip(),
                            pd.to_numeric(table[col], errors="coerce"), strict=True))
    for spec, internal in zip(src.design.theta_specs, src.theta_t, strict=True):
        if spec.name in _PIECEWISE:
            assert internal == spec.to_internal(given_values[spec.name]), spec.name


def test_population_table_with_a_parameter_twice_is_refused():
    from carkinetics.escalation.exposure import source_from_table

    t = pd.DataFrame({"parameter": [*_PIECEWISE, "tmax"], "estimate": [*_TYPICAL, 12.0]})
    with pytest.raises(DataError, match=r"parameter 'tmax' appears 2 times"):
        source_from_table(t, source="population.csv")


@examples(25)
@given(raw_summary=st.one_of(st.binary(max_size=30), st.just(b"[1, 2]"), st.just(b'"x"'),
                             st.just(b'{"model": 3}'), st.just(b'{"model": "nope"}')),
       raw_csv=st.one_of(st.none(), st.binary(max_size=40)))
def test_read_population_bad_files_raise_clear_errors(raw_summary, raw_csv, tmp_path_factory):
    from carkinetics.escalation.exposure import read_population

    d = tmp_path_factory.mktemp("pop")
    pd.DataFrame({"parameter": _PIECEWISE, "estimate": _TYPICAL}).to_csv(
        d / "population.csv", index=False)
    if raw_csv is not None:
        (d / "population.csv").write_bytes(raw_csv)
    (d / "summary.json").write_bytes(raw_summary)
    try:
        src = read_population(d)
    except (DataError, ModelSpecError) as err:
        event(type(err).__name__)
        return
    event("source")
    names = [s.name for s in src.design.theta_specs]
    spec = src.design.theta_specs[names.index("tmax")]
    assert src.theta_t[names.index("tmax")] == spec.to_internal(9.3)


@examples(30)
@given(data=st.data(), layout=st.sampled_from(["long", "wide"]))
def test_pd_ck_parameter_tables_keep_values_or_raise_data_error(data, layout, tmp_path_factory):
    from carkinetics.pd.fit import read_ck_params

    ids = data.draw(st.lists(st.one_of(st.integers(1, 4), odd_text), min_size=0, max_size=3,
                             unique=True))
    value = st.one_of(st.floats(1e-3, 1e4), any_float, st.none(), st.sampled_from(["x", "NA"]))
    if layout == "long":
        rows = [{"id": i, "parameter": p, "estimate": data.draw(value)}
                for i in ids for p in _PIECEWISE if data.draw(st.integers(0, 9))]
        df = pd.DataFrame(rows, columns=["id", "parameter", "estimate"])
        if data.draw(st.booleans()):
            df["status"] = [data.draw(st.sampled_from(["ok", "failed", None])) for _ in
                            range(len(df))]
    else:
        df = pd.DataFrame([{"id": i, **{p: data.draw(value) for p in _PIECEWISE}}
                           for i in ids], columns=["id", *_PIECEWISE])
    path = tmp_path_factory.mktemp("ck") / "parameters.csv"
    df.to_csv(path, index=False)
    try:
        out = read_ck_params(path)
    except DataError as err:
        event("DataError")
        assert str(path) in str(err)
        return
    event("loaded")
    back = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str)
    for pid, vals in out.items():
        assert set(vals) == set(_PIECEWISE)
        for p, v in vals.items():
            assert math.isfinite(v)
            if layout == "long":
                cell = back.loc[(back["id"] == str(pid)) & (back["parameter"] == p), "estimate"]
            else:
                cell = back.loc[back["id"] == str(pid), p]
            assert float(cell.iloc[0]) == v


def test_na_tokens_are_not_participants_of_the_pd_parameter_table(tmp_path):
    from carkinetics.pd.fit import read_ck_params

    path = tmp_path / "p.csv"
    pd.DataFrame({"id": ["NA", "2"], **{p: [1.0, 2.0] for p in _PIECEWISE}}).to_csv(
        path, index=False)
    with pytest.raises(DataError, match="id"):
        read_ck_params(path)
    assert NA_TOKENS[0] == "NA"


def test_escalate_refuses_a_participant_twice_or_without_id(tmp_path):
    # regression: a repeated id was counted as two participants
    state = tmp_path / "state.csv"
    state.write_text("id,dose_level,dlt,in_window\n1,1,0,0\n2,1,0,0\n1,1,1,0\n,1,0,0\n")
    code, out, _ = _cli("escalate", state, "--out", tmp_path / "d.json", "--n-doses", "3")
    assert code == 1
    assert "row 4, column 'id': missing" in out
    assert "rows 1, 3, column 'id': participant 1 appears 2 times" in out
    assert not (tmp_path / "d.json").exists()

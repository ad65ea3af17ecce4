"""Model cards reproduce their papers' numbers and validate themselves."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from carkinetics.exceptions import ModelSpecError
from carkinetics.models.library import (
    ModelCard,
    Published,
    Residual,
    Value,
    available_cards,
    get_card,
)

CARDS = available_cards()


def test_registry():
    assert CARDS == ["ogasawara_2021", "stein_2019"]
    with pytest.raises(ModelSpecError, match="Did you mean 'stein_2019'"):
        get_card("stein2019")


@pytest.mark.parametrize("cid", CARDS)
def test_card_reproduces_published_derived(cid):
    # Sources: each Published entry names where it was read (Stein 2019 abstract: 0.78,
    # 4.3, 220 d; Ogasawara 2021 abstract: 3.27, 0.755, 9.29, 5.00, 352 d).
    card = get_card(cid)
    assert card.derived, "a card must carry published numbers to test against"
    d = card.model().derived(card.params())
    for key, pub in card.derived.items():
        assert pub.matches(d[key]), (cid, key, float(d[key]), pub.value)
        assert pub.source


@pytest.mark.parametrize("cid", CARDS)
def test_card_structure(cid):
    card = get_card(cid)
    m = card.model()
    assert m.name == card.model_name
    assert set(card.typical) == set(m.param_names)
    m.check_params(card.params())
    assert all(v.source for v in card.typical.values())
    assert card.doi.startswith("10.")
    assert card.reference and card.population and card.notes
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.doi = "x"
    with pytest.raises(TypeError):
        card.typical["foldx"] = Value(1.0, "x")


def test_stein_card():
    card = get_card("stein_2019")
    # CLINICAL.md 2a / REFERENCES.md: 3900, 9.3, 24000, 0.16, 0.0079, 0.0032; residual 0.56
    # additive on the log scale; nlmixr2lib enters the IIV as omega^2.
    assert card.params() == {"foldx": 3900.0, "tmax": 9.3, "cmax": 24000.0, "alpha": 0.16,
                             "fb": 0.0079, "beta": 0.0032}
    assert card.residual == Residual("log_additive", 0.56, card.residual.source)
    assert card.iiv_scale == "variance"
    assert {k: v.value for k, v in card.iiv.items()} == {
        "foldx": 2.4, "tmax": 0.38, "cmax": 0.65, "alpha": 0.91, "fb": 0.8, "beta": 0.86}
    assert math.isclose(card.omega_sd()["foldx"], math.sqrt(2.4))
    assert any("primary table was not checked" in v.source for v in card.iiv.values())


def test_ogasawara_card_matches_model_typical():
    card = get_card("ogasawara_2021")
    typ = card.model().typical()
    for k, v in card.params().items():
        np.testing.assert_allclose(v, typ[k], rtol=1e-14, err_msg=k)
    assert card.iiv == {} and card.iiv_scale is None and card.residual is None
    assert card.typical["cmax"].source.startswith("I")
    assert card.typical["fb"].source.startswith("I")


def _card(**over):
    base = dict(id="x", model_name="piecewise", reference="r", doi="10.1/x", population="p",
                typical={k: Value(v, "s") for k, v in get_card("stein_2019").params().items()})
    base.update(over)
    return ModelCard(**base)


def test_card_validation():
    _card()
    with pytest.raises(ModelSpecError, match="piecewse"):
        _card(model_name="piecewse")
    with pytest.raises(ModelSpecError, match=r"missing \['beta'\]"):
        _card(typical={k: v for k, v in _card().typical.items() if k != "beta"})
    with pytest.raises(ModelSpecError, match="Invalid fb="):
        _card(typical=dict(_card().typical, fb=Value(2.0, "s")))
    with pytest.raises(ModelSpecError, match="iiv keys"):
        _card(iiv={"clearance": Value(0.1, "s")}, iiv_scale="sd")
    with pytest.raises(ModelSpecError, match="iiv_scale"):
        _card(iiv={"tmax": Value(0.1, "s")}, iiv_scale="omega")
    with pytest.raises(ModelSpecError, match="residual kind"):
        Residual("proportionl", 0.1)
    with pytest.raises(ModelSpecError, match="sigma"):
        Residual("additive", -1.0)
    assert Published(220.0, 10.0, "s").matches(216.6)
    assert not Published(0.78, 0.01, "s").matches(0.786)

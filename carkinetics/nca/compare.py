"""Model-based and NCA exposure side by side."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["compare_with_model", "MODEL_TO_NCA"]

#: Model-derived quantity (``Model.derived`` names) -> NCA wide-table column.
MODEL_TO_NCA: dict[str, str] = {
    "cmax": "CMAX",
    "tmax": "TMAX",
    "auc_0_28": "AUCINT_0_28",
    "auc_0_84": "AUCINT_0_84",
    "auc_0_inf": "AUCIFO",
    "auclast": "AUCLST",
    "doubling_time": "TDOUB",
    "t_half_alpha": "HLEARLY",
    "t_half_beta": "LAMZHL",
}


def compare_with_model(nca_result, model: pd.DataFrame, *,
                       mapping: Mapping[str, str] | None = None,
                       endpoint: str | None = None) -> pd.DataFrame:
    """Join NCA parameters with model-derived exposures per participant.

    Parameters
    ----------
    nca_result : NCAResult or DataFrame
        The NCA result or its wide table (``id, endpoint`` and parameter columns).
    model : DataFrame
        One row per participant (and ``endpoint`` if it has that column) with model-derived
        columns, e.g. ``id, cmax, tmax, auc_0_28, auc_0_84`` (any subset).
    mapping : mapping of str to str, optional
        Model column -> NCA column; default :data:`MODEL_TO_NCA` (the columns present).
    endpoint : str, optional
        NCA endpoint to compare with when ``model`` has no ``endpoint`` column (needed when
        the NCA has several endpoints).

    Returns
    -------
    DataFrame
        Long: ``id, endpoint, parameter`` (NCA name), ``model_name``, ``nca``, ``model``,
        ``ratio`` (model / NCA), ``pct_diff`` (100 (model - NCA) / NCA). Participants
        present on one side only keep NaN on the other.

    Examples
    --------
    >>> w = pd.DataFrame({"id": [1, 2], "endpoint": "car_qpcr", "CMAX": [100.0, 50.0]})
    >>> m = pd.DataFrame({"id": [1, 2], "cmax": [110.0, 40.0]})
    >>> compare_with_model(w, m)[["nca", "model", "ratio"]].values.tolist()
    [[100.0, 110.0, 1.1], [50.0, 40.0, 0.8]]
    """
    wide = nca_result.to_wide() if hasattr(nca_result, "to_wide") else nca_result
    if not isinstance(model, pd.DataFrame) or "id" not in model:
        raise TypeError("Invalid model: expected a DataFrame with an 'id' column.")
    if mapping is None:
        mapping = {k: v for k, v in MODEL_TO_NCA.items() if k in model and v in wide}
    missing = [f"model column {k!r}" for k in mapping if k not in model]
    missing += [f"NCA column {v!r}" for v in mapping.values() if v not in wide]
    if missing:
        raise ValueError(f"Invalid mapping: {', '.join(missing)} not found.")
    if not mapping:
        raise ValueError("Nothing to compare: no model column maps to an NCA column; pass "
                         f"mapping= (default names: {sorted(MODEL_TO_NCA)}).")
    keys = ["id", "endpoint"] if "endpoint" in model else ["id"]
    if "endpoint" not in model:
        eps = list(pd.unique(wide["endpoint"]))
        if endpoint is None and len(eps) > 1:
            raise ValueError(f"Invalid endpoint=None: the NCA has endpoints {eps} and the "
                             "model table has no endpoint column; pass endpoint=.")
        ep = endpoint if endpoint is not None else eps[0]
        wide = wide[wide["endpoint"] == ep]
    else:
        wide = wide[wide["endpoint"].isin(pd.unique(model["endpoint"]))]
    left = wide[["id", "endpoint", *mapping.values()]].copy()
    left["id"] = left["id"].astype(object)
    right = model[[*keys, *mapping]].rename(columns={"id": "_id_model"})
    same = left["id"].dtype == right["_id_model"].dtype
    left["_k"] = left["id"] if same else left["id"].astype(str)
    right["_k"] = right["_id_model"] if same else right["_id_model"].astype(str)
    on = ["_k", *keys[1:]]
    joined = left.merge(right, on=on, how="outer", suffixes=("", "_model"), sort=True)
    if "endpoint" not in model:
        joined["endpoint"] = joined["endpoint"].fillna(ep)
    joined["id"] = joined["id"].where(joined["id"].notna(), joined["_id_model"].astype(object))
    parts = []
    for mcol, ncol in mapping.items():
        mv = joined[mcol + "_model" if mcol == ncol else mcol].astype(float)
        nv = joined[ncol].astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            parts.append(pd.DataFrame({
                "id": joined["id"], "endpoint": joined["endpoint"], "parameter": ncol,
                "model_name": mcol, "nca": nv.to_numpy(), "model": mv.to_numpy(),
                "ratio": (mv / nv).to_numpy(), "pct_diff": (100 * (mv - nv) / nv).to_numpy()}))
    return pd.concat(parts, ignore_index=True)

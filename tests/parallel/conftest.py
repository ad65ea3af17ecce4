"""Fixtures of the executor tests: a store key in a temporary folder, one LocalCluster."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _store_key(tmp_path_factory):
    """Sign resume stores with a throw-away key (never the user's ~/.config)."""
    key = tmp_path_factory.mktemp("key") / "store.key"
    old = os.environ.get("CARKINETICS_STORE_KEY_FILE")
    os.environ["CARKINETICS_STORE_KEY_FILE"] = str(key)
    yield key
    if old is None:
        os.environ.pop("CARKINETICS_STORE_KEY_FILE", None)
    else:
        os.environ["CARKINETICS_STORE_KEY_FILE"] = old


@pytest.fixture(scope="session")
def dask_address():
    """Address of a 2-process LocalCluster (loopback only, no dashboard), closed at the end."""
    pytest.importorskip("distributed")
    import dask
    import distributed

    from carkinetics.parallel import _quiet

    with _quiet(), dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address="127.0.0.1:0", host="127.0.0.1",
                                           silence_logs=40)
    yield cluster.scheduler_address
    with _quiet():
        cluster.close()

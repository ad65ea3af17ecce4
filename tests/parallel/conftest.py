"""Fixtures of the executor tests: one LocalCluster for the session."""

import pytest


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
                                           silence_logs=50)
    yield cluster.scheduler_address
    with _quiet():
        cluster.close()

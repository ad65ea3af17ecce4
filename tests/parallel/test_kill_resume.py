"""A batch fit killed midway (the whole process group) resumes to the uninterrupted result."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd

from carkinetics.fitting import fit_individuals

TRIAL = Path(__file__).resolve().parents[2] / "data" / "synthetic" / "trial.csv"
N = 18  # participants of the synthetic trial, one block each

SCRIPT = textwrap.dedent("""
    import sys
    import pandas as pd
    from carkinetics.fitting import fit_individuals
    data = pd.read_csv(sys.argv[1])
    fit_individuals(data, workers=2, block=1, n_starts=4, store=sys.argv[2], progress=False)
""")


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    data = pd.read_csv(TRIAL)
    store = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(TRIAL), str(store)],
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while len(list(store.glob("chunk-*.bin"))) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no block finished in 300 s"
            time.sleep(0.01)
    finally:  # kill the run and its worker processes at once
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(60)
        proc.stdout.close()
        proc.stderr.close()
    done = len(list(store.glob("chunk-*.bin")))
    assert 3 <= done < N, done  # interrupted midway

    resumed = fit_individuals(data, block=1, n_starts=4, store=store, resume=True,
                              progress=False)
    # the stored blocks were loaded, not refitted; every other block was fitted once
    assert (resumed.timing["blocks_loaded"], resumed.timing["blocks_computed"]) == (
        done, N - done)
    assert len(list(store.glob("chunk-*.bin"))) == N
    assert not list(store.glob(".chunk-*"))  # no temporary file left behind

    whole = fit_individuals(data, n_starts=4, progress=False)  # uninterrupted, one process
    a, b = resumed.to_frame(), whole.to_frame()
    # every participant exactly once, in input order: nothing lost, nothing duplicated
    assert [f.id for f in resumed.fits] == list(pd.unique(data["id"]))
    assert not a.duplicated(["id", "parameter"]).any()
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    pd.testing.assert_frame_equal(resumed.predictions(), whole.predictions(),
                                  check_exact=True)

import os

import matplotlib

os.environ.setdefault("MPLBACKEND", "Agg")
matplotlib.use("Agg")


import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """One `carkinetics demo` run shared by every test that reads its outputs.

    Returns (CompletedProcess, output folder). The demo is the slowest command (the whole
    pipeline), so the CLI tests and the report tests read the same run.
    """
    out = tmp_path_factory.mktemp("demo") / "demo"
    r = subprocess.run([sys.executable, "-m", "carkinetics", "demo", "--out", str(out),
                        "--no-progress"], capture_output=True, text=True, timeout=1200)
    return r, out

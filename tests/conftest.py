import os

import matplotlib

os.environ.setdefault("MPLBACKEND", "Agg")
matplotlib.use("Agg")


def pytest_configure(config):
    """Sign resume stores (carkinetics._unitstore) with a throw-away key, never ~/.config's.

    Set before any test runs, so that subprocesses (CLI runs) inherit it.
    """
    import tempfile

    folder = tempfile.mkdtemp(prefix="carkinetics-store-key-")
    os.environ["CARKINETICS_STORE_KEY_FILE"] = os.path.join(folder, "store.key")


def pytest_unconfigure(config):
    """Remove the throw-away key folder."""
    import shutil

    key = os.environ.get("CARKINETICS_STORE_KEY_FILE", "")
    if os.path.basename(os.path.dirname(key)).startswith("carkinetics-store-key-"):
        shutil.rmtree(os.path.dirname(key), ignore_errors=True)

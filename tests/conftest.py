import os

import matplotlib

os.environ.setdefault("MPLBACKEND", "Agg")
matplotlib.use("Agg")

# Hypothesis profiles (tests/hypothesis/ and every other property test): "ci" (default) is
# bounded and derandomized so CI is reproducible and fast; CARKINETICS_HYPOTHESIS_PROFILE=long
# runs 2000 examples per test (tests that set max_examples scale with their own helper).
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large],
                          print_blob=True)
settings.register_profile("long", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large],
                          print_blob=True)
settings.load_profile(os.environ.get("CARKINETICS_HYPOTHESIS_PROFILE", "ci"))

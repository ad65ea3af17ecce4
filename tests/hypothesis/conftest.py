"""Hypothesis settings profiles of the property-based suite.

"ci" (default) is bounded and derandomized, so CI is reproducible and fast; each test sets
its own CI example count through ``_props.examples``. ``CARKINETICS_HYPOTHESIS_PROFILE=long``
selects "long": random seeds and 2000 examples (scaled per test by ``_props.examples``).
pytest reads every conftest while collecting, before any test runs, so in a full run the
profile also applies to the property tests elsewhere (which set their own max_examples).
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=40, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("CARKINETICS_HYPOTHESIS_PROFILE", "ci"))

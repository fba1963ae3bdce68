import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)
settings.register_profile("dev", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def dev():
    """The GPU the tests marked ``gpu`` run on; without one they skip with the runtime's reason. A GPU without
    code objects is a failed build: an error, not a skip."""
    import pyquant.device
    from pyquant.device import runtime

    found = runtime.available()
    if not any(c for c, _ in found.values()):
        pytest.skip("no GPU: " + "; ".join(f"{v}: {why}" for v, (_, why) in found.items()))
    d = pyquant.device.get_device("gpu")
    d.code_object  # noqa: B018
    return d

import os

import pytest

from kalab.lab import missing_requirements


@pytest.fixture(scope="session")
def lab_ready():
    """Root and the lab's tools; skip with the reason on a user's machine, fail under CI=true."""
    missing = missing_requirements(ssh=True)
    if missing:
        reason = "the real-kernel lab needs " + ", ".join(missing) + " (make test installs the tools when root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true: lab tests must run, but " + reason)
        pytest.skip(reason)
    return True

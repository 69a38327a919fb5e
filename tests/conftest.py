import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from hypothesis import settings

from helpers import execute_notebook

# CI runs more examples; a user's `make test` stays quick.
settings.register_profile("ci", max_examples=60, deadline=None)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("heavy", max_examples=500, deadline=None)  # on demand: --hypothesis-profile=heavy
settings.load_profile("ci" if os.environ.get("CI") else "dev")


NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
_executed: dict = {}


@pytest.fixture(scope="session")
def executed():
    """Every notebook executed once per test session, {stem: (notebook, seconds)}: the notebook tests and
    the static-site test share it."""
    if not _executed:
        # One process per notebook client: jupyter_client's zmq sockets are not safe to share between
        # threads (three clients in threads sometimes lost their kernels' sockets under load).
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as ex:
            _executed.update(zip([p.stem for p in NOTEBOOKS], ex.map(execute_notebook, NOTEBOOKS)))
    return _executed

"""kalab.lab: run a scenario on the real Linux kernel and real OpenSSH (root only).

>>> from kalab import lab                              # doctest: +SKIP
>>> measured = lab.run(scenario)                        # doctest: +SKIP
>>> kalab.compare(kalab.simulate(measured["scenario"]), measured)   # doctest: +SKIP
"""

from .netns import LabError
from .runner import check_supported, missing_requirements, observation_s, run

__all__ = ["run", "LabError", "check_supported", "missing_requirements", "observation_s"]

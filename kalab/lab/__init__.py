"""kalab.lab: run a scenario on the real Linux kernel and real OpenSSH (root only).

Usage::

    from kalab import lab, simulate, compare
    measured = lab.run(scenario)                       # the result contract + "scenario" + "meta"
    compare(simulate(measured["scenario"]), measured)   # model vs the real thing
"""

from .netns import LabError, LabStopped
from .runner import check_supported, missing_requirements, observation_s, run

__all__ = ["run", "LabError", "LabStopped", "check_supported", "missing_requirements", "observation_s"]

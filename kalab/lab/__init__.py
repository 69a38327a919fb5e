"""kalab.lab: run a scenario on the real Linux kernel and real OpenSSH (root only).

Usage::

    from kalab import lab, simulate, compare
    measured = lab.run(scenario)                       # the result contract + "scenario" + "meta"
    compare(simulate(measured["scenario"]), measured)   # model vs the real thing

The modules, each owning one thing: :mod:`~kalab.lab.host` (this machine's kernel and tools),
:mod:`~kalab.lab.supported` (what the lab refuses, how long it watches), :mod:`~kalab.lab.netns`
(the namespaces, and leaving nothing behind), :mod:`~kalab.lab.router` (the cut, the NAT, the
faults), :mod:`~kalab.lab.programs` (the socket program or ssh/sshd, and what they say),
:mod:`~kalab.lab.capture` (tcpdump, the RTT estimate), :mod:`~kalab.lab.pcap` (reading and naming
segments), :mod:`~kalab.lab.measure` (readings -> the result contract), :mod:`~kalab.lab.runner`
(runs one scenario), :mod:`~kalab.lab.matrix` (the recorded scenarios), :mod:`~kalab.lab.sockprog`
(the socket program itself).
"""

from .host import missing_requirements
from .netns import LabError, LabStopped
from .runner import run
from .supported import check_supported, observation_s

__all__ = ["run", "LabError", "LabStopped", "check_supported", "missing_requirements", "observation_s"]

"""kalab: when does a network session die, and why?

>>> import kalab
>>> r = kalab.simulate({"client": {"socket": {"SO_KEEPALIVE": 1}}, "server": {},
...                     "faults": [{"kind": "host_crash", "side": "server", "at_s": 0}]})
>>> r.client.at_s, r.client.by
(7875.0, 'tcp.keepalive')

The model imports numpy only; plotting and widgets live in ``kalab.plot`` and
``kalab.widgets`` (optional extra ``notebook``).
"""

from .compare import as_result, compare, compare_recorded, compare_repeat, load_measurements
from .errors import ScenarioError
from .result import BY, Event, Result, SideResult
from .scenario import Scenario, load, load_file, loads, with_value
from .simulate import simulate
from .sweep import SweepResult, sweep
from .units import format_duration, parse_duration

__version__ = "0.1.0"

__all__ = ["simulate", "sweep", "SweepResult", "compare", "compare_recorded", "compare_repeat", "as_result", "load_measurements", "Scenario", "Result", "SideResult", "Event", "ScenarioError", "BY", "load", "loads",
           "load_file", "with_value", "format_duration", "parse_duration", "__version__"]

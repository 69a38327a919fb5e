"""Sweep families: closed forms that give, for a whole block of a grid, what ``simulate()`` says.

A family is a shape of scenario whose outcome has a known formula in the swept settings.  Each
family says which scenarios it covers (``matches``: the base scenario and the axis keys), and for a
block of the grid returns an *eligible* mask and the per-side fields; points outside the mask are
simulated by :func:`kalab.sweep`.  Every formula is proven equal to the simulator by property tests
(``tests/test_sweep.py``), including the latest times (timer-wheel and poll slack).

Two tools keep the formulas honest:

* **Rules come from** :mod:`kalab.mechanisms` -- the same functions the event simulator calls; a
  family holds only which rule applies to which points of the grid.
* **Templates** (:mod:`kalab.families.template`): a retransmission schedule is simulated once per
  distinct setting and shifted.

One module per family (a point is in a family only when every condition holds; otherwise it is
simulated), tried in this order by :func:`family_for`:

* :mod:`~kalab.families.keepalive` -- Linux keepalive on the client against a vanished peer;
* :mod:`~kalab.families.retransmission` -- one message into a dead path, no keepalive;
* :mod:`~kalab.families.ssh_alive` -- ssh's ServerAlive against a server that went silent;
* :mod:`~kalab.families.sshd_alive` -- sshd's ClientAlive against a client that went silent;
* :mod:`~kalab.families.middlebox` -- client keepalive behind one NAT/firewall idle timer.

What they share -- the block's values, the ``by``/``fate`` codes, a side's fields -- is in
:mod:`kalab.families.grid`.
"""

from __future__ import annotations

from ..scenario import Scenario
from .grid import BY_CODES, FATE_CODES, TIE_S, Family, by_code, fate_code, lookup
from .keepalive import KEEPALIVE
from .middlebox import MIDDLEBOX
from .retransmission import RETRANSMISSION
from .ssh_alive import SSH_ALIVE
from .sshd_alive import SSHD_ALIVE
from .template import retx_template

FAMILIES = (KEEPALIVE, RETRANSMISSION, SSH_ALIVE, SSHD_ALIVE, MIDDLEBOX)


def family_for(sc: Scenario, keys: set) -> Family | None:
    """The first family that covers this scenario and these axes (or None: every point is simulated)."""
    for f in FAMILIES:
        if f.matches(sc, keys):
            return f
    return None


__all__ = ["BY_CODES", "FATE_CODES", "FAMILIES", "KEEPALIVE", "MIDDLEBOX", "RETRANSMISSION", "SSHD_ALIVE", "SSH_ALIVE",
           "TIE_S", "Family", "by_code", "family_for", "fate_code", "lookup", "retx_template"]

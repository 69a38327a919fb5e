"""``kalab recommend``: settings that meet a goal, each checked by :func:`kalab.simulate`.

A :class:`Goal` says how fast a dead peer (or path) must be noticed, how long an outage must be
survived, the idle timeout of a NAT on the path, who must notice, and how many probes per idle hour
are acceptable.  Three mechanisms can meet it:

``tcp-keepalive``
    the kernel's probes set per socket (``setsockopt``), for a program you can change; with
    ``TCP_USER_TIMEOUT`` so that unacknowledged data gives up in time too.
``tcp-keepalive-sysctl``
    the same probes host-wide (``sysctl.conf``), for every socket with ``SO_KEEPALIVE`` (ssh and sshd
    set it by default); there is no host-wide ``TCP_USER_TIMEOUT``, so ``net.ipv4.tcp_retries2`` is
    lowered where unacknowledged data would otherwise take ~15 min to give up.
``ssh-serveralive`` (client) / ``sshd-clientalive`` (server)
    OpenSSH's encrypted keepalive messages, which also pass proxies that answer TCP for the peer.

One module per step:

* :mod:`~kalab.recommend.goal` -- the goal, its bounds, the mechanisms per side;
* :mod:`~kalab.recommend.candidates` -- candidate settings from the closed forms, best first;
* :mod:`~kalab.recommend.verification` -- each candidate's scenario, simulated against every failure;
* :mod:`~kalab.recommend.search` -- the best verified candidate per side and mechanism
  (:func:`recommend`), and the closest trade-offs when none meets the goal (:func:`answer`);
* :mod:`~kalab.recommend.rendering` -- config lines to paste, and the report in plain words;
* :mod:`~kalab.recommend.idle` -- the server's idle timers (ChannelTimeout, TMOUT, ...) that no
  keepalive can beat, warned about when they end an idle session the goal wants to keep.

The command line's options become a goal in :func:`kalab.cli.goal_from_args`.
"""

from .candidates import (DEFAULT_RETRIES2, MAX_VERIFIED, candidates_for, host_retries2,
                         retransmission_give_up_s)
from .goal import (HZ, KEEPALIVE_MECHANISMS, MAX_GOAL_S, MAX_NAT_S, MECHANISMS, TICK_S, Goal,
                   intervals_per_probe, parse_sshd_version, sshd_version, unmet)
from .idle import idle_scenario, idle_warnings
from .rendering import lines, report
from .search import (Recommendation, answer, best_for, feasible, longest_survivable_outage,
                     recommend, trade_offs)
from .verification import PHASES, Check, probe_event, scenario_for, verify

__all__ = ["Goal", "Check", "Recommendation", "answer", "recommend", "best_for", "feasible",
           "longest_survivable_outage", "trade_offs", "unmet", "report", "lines", "scenario_for", "verify",
           "probe_event", "candidates_for", "retransmission_give_up_s", "host_retries2", "sshd_version",
           "parse_sshd_version", "intervals_per_probe", "DEFAULT_RETRIES2", "MAX_VERIFIED", "HZ", "TICK_S",
           "KEEPALIVE_MECHANISMS", "MECHANISMS", "MAX_GOAL_S", "MAX_NAT_S", "PHASES", "idle_warnings",
           "idle_scenario"]

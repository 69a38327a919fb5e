"""Read the settings people really have -- sysctl dumps, ``ssh_config``/``ssh -G``, ``sshd_config``/
``sshd -T`` -- into a scenario, remembering where every value came from (``file:line``).

* :mod:`kalab.configs.sysctl` -- ``sysctl -a``, ``/proc/sys`` dumps (Linux), ``sysctl net.inet.tcp``
  (macOS, FreeBSD).
* :mod:`kalab.configs.openssh` -- ``ssh_config`` (Host/Match, first value wins, Include) and
  ``ssh -G``; ``sshd_config`` and ``sshd -T``.
* :mod:`kalab.configs.build` -- a scenario from them, with the origin of each setting.

Unknown keywords are kept and reported, never fatal; a line that cannot be read is reported with
its file and line; a value kalab uses that is out of range is a :class:`ConfigError` naming the file,
line, key, value and the allowed range.
"""

from .common import ConfigError, Origin, Problem
from .openssh import SshConfig, SshdConfig, read_ssh_config, read_sshd_config
from .sysctl import SysctlDump, read_sysctl

__all__ = ["ConfigError", "Origin", "Problem", "SshConfig", "SshdConfig", "SysctlDump", "read_ssh_config",
           "read_sshd_config", "read_sysctl"]

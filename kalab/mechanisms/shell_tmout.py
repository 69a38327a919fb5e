"""The remote shell's ``TMOUT`` (docs/mechanisms.md §The shell's TMOUT).

**bash** (``eval.c`` ``read_command``): an interactive shell about to read a command arms
``alarm(TMOUT)`` before it prints the primary prompt and disarms it once a *complete* command has
been read; the alarm's handler ``alrm_catcher`` prints ``timed out waiting for input: auto-logout``
and the shell exits.  bash(1): "the number of seconds to wait for a line of input after issuing
the primary prompt.  Bash terminates after waiting for that number of seconds if a complete line
of input does not arrive."  So:

* **end = prompt + TMOUT**, the prompt being the session's start or the end of the last command;
* typing without Enter does not reset it (measured: ``shell-tmout-partial-typing.json``: keys at
  1 s, the shell ended 3 s after its prompt, as without them);
* a program running in the foreground (an editor, ``top``, ``sleep``) is not affected: the alarm
  is off while it runs and re-armed at the next prompt (measured: ``shell-tmout-foreground.json``);
* the shell's exit status is 0 (measured): ssh prints ``Connection to HOST closed.`` and exits 0.

**ksh** (ksh93, mksh): the same rule ("the shell terminates if a command is not entered within
TMOUT seconds after issuing the PS1 prompt", ksh(1)); **not measured** (no ksh in the lab).

**zsh** (zshparam(1) ``TMOUT``): the alarm fires TMOUT seconds after the prompt, but zsh exits
only if the terminal has been idle (no keypress) that long; otherwise it re-arms the alarm for
TMOUT seconds after the last keypress.  So partial typing *does* postpone zsh's logout:
**end = max(prompt, last keypress) + TMOUT** (the check happens at alarms only, so a keypress
between the prompt and the first alarm moves the end to ``last keypress + TMOUT``); **not
measured**.  kalab follows zshparam(1)'s words.

``alarm(2)`` is a precise timer (an hrtimer); kalab gives it a program timer's poll slack as its
latest time, which is larger than ``alarm``'s.
"""

from __future__ import annotations

#: Shells kalab models, and what partial typing does to each.
SHELLS = ("bash", "ksh", "zsh")
#: bash's message (``eval.c`` ``alrm_catcher``); ksh93 and zsh print their own (not measured).
MESSAGES = {"bash": "timed out waiting for input: auto-logout",
            "ksh": "timed out waiting for input",
            "zsh": "zsh: timeout"}
#: The shell's exit status after TMOUT (bash: 0, measured); ssh exits with it.
EXIT_STATUS = 0


def keypress_postpones(shell: str) -> bool:
    """Does a keypress without Enter postpone the logout?  zsh: yes (terminal idle time); bash, ksh: no."""
    return shell == "zsh"


def logout_s(prompt_s, tmout_s, last_key_s=None, shell: str = "bash"):
    """Scenario time [s] the shell gives up waiting: ``prompt + TMOUT``; for zsh, ``last keypress +
    TMOUT`` when a key was pressed after the prompt.  ``tmout_s`` 0 means never (returns None).
    Worked: prompt at 0, TMOUT 900 -> 900 s; keys at 600 s -> 900 s (bash), 1500 s (zsh).
    Numbers only (one session)."""
    if not tmout_s:
        return None
    if keypress_postpones(shell) and last_key_s is not None and last_key_s > prompt_s:
        return last_key_s + tmout_s
    return prompt_s + tmout_s

"""docs/scenarios.md documents every key the loader accepts (so docs and code cannot drift)."""

from pathlib import Path

import pytest

from kalab import native, scenario
from kalab.mechanisms import middlebox

DOC = (Path(__file__).parent.parent / "docs" / "scenarios.md").read_text()


def all_keys():
    keys = set(scenario.TOP_KEYS) | set(scenario.HOST_KEYS) | set(scenario.APP_KEYS) | set(scenario.PATH_KEYS)
    keys |= set(scenario.MIDDLEBOX_KEYS) | set(scenario.TRAFFIC_KEYS) | set(scenario.FAULT_KINDS)
    for kinds in scenario.FAULT_KEYS.values():
        keys |= set(kinds)
    for tables in native.TABLES.values():
        for table in tables.values():
            keys |= set(table)
    keys |= {v[0] for v in scenario.SSH_OPTIONS.values()} | {v[0] for v in scenario.SSHD_OPTIONS.values()}
    keys |= set(middlebox.PRESETS)
    return sorted(keys)


@pytest.mark.parametrize("key", all_keys())
def test_every_accepted_key_is_documented(key):
    assert f"`{key}`" in DOC


def test_readme_30_second_example_prints_what_it_says():
    import kalab
    r = kalab.simulate({
        "client": {"app": {"kind": "ssh", "options": {"TCPKeepAlive": "no", "ServerAliveInterval": 15}}},
        "server": {"app": {"kind": "sshd"}},
        "faults": [{"kind": "link_down", "at_s": 1}],
    })
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"# {r.client.at_s} {r.client.by} {r.client.sees}" in readme
    assert f"# {r.server.at_s} {r.server.by}" in readme

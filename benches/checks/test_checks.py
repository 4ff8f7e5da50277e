"""The benchmark's 500 checks as pytest-testinfra tests (run by benches/checks/main.rs).

The checks come from the JSON file named by BENCH_CHECKS, the same list Bakery's suite, the
per-check ssh commands and the shell script are generated from.
"""

import json
import os

import pytest

with open(os.environ["BENCH_CHECKS"]) as f:
    CHECKS = json.load(f)


@pytest.mark.parametrize("c", CHECKS, ids=[c["id"] for c in CHECKS])
def test_check(host, c):
    kind = c["kind"]
    if kind == "file":
        f = host.file(c["path"])
        assert f.exists and f.is_file
    elif kind == "package":
        assert host.package(c["name"]).is_installed
    elif kind == "service":
        assert host.service(c["name"]).is_running
    elif kind == "port":
        assert host.socket("tcp://%d" % c["port"]).is_listening
    elif kind == "user":
        assert host.user(c["name"]).exists
    elif kind == "command":
        r = host.run(c["run"])
        assert r.rc == 0 and r.stdout.strip() == c["stdout"]
    elif kind == "kernel-param":
        assert str(host.sysctl(c["name"])) == c["value"]
    else:
        raise AssertionError("unknown kind " + kind)

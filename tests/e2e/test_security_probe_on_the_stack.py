"""The security review's probe (tests/probe/probe.py) against the stack `make up` runs: every
finding's reproduction gets the answer it must get now, so the probe a reviewer reruns stays
true. (The event-loop lag it reports is printed, not asserted: a timing is measured, never a
test's verdict.)"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

PROBE = Path(__file__).resolve().parents[1] / "probe" / "probe.py"


async def test_every_finding_of_the_review_is_refused_on_the_running_stack(capsys):
    for port in (8001, 8002, 8005):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        except httpx.ConnectError:
            pytest.fail(f"the local stack has nothing on :{port}; run `make up`", pytrace=False)
    spec = importlib.util.spec_from_file_location("security_probe", PROBE)
    probe = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = probe  # its dataclasses look their module up by name
    spec.loader.exec_module(probe)
    status = await probe.main([])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "FAIL" not in printed and "checks passed" in printed

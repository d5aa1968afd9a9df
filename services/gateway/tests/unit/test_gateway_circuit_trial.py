"""A trial request after the cool-down that ends with no verdict (its body too large) does not
leave the upstream's circuit shut for good."""
from __future__ import annotations

import httpx
import pytest

from civicgrid_common.circuit import CircuitPolicy

from civicgrid_gateway.adapters.proxy import BodyTooLarge, Upstreams


async def test_a_trial_without_a_verdict_lets_the_next_request_try():
    now = [0.0]

    def answer(request: httpx.Request) -> httpx.Response:
        request.read()
        return httpx.Response(200)

    upstreams = Upstreams({"intake": "http://intake"}, connect_timeout=1, read_timeout=1, pool_connections=1,
                          attempts=1, circuit=CircuitPolicy(failures=1, cooldown=5), max_body_bytes=4,
                          monotonic=lambda: now[0], transport=httpx.MockTransport(answer))
    circuit = upstreams.circuit_of("intake")
    circuit.record(failed=True, now=0.0, policy=CircuitPolicy(failures=1, cooldown=5))
    now[0] = 10.0  # the cool-down is over: the next request is the trial

    async def big():
        yield b"too many bytes"

    with pytest.raises(BodyTooLarge):
        await upstreams.send("intake", "POST", "/v1/x", b"", [], big(), retry=False, stream=False)
    ok = await upstreams.send("intake", "GET", "/v1/x", b"", [], None, retry=False, stream=False)
    assert ok.status_code == 200 and circuit.open_until is None
    await upstreams.close()

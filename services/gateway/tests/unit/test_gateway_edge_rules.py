"""The edge's small rules: how a client's address is counted and logged, the rate limits'
counting, the settings a deployment may give them."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from civicgrid_gateway.adapters.rate_limits import RateLimits
from civicgrid_gateway.config import GatewaySettings
from civicgrid_gateway.entrypoints.edge import client_key, client_network


@pytest.mark.parametrize(("host", "key", "network"), [
    ("10.1.2.3", "10.1.2.3/32", "10.1.2.0/24"),
    ("::ffff:10.1.2.3", "10.1.2.3/32", "10.1.2.0/24"),  # the same client, however the socket spells it
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64", "2001:db8:1::/48"),  # a v6 client holds its /64
    ("not-an-address", "unknown", "unknown"),
])
def test_a_client_is_counted_by_its_address_and_logged_by_its_network(host, key, network):
    scope = {"client": (host, 5555)}
    assert client_key(scope) == key and client_network(scope) == network


async def test_every_limit_holds_and_each_key_has_its_own_count():
    limits = RateLimits("memory://", address="3/second;4/minute")
    first = [await limits.over("address", "a") for _ in range(5)]
    assert first[:3] == [None, None, None]
    assert all(isinstance(wait, int) and 1 <= wait <= 60 for wait in first[3:])
    assert await limits.over("address", "b") is None
    with pytest.raises(KeyError):
        await limits.over("principal", "a")  # a kind with no limit configured is a wiring error


@pytest.mark.parametrize("field, value", [
    ("rate_limit_per_address", "lots"), ("rate_limit_per_principal", "10 per fortnight"),
    ("cors_origins", ["*"]), ("cors_origins", ["console.example.org"]), ("cors_origins", ["https://x.example/app"]),
])
def test_settings_a_deployment_gets_wrong_are_refused_at_start(field, value):
    with pytest.raises(ValidationError, match=field):
        GatewaySettings(**{field: value})


def test_the_default_limits_and_origins():
    settings = GatewaySettings()
    assert settings.cors_origins == [] and settings.rate_limit_storage == "memory://"
    GatewaySettings(cors_origins=["https://console.example.org", "http://127.0.0.1:5173"])

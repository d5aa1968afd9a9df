"""The realm the stack's Keycloak imports (deploy/local/keycloak/civicgrid-realm.json) agrees with
the platform: its roles are the platform's roles, its demo users are valid principals, its tokens
carry the claims the services read, and its clients allow only the flows they are for. Keycloak
checks little of this on import (an undeclared user attribute is dropped without a word), so it
is checked here; tests/e2e/test_sign_in_on_the_stack.py signs in against the running realm."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from civicgrid_common.identity.principal import Principal, Role
from civicgrid_common.settings import PlatformSettings

ROOT = Path(__file__).resolve().parents[2]
REALM = json.loads((ROOT / "deploy" / "local" / "keycloak" / "civicgrid-realm.json").read_text())
CLIENTS = {c["clientId"]: c for c in REALM["clients"]}
ROLES_CLIENT = "civicgrid"  # holds the client roles the `roles` claim carries


def mappers(client: dict) -> dict[str, dict]:
    return {m["config"].get("claim.name") or m["protocolMapper"]: m for m in client.get("protocolMappers", [])}


def test_the_realms_roles_are_exactly_the_platforms():
    assert sorted(r["name"] for r in REALM["roles"]["client"][ROLES_CLIENT]) == sorted(r.value for r in Role)
    assert CLIENTS[ROLES_CLIENT]["bearerOnly"] is True  # it holds roles; nobody signs in to it


@pytest.mark.parametrize("user", REALM["users"], ids=lambda u: u["username"])
def test_every_user_and_service_account_is_a_valid_principal(user):
    roles = user["clientRoles"][ROLES_CLIENT]
    attributes = user["attributes"]
    principal = Principal(subject=user["username"], roles=frozenset(Role.parse(r) for r in roles),
                          jurisdictions=tuple(attributes["jurisdictions"]),
                          department=(attributes.get("department") or [None])[0])
    assert principal.roles and principal.jurisdictions
    if "serviceAccountClientId" in user:
        assert CLIENTS[user["serviceAccountClientId"]]["serviceAccountsEnabled"] is True
    else:
        assert [c["type"] for c in user["credentials"]] == ["password"]


def test_the_user_profile_declares_the_attributes_the_tokens_carry_and_only_admins_edit_them():
    [provider] = REALM["components"]["org.keycloak.userprofile.UserProfileProvider"]
    [config] = provider["config"]["kc.user.profile.config"]
    declared = {a["name"]: a for a in json.loads(config)["attributes"]}
    assert declared["jurisdictions"]["multivalued"] is True and declared["department"]["multivalued"] is False
    for name in ("jurisdictions", "department"):
        assert declared[name]["permissions"]["edit"] == ["admin"], name  # a user may not widen their own reach


@pytest.mark.parametrize("client_id", [c for c in CLIENTS if c != ROLES_CLIENT])
def test_every_signing_client_puts_the_platforms_claims_into_its_access_tokens(client_id):
    by_claim = mappers(CLIENTS[client_id])
    assert by_claim["roles"]["config"]["usermodel.clientRoleMapping.clientId"] == ROLES_CLIENT
    assert by_claim["roles"]["config"]["multivalued"] == by_claim["jurisdictions"]["config"]["multivalued"] == "true"
    assert by_claim["jurisdictions"]["config"]["user.attribute"] == "jurisdictions"
    assert by_claim["department"]["config"]["user.attribute"] == "department"
    audience = by_claim["oidc-audience-mapper"]["config"]
    assert audience["included.client.audience"] == PlatformSettings().jwt_audience
    for mapper in by_claim.values():
        assert mapper["config"]["access.token.claim"] == "true"
    # `basic` gives `sub`, which every service requires of a token
    assert "basic" in CLIENTS[client_id]["defaultClientScopes"]


@pytest.mark.parametrize("client_id", list(CLIENTS))
def test_no_client_allows_the_password_grant_or_the_implicit_flow(client_id):
    client = CLIENTS[client_id]
    assert client.get("directAccessGrantsEnabled") is False and client.get("implicitFlowEnabled", False) is False


def test_the_gateway_signs_people_in_by_code_with_pkce_to_its_callback_only():
    gateway = CLIENTS["civicgrid-gateway"]
    assert gateway["publicClient"] is False and gateway["standardFlowEnabled"] is True
    assert gateway["serviceAccountsEnabled"] is False
    assert gateway["attributes"]["pkce.code.challenge.method"] == "S256"
    assert gateway["redirectUris"] == ["http://127.0.0.1:8000/auth/callback"]  # exact: no wildcard


def test_the_machine_clients_use_the_client_credentials_grant_only():
    for client_id in ("civicgrid-notifications", "dept-civil-affairs"):
        client = CLIENTS[client_id]
        assert client["serviceAccountsEnabled"] is True and client["standardFlowEnabled"] is False, client_id


def test_the_stack_gives_notifications_the_realms_client_and_secret():
    [notifications] = [s for s in yaml.safe_load((ROOT / "deploy" / "local" / "services.yaml").read_text())["services"]
                       if s["name"] == "notifications"]
    env = notifications["local_env"]
    assert CLIENTS[env["CIVICGRID_OIDC_CLIENT_ID"]]["secret"] == env["CIVICGRID_OIDC_CLIENT_SECRET"]
    [account] = [u for u in REALM["users"] if u.get("serviceAccountClientId") == env["CIVICGRID_OIDC_CLIENT_ID"]]
    assert account["clientRoles"][ROLES_CLIENT] == ["notifier"]

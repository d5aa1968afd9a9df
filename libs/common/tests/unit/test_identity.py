"""Identity, the pure parts: jurisdiction codes, principals, token minting and verification."""
from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from civicgrid_common.identity import (
    InvalidPrincipal,
    InvalidToken,
    JwksUnavailable,
    Principal,
    Role,
    TokenVerifier,
    covers,
    mint_token,
    validate_jurisdiction,
)
from civicgrid_common.identity.localkeys import KEY_ID, ensure_local_keys, private_key_path

ISSUER, AUDIENCE = "civicgrid-local", "civicgrid"
STREET, COMMUNITY, GRID = "320104001", "320104001001", "320104001001001"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    """The local signing key and its JWKS (one per module: RSA key generation is slow)."""
    keys_dir = tmp_path_factory.mktemp("keys")
    jwks = ensure_local_keys(keys_dir)
    return private_key_path(keys_dir).read_bytes(), jwks


@pytest.fixture
def verifier(keys: tuple[bytes, Path]) -> TokenVerifier:
    return TokenVerifier(str(keys[1]), issuer=ISSUER, audience=AUDIENCE)


def test_role_enum_has_exactly_the_platform_roles() -> None:
    assert [r.value for r in Role] == [
        "window_clerk", "community_reviewer", "street_reviewer", "bureau_approver", "leader",
        "grid_worker", "department", "auditor", "admin", "notifier",
    ]


@pytest.mark.parametrize("code", ["320104", STREET, COMMUNITY, GRID])
def test_district_street_community_and_grid_codes_are_valid(code: str) -> None:
    assert validate_jurisdiction(code) == code


@pytest.mark.parametrize("code", ["", "32010", "3201040", "3201040010", "3201040010010010",
                                  "32010a", "320 104", "３２０１０４", "-320104"])
def test_other_codes_are_refused_with_the_reason(code: str) -> None:
    with pytest.raises(InvalidPrincipal, match="digits"):
        validate_jurisdiction(code)


def test_covers_is_a_prefix_test() -> None:
    assert covers(STREET, STREET)
    assert covers(STREET, COMMUNITY)
    assert covers(STREET, GRID)
    assert not covers(STREET, "320104002001")
    assert not covers(COMMUNITY, STREET)  # a community does not cover its street


@given(parent=st.from_regex(r"\A[0-9]{9}\Z"), child_tail=st.from_regex(r"\A[0-9]{6}\Z"),
       other=st.from_regex(r"\A[0-9]{15}\Z"))
def test_a_street_principal_acts_exactly_in_codes_under_its_street(parent: str, child_tail: str, other: str) -> None:
    who = Principal(subject="s", roles=frozenset({Role.STREET_REVIEWER}), jurisdictions=(parent,))
    assert who.may_act_in(parent + child_tail)
    assert who.may_act_in(other) == other.startswith(parent)


def test_principal_with_several_jurisdictions_and_roles() -> None:
    who = Principal(subject="u1", roles=frozenset({Role.WINDOW_CLERK, Role.LEADER}),
                    jurisdictions=(COMMUNITY, "320104002"))
    assert who.may_act_in(GRID) and who.may_act_in("320104002003")
    assert not who.may_act_in("320104003")
    assert who.has_any(Role.LEADER, Role.ADMIN)
    assert not who.has_any(Role.ADMIN, Role.AUDITOR)
    assert not who.may_act_in("320104")  # acting district-wide needs the district code


def test_principal_is_frozen() -> None:
    who = Principal(subject="u1", roles=frozenset({Role.ADMIN}), jurisdictions=("320104",))
    with pytest.raises(AttributeError):
        who.subject = "someone else"  # type: ignore[misc]


def test_from_claims_reads_the_claims_layout() -> None:
    who = Principal.from_claims({"sub": "dept-ps", "name": "Qinhuai police", "roles": ["department"],
                                 "jurisdictions": ["320104"], "department": "public-security"})
    assert who == Principal(subject="dept-ps", name="Qinhuai police", roles=frozenset({Role.DEPARTMENT}),
                            jurisdictions=("320104",), department="public-security")


@pytest.mark.parametrize("claims, reason", [
    ({"roles": ["admin"], "jurisdictions": ["320104"]}, "subject"),
    ({"sub": "u", "roles": ["mayor"], "jurisdictions": ["320104"]}, "unknown role 'mayor'"),
    ({"sub": "u", "roles": "admin", "jurisdictions": ["320104"]}, "'roles' must be a list"),
    ({"sub": "u", "roles": ["admin"], "jurisdictions": ["3201"]}, "has 4 digits"),
    ({"sub": "u", "roles": ["admin"], "jurisdictions": [320104]}, "'jurisdictions' must be a list of strings"),
    ({"sub": "u", "roles": ["department"], "jurisdictions": ["320104"]}, "must name its department"),
])
def test_from_claims_refuses_bad_claims_with_the_reason(claims: dict, reason: str) -> None:
    with pytest.raises(InvalidPrincipal, match=reason):
        Principal.from_claims(claims)


def test_minted_token_verifies_into_the_same_principal(keys, verifier) -> None:
    token = mint_token(keys[0], ["street_reviewer", Role.LEADER], [STREET], subject="li.wei", name="李伟")
    assert jwt.get_unverified_header(token)["kid"] == KEY_ID
    who = verifier.verify(token)
    assert who.subject == "li.wei" and who.name == "李伟"
    assert who.roles == frozenset({Role.STREET_REVIEWER, Role.LEADER})
    assert who.jurisdictions == (STREET,)
    assert who.claims["iss"] == ISSUER and who.claims["aud"] == AUDIENCE
    assert who.claims["exp"] > who.claims["iat"]


def test_minting_refuses_bad_role_code_or_missing_department(keys) -> None:
    with pytest.raises(InvalidPrincipal, match="unknown role"):
        mint_token(keys[0], "mayor", STREET)
    with pytest.raises(InvalidPrincipal, match="digits"):
        mint_token(keys[0], "admin", "12345")
    with pytest.raises(InvalidPrincipal, match="department"):
        mint_token(keys[0], "department", "320104")
    with pytest.raises(InvalidPrincipal, match="at least one role"):
        mint_token(keys[0], [], "320104")


def test_expired_token_is_refused(keys, verifier) -> None:
    token = mint_token(keys[0], "admin", "320104", ttl=60, now=time.time() - 3600)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)


def test_small_clock_skew_is_tolerated(keys, verifier) -> None:
    # Expired 5 s ago and issued "in the future" by 5 s: within the leeway either way.
    assert verifier.verify(mint_token(keys[0], "admin", "320104", ttl=60, now=time.time() - 65))
    assert verifier.verify(mint_token(keys[0], "admin", "320104", ttl=60, now=time.time() + 5))


def test_token_not_valid_yet_is_refused(keys, verifier) -> None:
    token = mint_token(keys[0], "admin", "320104", now=time.time() + 3600)
    with pytest.raises(InvalidToken, match="not valid yet"):
        verifier.verify(token)


@pytest.mark.parametrize("field, value", [("issuer", "someone-else"), ("audience", "another-api")])
def test_token_for_another_issuer_or_audience_is_refused(keys, verifier, field: str, value: str) -> None:
    token = mint_token(keys[0], "admin", "320104", **{field: value})
    with pytest.raises(InvalidToken, match="invalid token"):
        verifier.verify(token)


def test_token_signed_by_another_key_with_our_kid_is_refused(tmp_path: Path, verifier) -> None:
    ensure_local_keys(tmp_path / "forger")
    forged = mint_token(private_key_path(tmp_path / "forger").read_bytes(), "admin", "320104")
    with pytest.raises(InvalidToken, match="Signature verification failed"):
        verifier.verify(forged)


def test_unsigned_and_symmetric_tokens_are_refused(keys, verifier) -> None:
    claims = {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "iat": int(time.time()),
              "exp": int(time.time()) + 60, "roles": ["admin"], "jurisdictions": ["320104"]}
    unsigned = jwt.encode(claims, None, algorithm="none")
    hmac = jwt.encode(claims, "guessable-secret-of-at-least-32-bytes!!", algorithm="HS256",
                      headers={"kid": KEY_ID})
    for token in (unsigned, hmac):
        with pytest.raises(InvalidToken, match="RS256"):
            verifier.verify(token)
    with pytest.raises(InvalidToken, match="malformed"):
        verifier.verify("not-a-jwt")


def test_a_good_header_on_a_broken_or_altered_token_is_not_enough(keys, verifier) -> None:
    """The header is read ahead only to pick the key (and remembered by its segment); the whole
    token is still checked, so a known header vouches for nothing."""
    good = mint_token(keys[0], "admin", "320104")
    verifier.verify(good)  # its header segment is now remembered
    header, payload, signature = good.split(".")
    other = mint_token(keys[0], "window_clerk", "320104001").split(".")[1]
    for broken in (f"{header}.{other}.{signature}",  # another token's claims under this signature
                   f"{header}.{payload}.{signature[:-4]}AAAA",
                   f"{header}.!!!!.{signature}",
                   f"{header}.{payload}",
                   f"{header}..{signature}"):
        with pytest.raises(InvalidToken):
            verifier.verify(broken)
        with pytest.raises(InvalidToken):
            verifier.verify_offline(broken)
    import base64
    for header_json in (b"[1, 2]", b'"RS256"', b"{not json"):
        segment = base64.urlsafe_b64encode(header_json).rstrip(b"=").decode()
        with pytest.raises(InvalidToken, match="malformed"):
            verifier.verify(f"{segment}.{payload}.{signature}")
    long_header = {"alg": "RS256", "kid": KEY_ID, "x5u": "https://" + "a" * 2000}
    with pytest.raises(InvalidToken):  # read but not remembered; its signature does not cover it
        verifier.verify(".".join([base64.urlsafe_b64encode(json.dumps(long_header).encode()).rstrip(b"=").decode(),
                                  payload, signature]))


def test_unknown_kid_is_refused(keys, verifier) -> None:
    token = mint_token(keys[0], "admin", "320104", key_id="retired-key")
    with pytest.raises(InvalidToken, match="unknown key id 'retired-key'"):
        verifier.verify(token)


def test_jwks_file_is_reread_after_key_rotation(tmp_path: Path, keys) -> None:
    jwks_file = tmp_path / "rotating.json"
    jwks_file.write_text(keys[1].read_text())
    verifier = TokenVerifier(str(jwks_file), issuer=ISSUER, audience=AUDIENCE)
    assert verifier.verify(mint_token(keys[0], "admin", "320104"))
    new_jwks = ensure_local_keys(tmp_path / "next")
    new_doc = json.loads(new_jwks.read_text())
    new_doc["keys"][0]["kid"] = "civicgrid-local-2"
    jwks_file.write_text(json.dumps(new_doc))
    rotated = mint_token(private_key_path(tmp_path / "next").read_bytes(), "admin", "320104",
                         key_id="civicgrid-local-2")
    assert verifier.verify(rotated).subject.startswith("local:admin")
    with pytest.raises(InvalidToken, match="unknown key id"):
        verifier.verify(mint_token(keys[0], "admin", "320104"))


def test_offline_verification_sees_a_rotated_jwks_file_as_not_at_hand(tmp_path: Path, keys) -> None:
    jwks_file = tmp_path / "rotating.json"
    jwks_file.write_text(keys[1].read_text())
    verifier = TokenVerifier(str(jwks_file), issuer=ISSUER, audience=AUDIENCE)
    token = mint_token(keys[0], "admin", "320104")
    assert verifier.verify_offline(token) is None  # not loaded yet
    assert verifier.verify(token).roles == {Role.ADMIN}
    assert verifier.verify_offline(token).roles == {Role.ADMIN}
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify_offline(mint_token(keys[0], "admin", "320104", ttl=1, now=time.time() - 3600))
    assert verifier.verify_offline(mint_token(keys[0], "admin", "320104", key_id="unknown")) is None
    jwks_file.write_text(json.dumps({"keys": []}))  # the key withdrawn
    assert verifier.verify_offline(token) is None  # changed on disk: `verify` rereads it
    with pytest.raises(JwksUnavailable):
        verifier.verify(token)


def test_missing_or_broken_jwks_file_is_our_problem_not_the_callers(tmp_path: Path, keys) -> None:
    token = mint_token(keys[0], "admin", "320104")
    with pytest.raises(JwksUnavailable, match="cannot be read"):
        TokenVerifier(str(tmp_path / "absent.json"), issuer=ISSUER, audience=AUDIENCE).verify(token)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(JwksUnavailable, match="not a usable JWK set"):
        TokenVerifier(str(broken), issuer=ISSUER, audience=AUDIENCE).verify(token)


IDP = "https://sso.example.org/realms/civicgrid"


@pytest.fixture(scope="module")
def idp_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    """A second key pair standing for the identity provider's (its own JWKS file, its own kid)."""
    keys_dir = tmp_path_factory.mktemp("idp")
    jwks = ensure_local_keys(keys_dir)
    doc = json.loads(jwks.read_text())
    doc["keys"][0]["kid"] = "idp-1"
    jwks.write_text(json.dumps(doc))
    return private_key_path(keys_dir).read_bytes(), jwks


@pytest.fixture
def two_issuers(keys, idp_keys) -> TokenVerifier:
    return TokenVerifier(str(keys[1]), issuer=ISSUER, audience=AUDIENCE, oidc_issuer=IDP, oidc_jwks=str(idp_keys[1]))


def test_each_trusted_issuers_tokens_are_verified_with_that_issuers_keys(keys, idp_keys, two_issuers) -> None:
    assert two_issuers.issuers == (ISSUER, IDP)
    local = two_issuers.verify(mint_token(keys[0], "window_clerk", STREET))
    from_idp = two_issuers.verify(mint_token(idp_keys[0], "leader", "320104", subject="kc-uuid", issuer=IDP,
                                             key_id="idp-1"))
    assert local.roles == {Role.WINDOW_CLERK} and from_idp.roles == {Role.LEADER}
    assert from_idp.claims["iss"] == IDP and from_idp.subject == "kc-uuid"
    assert two_issuers.verify_offline(mint_token(idp_keys[0], "leader", "320104", issuer=IDP, key_id="idp-1"))


@pytest.mark.parametrize("kid", [KEY_ID, "idp-1"])
def test_a_token_signed_with_one_issuers_key_that_claims_the_other_is_refused(keys, two_issuers, kid) -> None:
    """The local key, whoever holds it, cannot speak for the identity provider, whatever key id
    it names: the other issuer's keys check it, and the signature fails or the kid is unknown."""
    forged = mint_token(keys[0], "admin", "320104", issuer=IDP, key_id=kid)
    with pytest.raises(InvalidToken, match="unknown key id|Signature verification failed"):
        two_issuers.verify(forged)


def test_a_token_of_an_issuer_not_trusted_is_refused_naming_it(keys, two_issuers, verifier) -> None:
    stranger = mint_token(keys[0], "admin", "320104", issuer="https://elsewhere.example/realms/x")
    with pytest.raises(InvalidToken, match="'https://elsewhere.example/realms/x', which is not trusted"):
        two_issuers.verify(stranger)
    with pytest.raises(InvalidToken, match="not trusted"):
        two_issuers.verify_offline(stranger)
    with pytest.raises(InvalidToken, match="Invalid issuer"):  # one issuer: jwt.decode's own check
        verifier.verify(stranger)


@pytest.mark.parametrize("token", ["a.b", "x.%%%.y", "eyJhbGciOiJSUzI1NiJ9.WzFd.c2ln"])
def test_a_malformed_payload_is_refused_before_any_key_is_chosen(two_issuers, token) -> None:
    with pytest.raises(InvalidToken, match="malformed|not trusted"):
        two_issuers.verify(token)

"""Sign-in's pure rules and its cookie codec: where a browser may be sent after sign-in, the
CSRF rule, and session cookies that can be neither read, altered, swapped nor kept past their
time. (The flow itself against the real Keycloak: tests/e2e/test_console_sign_in_on_the_stack.py.)"""
from __future__ import annotations

import os

import pytest

from civicgrid_gateway.adapters.sign_in import MAX_COOKIE_CHARS, AccessTokens, SessionCookies
from civicgrid_gateway.domain.sign_in import DEFAULT_NEXT, MAX_NEXT_CHARS, Session, safe_next


@pytest.mark.parametrize("path", ["/", "/console/cases?status=open", "/api/intake/v1/affairs", "/a/b#c"])
def test_a_path_of_this_origin_is_where_the_browser_returns(path):
    assert safe_next(path) == path


@pytest.mark.parametrize("target", [None, "", "https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", "console", "/a\nSet-Cookie: x=1", "/a b",
                                    "/" + "a" * MAX_NEXT_CHARS])
def test_anything_else_returns_the_browser_to_the_start_page(target):
    assert safe_next(target) == DEFAULT_NEXT


def session(csrf: str = "the-token") -> Session:
    return Session("sid", "subject", "refresh", csrf, expires_at=2_000_000_000)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_a_safe_method_needs_no_csrf_token(method):
    assert session().csrf_ok(method, None)


@pytest.mark.parametrize("sent", [None, "", "the-toke", "the-token ", "another"])
def test_a_change_needs_the_sessions_own_csrf_token(sent):
    assert not session().csrf_ok("POST", sent)
    assert session().csrf_ok("POST", "the-token")


@pytest.fixture
def cookies() -> SessionCookies:
    return SessionCookies(os.urandom(32))


def test_a_sealed_cookie_opens_for_its_use_only_and_until_it_expires(cookies):
    value = cookies.seal("session", {"sid": "s1", "rt": "refresh-token", "exp": 1_000})
    assert "refresh-token" not in value and len(value.split(".")) == 5  # JWE compact: encrypted
    assert cookies.open("session", value, now=999)["sid"] == "s1"
    assert cookies.open("sign_in", value, now=999) is None  # a session cookie is no sign-in cookie
    assert cookies.open("session", value, now=1_000) is None  # expired


def test_an_altered_a_foreign_or_an_oversized_cookie_does_not_open(cookies):
    value = cookies.seal("session", {"sid": "s1", "exp": 2_000_000_000})
    header, key, iv, ciphertext, tag = value.split(".")
    flipped = ciphertext[:-1] + ("A" if ciphertext[-1] != "A" else "B")
    assert cookies.open("session", ".".join([header, key, iv, flipped, tag])) is None
    assert SessionCookies(os.urandom(32)).open("session", value) is None  # another gateway's key
    for junk in (None, "", "not-a-jwe", "a.b.c.d.e", "x" * (MAX_COOKIE_CHARS + 1)):
        assert cookies.open("session", junk) is None


def test_a_cookie_without_an_expiry_never_opens(cookies):
    assert cookies.open("session", cookies.seal("session", {"sid": "s1"})) is None


def test_a_cookie_a_browser_would_not_keep_is_refused_when_sealed(cookies):
    with pytest.raises(ValueError, match="would not be kept by a browser"):
        cookies.seal("session", {"rt": "x" * MAX_COOKIE_CHARS, "exp": 2_000_000_000})


def test_an_access_token_is_held_until_it_nears_its_expiry_and_the_least_recent_go_first():
    tokens = AccessTokens(capacity=2)
    tokens.put("a", "token-a", expires_at=100)
    assert tokens.get("a", valid_for=30, now=69) == "token-a"
    assert tokens.get("a", valid_for=30, now=70) is None  # 30 s left: renewed before it is passed on
    tokens.put("b", "token-b", expires_at=100)
    tokens.get("a", valid_for=0, now=0)  # a is used: b is now the least recent
    tokens.put("c", "token-c", expires_at=100)
    assert tokens.get("b", valid_for=0, now=0) is None and tokens.get("a", valid_for=0, now=0) == "token-a"
    tokens.forget("a")
    assert tokens.get("a", valid_for=0, now=0) is None

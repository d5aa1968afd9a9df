"""How an applicant wants to be told about their cases (告知方式): by SMS at their mobile, by
email, by a WeChat subscribe message of the district's mini program, any of them or none.

The resident says so at the window (or through the mini program's own backend, which knows their
openid from WeChat's login); intake keeps the addresses encrypted beside the phone
(adapters/applicant_store.py) and the choice itself, with which addresses are on record but not
the addresses, as an event of the applicant's stream. The notifications service asks intake for
the one address of one channel when it sends (POST /v1/cases/{id}/applicant-contact), and intake
answers only for a channel the applicant chose.

An applicant who never said anything is told by SMS when their phone is a mobile: what the
window did before there was a choice, and what most residents expect.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email


class TellChannel(enum.StrEnum):
    SMS = "sms"  # at the mobile number of the applicant's profile
    EMAIL = "email"
    WECHAT = "wechat"  # a subscribe message (订阅消息) to the openid of the district's mini program


# An openid is opaque, 28 characters of [A-Za-z0-9_-] in practice; WeChat documents no fixed
# length, so a little room either way.
_OPENID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_EMAIL_LENGTH = 254  # RFC 5321's path limit, less the angle brackets


class InvalidContactChannels(ValueError):
    """A contact or a choice breaks a rule; `field` names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ContactChannels:
    """The applicant's addresses beyond the phone, and the channels they chose, in their order."""

    email: str | None
    wechat_openid: str | None
    channels: tuple[TellChannel, ...]

    def __post_init__(self) -> None:
        if self.email is not None:
            object.__setattr__(self, "email", normalised_email(self.email))
        if self.wechat_openid is not None and not (isinstance(self.wechat_openid, str)
                                                   and _OPENID.match(self.wechat_openid)):
            raise InvalidContactChannels("wechat_openid", "must be an openid: 16 to 64 letters, digits, - or _")
        seen: list[TellChannel] = []
        for i, channel in enumerate(self.channels):
            try:
                channel = TellChannel(channel)
            except ValueError:
                raise InvalidContactChannels(f"channels/{i}", "must be sms, email or wechat") from None
            if channel in seen:
                raise InvalidContactChannels(f"channels/{i}", f"{channel} is chosen twice")
            seen.append(channel)
        object.__setattr__(self, "channels", tuple(seen))
        if TellChannel.EMAIL in self.channels and self.email is None:
            raise InvalidContactChannels("channels", "email is chosen but no email address is given")
        if TellChannel.WECHAT in self.channels and self.wechat_openid is None:
            raise InvalidContactChannels("channels", "wechat is chosen but no openid is given")

    def check_phone(self, phone_is_mobile: bool) -> None:
        """SMS goes to the profile's phone, which must be a mobile."""
        if TellChannel.SMS in self.channels and not phone_is_mobile:
            raise InvalidContactChannels("channels", "sms is chosen but the applicant's phone on record is not a "
                                                     "mobile number")


# Before the applicant chose: SMS to their mobile, if they have one.
NOT_CHOSEN = ContactChannels(email=None, wechat_openid=None, channels=(TellChannel.SMS,))


def normalised_email(value: object) -> str:
    """The address as email-validator normalises it (the domain lower-cased, IDNA); the shape
    only: no DNS lookup, since a district's intranet may resolve nothing outside."""
    if not isinstance(value, str) or len(value) > MAX_EMAIL_LENGTH:
        raise InvalidContactChannels("email", f"must be an email address of at most {MAX_EMAIL_LENGTH} characters")
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        # email-validator's message names the part that is wrong, never echoes the address.
        raise InvalidContactChannels("email", f"must be an email address: {exc}") from None


def mask_email(email: str) -> str:
    """z***@example.com: the first character of the local part and the domain."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


def mask_openid(openid: str) -> str:
    """oB_h…IwwA: enough for a clerk to tell two bindings apart, not to address a message."""
    return f"{openid[:4]}…{openid[-4:]}"

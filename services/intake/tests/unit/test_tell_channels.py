"""How an applicant chose to be told (domain/contact_channels.py) and its event."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from civicgrid_common.contracts import Contracts
from civicgrid_common.paths import contracts_dir

from civicgrid_intake.domain.applicant import APPLICANT_CONTACT_CHANNELS_SET, Applicant, ApplicantKind
from civicgrid_intake.domain.contact_channels import (
    NOT_CHOSEN,
    ContactChannels,
    InvalidContactChannels,
    TellChannel,
    mask_email,
    mask_openid,
)

OPENID = "oB_hN41zbT1OvATDONK5LccFIwwA"
AT = datetime(2026, 12, 4, 2, 0, tzinfo=timezone.utc)


def test_the_address_is_normalised_and_the_channels_kept_in_the_applicants_order() -> None:
    chosen = ContactChannels(email="Zhang.Wei@Example.COM", wechat_openid=OPENID, channels=("wechat", "email"))
    assert chosen.email == "Zhang.Wei@example.com"
    assert chosen.channels == (TellChannel.WECHAT, TellChannel.EMAIL)


@pytest.mark.parametrize("email, openid, channels, field", [
    ("not an address", None, ("email",), "email"),
    ("a@b", None, ("email",), "email"),
    ("x" * 250 + "@a.cn", None, (), "email"),
    (None, "short", ("wechat",), "wechat_openid"),
    (None, "o" * 20 + "/../", ("wechat",), "wechat_openid"),
    (None, None, ("email",), "channels"),
    (None, None, ("wechat",), "channels"),
    (None, None, ("sms", "sms"), "channels/1"),
    (None, None, ("fax",), "channels/0"),
])
def test_a_broken_choice_names_its_field(email, openid, channels, field) -> None:
    with pytest.raises(InvalidContactChannels) as caught:
        ContactChannels(email=email, wechat_openid=openid, channels=channels)
    assert caught.value.field == field
    if email:
        assert email not in str(caught.value)  # never the value typed in


def test_sms_needs_a_mobile_on_the_profile() -> None:
    with pytest.raises(InvalidContactChannels) as caught:
        ContactChannels(email=None, wechat_openid=None, channels=("sms",)).check_phone(False)
    assert caught.value.field == "channels"
    ContactChannels(email=None, wechat_openid=None, channels=()).check_phone(False)  # none chosen: fine
    assert NOT_CHOSEN.channels == (TellChannel.SMS,)


def test_masks_keep_too_little_to_write_to() -> None:
    assert mask_email("zhang.wei@example.com") == "z***@example.com"
    assert mask_openid(OPENID) == "oB_h…IwwA"


def test_the_event_says_which_channels_and_never_the_addresses() -> None:
    applicant = Applicant("ap-" + "0" * 32)
    applicant.register(ApplicantKind.RESIDENT, "320104001001")
    applicant.set_contact_channels(("wechat", "email"), email_on_record=True, wechat_on_record=True,
                                   actor="clerk-1", at=AT)
    event = applicant.pending_events[-1]
    assert event.type == APPLICANT_CONTACT_CHANNELS_SET
    assert event.data == {"applicant_id": applicant.id, "channels": ["wechat", "email"], "email_on_record": True,
                          "wechat_on_record": True, "set_at": AT.isoformat(), "actor": "clerk-1"}
    Contracts(contracts_dir()).validate(event.type, json.loads(json.dumps(event.data)))


def test_only_a_registered_applicant_chooses() -> None:
    with pytest.raises(ValueError):
        Applicant("ap-" + "1" * 32).set_contact_channels((), email_on_record=False, wechat_on_record=False,
                                                         actor="clerk-1", at=AT)

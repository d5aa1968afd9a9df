"""Residents the cases tests register first (intake refuses a case for an applicant it does not
know): identity numbers with the right check character, born when and as the test needs. By
default a woman of over 80, who meets every age and sex rule of the seeded catalogue."""
from __future__ import annotations

import itertools
import random
from datetime import date

from civicgrid_intake.domain.identity_numbers import resident_id_check_character

STREET = "320104001"  # Huaihai Road street
COMMUNITY = "320104001001"
_SEQUENCE = itertools.count(random.randrange(0, 400))


def resident_number(born: date = date(1944, 3, 8), sex: str = "female", area: str = "320104") -> str:
    """A GB 11643 number; the 17th digit is odd for a man, even for a woman."""
    n = next(_SEQUENCE) % 500
    order = f"{n // 5 % 100:02d}{(n % 5) * 2 + (1 if sex == 'male' else 0)}"
    body = f"{area}{born:%Y%m%d}{order}"
    return body + resident_id_check_character(body)


async def register_resident(intake, token, *, born: date = date(1944, 3, 8), sex: str = "female",
                            household: str = STREET, residence: str = COMMUNITY, who: str = STREET,
                            number: str | None = None, phone: str | None = None) -> str:
    """POST /v1/applicants as a clerk of `who`; the pseudonymous applicant id."""
    r = await intake.post("/v1/applicants", headers=token("window_clerk", who), json={
        "kind": "resident", "identity_number": number or resident_number(born, sex), "name": "测试居民",
        "household_registration_code": household, "residence_community_code": residence,
        **({"phone": phone} if phone else {})})
    assert r.status_code in (200, 201), r.text
    return r.json()["applicant_id"]

"""Each complaint category has a default routing declared in the domain (DEFAULT_ROUTING): one
test per category, in the aggregate and over HTTP (a route call without a body)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from civicgrid_intake.domain.complaint import DEFAULT_ROUTING, Category
from civicgrid_intake.domain.routing import DepartmentHandles, StreetHandles, routing_to_data

from test_api_complaints import PHONE_CALL, STREET, file
from test_complaint import BEFORE_GOLDEN_WEEK, emitted, receive

EXPECTED = {
    Category.URBAN_CONSTRUCTION: DepartmentHandles("urban_management"),
    Category.PLANNING: DepartmentHandles("planning_construction"),
    Category.MUNICIPAL_WORKS: DepartmentHandles("urban_management"),
    Category.ENVIRONMENTAL_PROTECTION: DepartmentHandles("environmental_protection"),
    Category.HOUSING_MANAGEMENT: DepartmentHandles("housing"),
    Category.EPIDEMIC_PREVENTION: DepartmentHandles("health"),
    Category.PUBLIC_ORDER: DepartmentHandles("public_security"),
    Category.OTHER: StreetHandles(),
}


def test_every_category_has_a_default() -> None:
    assert set(DEFAULT_ROUTING) == set(Category)


@pytest.mark.parametrize("category", list(Category), ids=lambda c: c.value)
def test_a_complaint_routed_without_a_rule_goes_to_its_categorys_default(category: Category) -> None:
    complaint = receive(category=category)
    complaint.route(None, at=BEFORE_GOLDEN_WEEK + timedelta(minutes=5))
    assert complaint.routing == EXPECTED[category]
    routed = emitted(complaint)[-1]  # checked against its schema on the way
    assert routed.data["routing"] == routing_to_data(EXPECTED[category])


def test_an_explicit_rule_still_wins_over_the_default() -> None:
    complaint = receive(category=Category.PUBLIC_ORDER)
    complaint.route(StreetHandles(), at=BEFORE_GOLDEN_WEEK + timedelta(minutes=5))
    assert complaint.routing == StreetHandles()


@pytest.mark.integration
@pytest.mark.parametrize("category", list(Category), ids=lambda c: c.value)
async def test_over_http_a_route_without_a_body_takes_the_default(intake, token, category: Category):
    filed = await file(intake, token, body={**PHONE_CALL, "category": category.value})
    r = await intake.post(f"/v1/complaints/{filed['id']}/route", headers=token("window_clerk", STREET))
    assert r.status_code == 200, r.text
    assert r.json()["routing"] == routing_to_data(EXPECTED[category])
    assert r.json()["status"] == "routed"

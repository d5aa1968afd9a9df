"""The three routing rules (pure)."""
import pytest

from civicgrid_intake.domain.routing import (
    DepartmentHandles,
    InvalidRouting,
    LeadWithCoDepartments,
    StreetHandles,
    routing_from_data,
    routing_to_data,
)


@pytest.mark.parametrize(
    "routing",
    [
        StreetHandles(),
        DepartmentHandles("civil_affairs"),
        LeadWithCoDepartments("housing", ("urban_management", "public_security")),
    ],
)
def test_routing_round_trips_through_its_json_form(routing):
    assert routing_from_data(routing_to_data(routing)) == routing


def test_departments_involved():
    assert StreetHandles().departments() == ()
    assert LeadWithCoDepartments("housing", ("health",)).departments() == ("housing", "health")


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "department", "department": "Civil Affairs"},
        {"kind": "lead", "lead": "housing", "co_departments": []},
        {"kind": "lead", "lead": "housing", "co_departments": ["housing"]},
        {"kind": "lead", "lead": "housing", "co_departments": ["health", "health"]},
        {"kind": "anywhere"},
    ],
)
def test_bad_routings_are_refused(data):
    with pytest.raises(InvalidRouting):
        routing_from_data(data)

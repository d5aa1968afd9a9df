"""contracts/departments.yaml, the departments every reference is checked against: each entry is
well-formed, every department the seeded catalogue, workflows and complaint routing name is in it
(else the demo district's own data would be refused), and `system: true` is exactly the
departments whose systems have task and opinion topics in the AsyncAPI document."""
from __future__ import annotations

import re

from civicgrid_common.contracts import Contracts
from civicgrid_common.paths import contracts_dir

KINDS = {"district_department", "district_office", "street_unit", "community_unit", "mass_organisation"}


def registry():
    return Contracts(contracts_dir()).departments


def test_every_entry_is_well_formed():
    departments = registry()
    assert len(departments) >= 10
    for code, d in departments.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]{1,39}", code), code
        assert d.name_zh and d.name_en and d.kind in KINDS, d


def test_every_department_the_seeds_name_is_registered():
    from civicgrid_approval.domain.seed import seed_definitions
    from civicgrid_intake.application.catalogue import demo_seed
    from civicgrid_intake.domain.complaint import DEFAULT_ROUTING

    named = set()
    for affair in demo_seed():
        named |= {affair.department, *affair.routing.departments()}
    for definition in seed_definitions():
        named.add(definition.department)
        for step in definition.steps:
            named |= {step.department} if step.department else set()
            named |= {b.department for b in step.branches}
    for routing in DEFAULT_ROUTING.values():
        named |= set(routing.departments())
    assert sorted(registry().unknown(sorted(named))) == []


def test_system_departments_are_those_with_task_and_opinion_topics():
    contracts = Contracts(contracts_dir())
    topics = {t.name for t in contracts.topics}
    with_topics = {m.group(1) for t in topics if (m := re.fullmatch(r"civicgrid\.departments\.(\w+)\.tasks", t))
                   if f"civicgrid.departments.{m.group(1)}.opinions" in topics}
    assert {code for code, d in contracts.departments.items() if d.system} == with_topics

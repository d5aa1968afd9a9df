"""The seeded workflow definitions (workflows.yaml), expanded and validated."""
from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from civicgrid_approval.domain.definition import Definition, expand_defaults, parse_definition


def seed_definitions() -> list[Definition]:
    text = resources.files(__package__).joinpath("workflows.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return [parse_definition(expand_defaults(w)) for w in data["workflows"]]

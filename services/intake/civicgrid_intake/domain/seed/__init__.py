"""The catalogue's seed: the affairs a district's windows start with (affairs.json).

The file ships inside the package. Reading it is the only thing done here; turning it into
catalogue commands is `catalogue.affairs_from_seed` and `catalogue.seed_catalogue` (pure),
so the seed passes exactly the checks an admin's change would.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

SEED_FILE = "affairs.json"


def seed_document() -> dict[str, Any]:
    """The seed as shipped: {"catalogue": district code, "affairs": [affair JSON, ...]}."""
    text = resources.files(__package__).joinpath(SEED_FILE).read_text("utf-8")
    return json.loads(text)

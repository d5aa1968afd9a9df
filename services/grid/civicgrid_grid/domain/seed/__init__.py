"""The classification's seed: the minor classes a district's table starts with
(classification.json, shipped inside the package).

Reading the file is all that happens here; `classification.classes_from_seed` and
`seed_classification` (pure) turn it into the table's commands, so the seed passes exactly the
checks an admin's change would.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

SEED_FILE = "classification.json"


def seed_document() -> dict[str, Any]:
    """The seed as shipped: {"district": code, "description": ..., "classes": [minor class, ...]}."""
    return json.loads(resources.files(__package__).joinpath(SEED_FILE).read_text("utf-8"))

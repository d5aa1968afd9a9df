"""The demo district's rule book and the sample events templates are rendered on before they
are saved (each sample valid against its contract: the bootstrap and a test check)."""
from __future__ import annotations

import json
from importlib import resources
from typing import Any


def _read(name: str) -> Any:
    return json.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


def sample_events() -> dict[str, list[dict[str, Any]]]:
    """Sample CloudEvents (id, type, subject, time, data) by event type."""
    return _read("samples.json")


def seed_document() -> dict[str, Any]:
    """The demo district's templates (each with the event types it is rendered for) and rules."""
    return _read("rule_book.json")

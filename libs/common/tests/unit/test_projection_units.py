"""Pure parts of projections: row digests and identifier checks."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from uuid import UUID

import pytest

from civicgrid_common.projections import ident, rows_digest
from civicgrid_common.projections.store import lock_key, read_schema, version_schema

ROWS = [
    {"grid": "320104001001001", "cases": 3, "amount": Decimal("12.50"),
     "at": datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc), "id": UUID(int=1), "tags": ["a", "b"]},
    {"grid": "320104001001002", "cases": 0, "amount": None, "at": None, "id": UUID(int=2), "tags": []},
]


def test_digest_is_stable_and_ignores_column_order():
    reordered = [dict(reversed(list(r.items()))) for r in ROWS]
    assert rows_digest(ROWS) == rows_digest(reordered) == rows_digest(list(ROWS))


def test_digest_counts_rows_and_depends_on_row_order_and_every_value():
    d = rows_digest(ROWS)
    assert d.startswith("2:")
    assert rows_digest(list(reversed(ROWS))) != d
    changed = [dict(ROWS[0], cases=4), ROWS[1]]
    assert rows_digest(changed) != d
    assert rows_digest(ROWS[:1]) != d


def test_digest_tells_null_from_empty_and_number_from_text():
    assert rows_digest([{"a": None}]) != rows_digest([{"a": ""}])
    assert rows_digest([{"a": 1}]) != rows_digest([{"a": "1"}])


def test_digest_of_nothing_is_defined():
    assert rows_digest([]) == rows_digest(iter(()))
    assert rows_digest([]).startswith("0:")


def test_known_digest_does_not_drift():
    # Pinned: a change in the canonical form would make every stored comparison meaningless.
    assert rows_digest([{"b": 2, "a": "网格"}]) == (
        "1:" + __import__("hashlib").sha256('{"a":"网格","b":2}\n'.encode()).hexdigest())


@pytest.mark.parametrize("bad", ["Cases", "case-counts", "1cases", "x; DROP TABLE y", "", "a" * 64])
def test_ident_refuses_anything_but_plain_lower_case_names(bad):
    with pytest.raises(ValueError):
        ident(bad)


def test_ident_quotes_good_names():
    assert ident("case_counts") == '"case_counts"'


def test_schema_names_and_lock_keys():
    assert version_schema("case_counts", 3) == "proj_case_counts_v3"
    assert read_schema("case_counts") == "read_case_counts"
    assert lock_key("a") == lock_key("a") != lock_key("b")
    assert 0 <= lock_key("a") < 2**32

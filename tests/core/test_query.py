"""Filter, sort and cursor building: rejected before any SQL, values always bound."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Numeric, String, Table
from sqlalchemy.dialects import postgresql

from sqlmosaic import InvalidQueryError
from sqlmosaic._query import (
    Filter,
    _decode_value,
    _encode_value,
    build_filters,
    decode_cursor,
    encode_cursor,
    keyset_condition,
    parse_filters,
    parse_sort,
)

table = Table(
    "thing",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False),
    Column("price", Numeric(10, 2), nullable=False),
    Column("seen", DateTime, nullable=True),
)
COLUMNS = {c.key: c for c in table.columns}
ALLOWED = frozenset({"id", "name", "price", "seen"})


def sql(clause: object) -> str:
    return str(clause.compile(dialect=postgresql.dialect()))  # type: ignore[attr-defined]


def test_parse_filters_operator_suffix() -> None:
    assert parse_filters({"name__ilike": "x", "id": 3}) == [
        Filter("name", "ilike", "x"),
        Filter("id", "eq", 3),
    ]


def test_values_are_bound_never_inlined() -> None:
    (clause,) = build_filters(
        [Filter("name", "eq", "x'; drop table thing; --")], COLUMNS, ALLOWED, "T"
    )
    assert "drop table" not in sql(clause)
    assert "%(name_1)s" in sql(clause)


def test_like_escapes_wildcards() -> None:
    (clause,) = build_filters([Filter("name", "like", "50%_off")], COLUMNS, ALLOWED, "T")
    compiled = clause.compile(dialect=postgresql.dialect())
    (value,) = compiled.params.values()
    assert value == "50/%/_off"
    assert "ESCAPE '/'" in str(compiled)


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        (Filter("nope", "eq", 1), "nope"),
        (Filter("name", "regex", "x"), "name"),
        (Filter("id", "in", "1,2"), "id"),
        (Filter("name", "like", 3), "name"),
        (Filter("seen", "is_null", "yes"), "seen"),
    ],
)
def test_bad_filters_raise_naming_the_field(flt: Filter, field: str) -> None:
    with pytest.raises(InvalidQueryError) as info:
        build_filters([flt], COLUMNS, ALLOWED, "T")
    assert info.value.field == field
    assert field in str(info.value)


def test_hidden_field_is_rejected_like_an_unknown_one() -> None:
    with pytest.raises(InvalidQueryError, match="'price'"):
        build_filters([Filter("price", "gt", 1)], COLUMNS, ALLOWED - {"price"}, "T")
    with pytest.raises(InvalidQueryError, match="cannot sort"):
        parse_sort(["-price"], COLUMNS, ALLOWED - {"price"}, "T", [table.c.id])


def test_sort_appends_primary_key_and_rejects_repeats() -> None:
    keys = parse_sort(["-price", "name"], COLUMNS, ALLOWED, "T", [table.c.id])
    assert [k.spec for k in keys] == ["-price", "name", "id"]
    with pytest.raises(InvalidQueryError):
        parse_sort(["name", "-name"], COLUMNS, ALLOWED, "T", [table.c.id])


def test_cursor_round_trip_with_typed_values() -> None:
    keys = parse_sort(["-price", "name"], COLUMNS, ALLOWED, "T", [table.c.id])
    values = [decimal.Decimal("9.99"), "b", 7]
    assert decode_cursor(encode_cursor(keys, values), keys) == values
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    token = uuid.uuid4()
    # the codec keeps datetimes and UUIDs (decode_cursor also checks each value against its
    # sort column: a datetime is no cursor value for the text column "name")
    assert [_decode_value(_encode_value(v)) for v in (when, token)] == [when, token]
    k2 = parse_sort(["name"], COLUMNS, ALLOWED, "T", [table.c.id])
    with pytest.raises(InvalidQueryError):
        decode_cursor(encode_cursor(k2, [when, token]), k2)


def test_cursor_for_another_sort_or_garbage_is_rejected() -> None:
    keys = parse_sort(["-price"], COLUMNS, ALLOWED, "T", [table.c.id])
    other = parse_sort(["price"], COLUMNS, ALLOWED, "T", [table.c.id])
    cursor = encode_cursor(keys, [decimal.Decimal(1), 1])
    with pytest.raises(InvalidQueryError, match="another sort"):
        decode_cursor(cursor, other)
    for garbage in ["!!!", "e30", "eyJzIjoxfQ"]:
        with pytest.raises(InvalidQueryError) as info:
            decode_cursor(garbage, keys)
        assert info.value.field == "after"


def test_keyset_condition_expands_the_row_comparison() -> None:
    keys = parse_sort(["-price"], COLUMNS, ALLOWED, "T", [table.c.id])
    text = sql(keyset_condition(keys, [decimal.Decimal(5), 10]))
    assert "thing.price < " in text
    assert "thing.price = " in text
    assert "thing.id > " in text


def test_keyset_on_a_nullable_sort_field_compares_nulls_with_is() -> None:
    """NULL sorts after every value: after a NULL (ascending) only the tie-breaker moves on."""
    keys = parse_sort(["seen"], COLUMNS, ALLOWED, "T", [table.c.id])
    text = sql(keyset_condition(keys, [None, 1]))
    assert "thing.seen IS NULL" in text
    assert "thing.id > " in text
    assert "= NULL" not in text
    descending = parse_sort(["-seen"], COLUMNS, ALLOWED, "T", [table.c.id])
    assert "thing.seen IS NOT NULL" in sql(keyset_condition(descending, [None, 1]))

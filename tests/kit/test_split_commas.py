"""services.kit.config.split_commas: how a comma-separated setting is read."""

from __future__ import annotations

from services.kit.config import split_commas


def test_items_are_stripped_and_empty_ones_dropped() -> None:
    assert split_commas(" a, b ,,c ,") == ["a", "b", "c"]
    assert split_commas("") == []


def test_a_sequence_is_taken_as_is_but_stripped() -> None:
    assert split_commas(("a ", "", " b")) == ["a", "b"]

"""The one request-id rule shared by the kit's services and the gateway."""

from __future__ import annotations

import pytest

from services.kit.request_id import pick_request_id


@pytest.mark.parametrize("given", ["rid-123", "a.b_c-D9", "x" * 128, "0"])
def test_a_sane_request_id_is_kept(given: str) -> None:
    assert pick_request_id(given) == given


@pytest.mark.parametrize("given", [None, "", "x" * 129, "has space", "semi;colon", "co:lon", "line\n", "é"])
def test_anything_else_is_replaced_by_a_fresh_hex_id(given: str | None) -> None:
    picked = pick_request_id(given)
    assert picked != given
    assert len(picked) == 32 and int(picked, 16) >= 0
    assert pick_request_id(given) != picked  # fresh each time, not a constant

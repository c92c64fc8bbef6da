"""The schema helpers: each documented status has a meaning and the service's error body."""

from __future__ import annotations

import pytest

from reserve.api.openapi import ERROR_MEANINGS, ErrorBody, errors


def test_an_authenticated_route_documents_401_and_429_besides_its_own() -> None:
    documented = errors(403, 404)
    assert sorted(documented) == [401, 403, 404, 429]
    assert all(entry["model"] is ErrorBody for entry in documented.values())
    assert documented[404]["description"] == ERROR_MEANINGS[404]


def test_an_open_route_documents_only_its_own() -> None:
    assert sorted(errors(503, authenticated=False)) == [503]


def test_a_status_without_a_meaning_is_a_programmer_error() -> None:
    with pytest.raises(ValueError, match="418"):
        errors(418)

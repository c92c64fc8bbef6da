"""Schemathesis against the live server's OpenAPI schema: no input gives a 500.

Every operation is fuzzed with schema-valid and schema-violating inputs (bounded: a few
examples per operation, no shrinking, well under a minute) while authenticated as an
admin, who may call every route, so inputs reach the handlers instead of stopping at the
role check. The checks: never a server error, declared content types and schemas hold.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks

from tests.support.api_server import RunningServer, running_server

CHECKS = [checks.not_a_server_error, checks.content_type_conformance,
          checks.response_schema_conformance]
EXAMPLES_PER_MODE = 8


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("api-schema")
    with running_server(f"sqlite:///{folder}/ledger.sqlite") as running:
        yield running


def _fuzz(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode,
          server: RunningServer) -> None:
    headers = {"Authorization": f"Bearer {server.tokens['admin']}"}

    @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=server.base_url, checks=CHECKS, headers=headers)

    run()


def test_no_input_gives_a_server_error(live: RunningServer) -> None:
    schema = schemathesis.openapi.from_url(f"{live.base_url}/openapi.json")
    failures = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in schemathesis.GenerationMode:
            try:
                _fuzz(operation, mode, live)
            except Unsatisfiable:
                continue  # no parameters and no body: there is no invalid input to send
            except Exception as error:
                failures.append(f"{operation.label} ({mode.value}): {error}")
    assert operations >= 17
    assert failures == [], "\n\n".join(failures)


def test_the_admin_survived_the_fuzzing(live: RunningServer) -> None:
    """The fuzzer must not have locked out or disabled the admin it authenticates as."""
    with live.client("admin") as client:
        assert client.get("/api/me").status_code == 200

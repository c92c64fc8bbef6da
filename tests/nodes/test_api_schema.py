"""Schemathesis against the live server: the answers conform to the schema, for every role.

The server holds vault-a's policy, two proposals and a reconciliation report. For each
role, with that role's token, `st run` goes through its four phases (explicit examples,
the deterministic coverage phase with unsupported methods and boundary values, fuzzing,
and the stateful phase that follows the schema's links from what a POST created to the
operations that read or act on it) with every check on: no server error; status codes,
content types, headers and bodies as documented; schema-valid input accepted and invalid
input rejected; 405 with `Allow` for undeclared methods; missing auth refused. A hook
(tests/support/schema_hooks.py) points schema-valid proposals at the seeded vault, so
requests reach the workflow, which the ledger must show afterwards.

Bounded: a few examples per operation, a fixed seed, no shrinking, one worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_server import ROLES, RunningServer, running_server
from tests.support.api_workflow import seed_matrix

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "st"
SEED = 20260105
EXAMPLES = 3
RUN_SECONDS_MAX = 120
# Input that is well-formed per the schema may still be refused by the domain (the vault's
# policy, a signature, an account rule): a documented 400 on write routes. Read routes
# document no 400, so status_code_conformance catches any there.
# The stateful phase gets more scenarios than the others get examples: it is the one that
# follows links from a created proposal to reading, cancelling and voting on it.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]
[phases.stateful]
max-steps = 8
[phases.stateful.generation]
max-examples = 12
"""
# The admin runs last: its fuzzing may create, change or disable users and tokens.
ORDER = tuple(sorted(ROLES, key=lambda role: role == "admin"))
# The coverage phase (boundary values, every kind of invalid input, undeclared methods) is
# the slow one; these roles between them may call every write route, so its requests
# reach validation everywhere. The others fuzz and run the stateful phase.
COVERAGE_ROLES = frozenset({"operator", "custodian", "admin"})


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("api-schema")
    with running_server(f"sqlite:///{folder}/ledger.sqlite") as running:
        seed_matrix(running)
        yield running


def run_schemathesis(server: RunningServer, role: str, folder: Path) -> subprocess.CompletedProcess[str]:
    phases = ["examples", *(["coverage"] if role in COVERAGE_ROLES else []), "fuzzing",
              "stateful"]
    config = folder / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [str(SCHEMATHESIS), "--config-file", str(config), "run",
               f"{server.base_url}/openapi.json",
               "-H", f"Authorization: Bearer {server.tokens[role]}",
               "--checks", "all", "--phases", ",".join(phases),
               "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--no-shrink",
               "--workers", "1", "--request-timeout", "10", "--no-color",
               "--warnings", "off", "--output-truncate", "true"]
    seeded = [e.payload["digest"] for e in server.ledger.entries(kinds=("proposal.created",))]
    environment = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.support.schema_hooks",
                   "SCHEMA_HOOK_DIGESTS": ",".join(seeded), "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=folder, env=environment, capture_output=True,
                          text=True, timeout=RUN_SECONDS_MAX, check=False)


def written_by_the_api(server: RunningServer) -> Counter[tuple[str, str, str]]:
    """(role, method, path) of every state change a route recorded itself."""
    return Counter((e.payload["role"], e.payload["method"], e.payload["path"])
                   for e in server.ledger.entries(kinds=("api.request",))
                   if e.payload.get("recorded_by") != "middleware" and "role" in e.payload)


@pytest.fixture(scope="module")
def runs(live: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each role's run, in ORDER: its output, or "" when every check passed."""
    failed: dict[str, str] = {}
    for role in ORDER:
        result = run_schemathesis(live, role, tmp_path_factory.mktemp(f"st-{role}"))
        output = result.stdout + result.stderr
        ran = "Stateful" in output and ("Coverage" in output or role not in COVERAGE_ROLES)
        failed[role] = "" if result.returncode == 0 and ran else output[-12000:]
    return failed


@pytest.mark.parametrize("role", ORDER)
def test_every_answer_conforms_to_the_schema(runs: dict[str, str], role: str) -> None:
    assert runs[role] == ""


def test_the_fuzzing_reached_the_workflow(live: RunningServer, runs: dict[str, str]) -> None:
    """Generated requests got past the role checks: write routes answered 2xx and recorded."""
    written = written_by_the_api(live)
    proposals = [key for key in written if key[:2] == ("operator", "POST")
                 and key[2] == "/api/proposals"]
    assert proposals, f"no proposal was created by the fuzzer; writes: {written}"
    assert any(path.startswith("/api/proposals/") for _, _, path in written), written
    assert {role for role, _, _ in written} >= {"operator", "admin"}, written


def test_the_admin_survived_the_fuzzing(live: RunningServer, runs: dict[str, str]) -> None:
    """The fuzzer must not have locked out or disabled the admin it authenticates as."""
    with live.client("admin") as client:
        assert client.get("/api/me").status_code == 200


def test_options_lists_every_method_of_a_path_and_others_get_405(live: RunningServer) -> None:
    """Before: OPTIONS /api/proposals was 405 with `Allow: GET` (only the first route's)."""
    with live.client() as anonymous:  # method answers come before authentication
        options = anonymous.options("/api/proposals")
        assert options.status_code == 204
        assert options.headers["allow"] == "GET, POST, OPTIONS"
        refused = anonymous.delete("/api/users/root-admin")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, PUT, OPTIONS"
        assert "DELETE" in refused.json()["detail"]
        assert anonymous.options("/api/no-such-thing").status_code == 404
    assert live.store.user("root-admin") is not None


def test_the_schema_documents_each_routes_errors_and_links(live: RunningServer) -> None:
    with live.client() as anonymous:
        document = anonymous.get("/openapi.json").json()
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if path != "/api/health":
                assert {"401", "429"} <= set(responses), (method, path)
                assert operation["security"] == [{"bearer": []}], (method, path)
            for code in set(responses) - {"200", "201", "202", "422"}:
                content = responses[code]["content"]["application/json"]["schema"]
                assert content == error_body, (method, path, code)
            if method == "post" and "{" not in path and path.startswith("/api/") \
                    and path != "/api/ledger/checkpoints":
                assert "400" in responses, path  # bodies may be refused by the domain
    created = document["paths"]["/api/proposals"]["post"]["responses"]["201"]["links"]
    assert created["show"] == {"operationId": "show_proposal",
                               "description": "The proposal and its decision.",
                               "parameters": {"digest": "$response.body#/digest"}}
    # Inputs the schema admits are not answered 400 on read routes: an unknown kind is
    # outside the schema (422), a tree size the ledger has not reached has no proof (404).
    with live.client("viewer") as viewer:
        assert viewer.get("/api/ledger/entries", params={"kind": ""}).status_code == 422
        assert viewer.get("/api/ledger/entries/0", params={"tree_size": 2**40}).status_code == 404
        assert viewer.get("/api/ledger/consistency",
                          params={"old_size": 0, "new_size": 2**40}).status_code == 404

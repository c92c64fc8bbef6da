"""The workflow carries its freezes to a FreezeMirror: after the ledger, never instead of it.

A fake mirror stands for the EVM guard (tests/nodes/test_evm_freeze_mirror.py runs the real
one on anvil). It records what it was asked and what the ledger said at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from reserve.errors import FreezeMirrorFailed, NodeUnavailable
from reserve.ledger import Ledger
from reserve.transfers.chain import FreezeMirror
from reserve.transfers.service import WorkflowService
from tests.support.workflow import T0, approve, kinds, workflow_service

VAULT = "national-btc"


@dataclass
class FakeMirror:
    ledger: Ledger
    vaults: frozenset[str] = frozenset({VAULT})
    down: bool = False
    calls: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def covers(self, vault: str) -> bool:
        return vault in self.vaults

    def _call(self, action: str, vault: str) -> str | None:
        if self.down:
            raise NodeUnavailable("EVM node unreachable: connection refused")
        self.calls.append((action, vault, kinds(self.ledger)))
        return "0x" + "ab" * 32

    def freeze(self, vault: str) -> str | None:
        return self._call("freeze", vault)

    def unfreeze(self, vault: str) -> str | None:
        return self._call("unfreeze", vault)


def mirrored(ledger: Ledger, mirror: FakeMirror) -> WorkflowService:
    service = workflow_service(ledger)
    service.freeze_mirror = mirror
    return service


def test_fake_is_a_freeze_mirror(ledger: Ledger) -> None:
    assert isinstance(FakeMirror(ledger), FreezeMirror)


def test_freeze_is_recorded_before_it_is_mirrored(ledger: Ledger) -> None:
    mirror = FakeMirror(ledger)
    service = mirrored(ledger, mirror)
    service.freeze(VAULT, "external-auditor", "drill")
    assert [(action, vault) for action, vault, _ in mirror.calls] == [("freeze", VAULT)]
    assert mirror.calls[0][2][-1] == "vault.frozen"  # the ledger already said so


def test_unfreeze_is_mirrored_only_when_the_quorum_applies_it(ledger: Ledger) -> None:
    mirror = FakeMirror(ledger)
    service = mirrored(ledger, mirror)
    service.freeze(VAULT, "external-auditor", "drill")
    later = T0 + timedelta(hours=1)
    unfreeze = service.propose_unfreeze(vault=VAULT, proposer="central-bank",
                                        purpose="drill over", now=later)
    approve(service, unfreeze, "vasp-regulator", "auditor-general", "crypto-council", at=later)
    service.refresh(now=later + timedelta(hours=23))
    assert [action for action, _, _ in mirror.calls] == ["freeze"]
    service.refresh(now=later + timedelta(hours=24))
    assert [action for action, _, _ in mirror.calls] == ["freeze", "unfreeze"]
    assert "vault.unfrozen" in mirror.calls[1][2]


def test_a_mirror_failure_leaves_the_ledger_freeze_standing(ledger: Ledger) -> None:
    mirror = FakeMirror(ledger, down=True)
    service = mirrored(ledger, mirror)
    with pytest.raises(FreezeMirrorFailed, match="national-btc is frozen in the ledger but "
                                                 "the chain did not follow") as caught:
        service.freeze(VAULT, "external-auditor", "drill")
    assert [entry.kind for entry in caught.value.entries] == ["vault.frozen"]
    assert service.sync().vault(VAULT).freeze is not None
    mirror.down = False
    assert service.mirror_freeze(VAULT) == "0x" + "ab" * 32
    assert [action for action, _, _ in mirror.calls] == ["freeze"]


def test_vaults_the_mirror_does_not_cover_are_left_alone(ledger: Ledger) -> None:
    mirror = FakeMirror(ledger, vaults=frozenset())
    service = mirrored(ledger, mirror)
    service.freeze(VAULT, "external-auditor", "drill")
    assert mirror.calls == [] and service.mirror_freeze(VAULT) is None
    assert workflow_service(ledger).mirror_freeze(VAULT) is None  # no mirror at all

"""One root error for the project, with a subtree per domain.

Domain code raises these; only the API layer maps them to HTTP status codes and only the
CLI maps them to exit codes. A mismatch error carries both values so the message says what
was expected and what was found.
"""

from __future__ import annotations


class ReserveError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(ReserveError):
    """Configuration is missing, malformed or unsafe (for example mainnet not enabled)."""


class NetworkSafetyError(ConfigError):
    """An operation was aimed at a network this deployment does not allow."""


class KeystoreError(ReserveError):
    """A keystore file cannot be read, decrypted or written."""


class LedgerError(ReserveError):
    """Root of ledger errors."""


class EventError(LedgerError, ValueError):
    """A ledger event's payload does not match its kind (unknown, missing or mistyped field)."""


class EntryRejected(LedgerError):
    """An entry was refused before anything was written (bad kind, payload, size)."""


class LedgerConflict(LedgerError):
    """An append expected a ledger size that another writer has since changed; retry."""

    def __init__(self, expected_size: int, found_size: int) -> None:
        super().__init__(f"ledger size changed: expected {expected_size}, found {found_size}")
        self.expected_size = expected_size
        self.found_size = found_size


class AppendOnlyViolation(LedgerError):
    """The database refused an UPDATE or DELETE on a ledger table."""


class ProofError(LedgerError):
    """A proof was requested for sizes or indices that do not exist."""


class CheckpointError(LedgerError):
    """A checkpoint note is malformed or its signature does not verify."""


class TransparencyError(LedgerError):
    """A published tile tree, a witness cosignature or a witness's state is refused."""


class VerificationError(LedgerError):
    """The ledger or an export does not verify; carries the first bad sequence number."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


class MismatchError(ReserveError):
    """Two values that must be equal are not."""

    def __init__(self, what: str, expected: object, found: object) -> None:
        super().__init__(f"{what} mismatch: expected {expected!r}, found {found!r}")
        self.what = what
        self.expected = expected
        self.found = found


class PolicyError(ReserveError):
    """A policy file is invalid or a policy rule refuses an action."""


class LicenceError(PolicyError):
    """A licence change is unsigned, forged, out of order or from an untrusted regulator."""


class WorkflowError(ReserveError):
    """An illegal state transition or a refused workflow action."""


class FreezeMirrorFailed(WorkflowError):
    """The ledger recorded a freeze or unfreeze but the chain did not follow (yet).

    The ledger's entries stand (`entries`); re-apply with the service's `mirror_freeze`.
    """

    def __init__(self, message: str, entries: list[object] | None = None) -> None:
        super().__init__(message)
        self.entries = entries or []


class ApprovalError(WorkflowError):
    """An approval or rejection signature is forged, replayed or not allowed."""


class WalletError(ReserveError):
    """Root of chain adapter errors."""


class PSBTError(WalletError):
    """A PSBT is malformed, for another vault or network, or differs from what was approved."""


class NodeUnavailable(WalletError):
    """A node (bitcoind, EVM RPC) cannot be reached; the flow can resume when it is back."""


class NodeRPCError(WalletError):
    """A node answered a JSON-RPC call with an error; carries the node's code and message."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: node error {code}: {message}")
        self.method = method
        self.code = code


class SignerError(WalletError):
    """The custodian's signer refuses a signing package; the message says why."""


class EVMError(WalletError):
    """An EVM operation was refused (bad signature, guard violation, stale nonce...)."""


class ContractReverted(EVMError):
    """A contract call reverted; `name` and `arguments` are decoded from the contract's ABI."""

    def __init__(self, message: str, name: str = "", arguments: dict[str, object] | None = None,
                 contract: str = "") -> None:
        super().__init__(message)
        self.name = name
        self.arguments = arguments or {}
        self.contract = contract


class ReconcileError(ReserveError):
    """A reconciliation report cannot be produced or does not verify."""


class ReportRejected(ReconcileError):
    """A reconciliation report does not hold; `reason` is a short code naming why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class StatementError(ReserveError):
    """A public-sector wallet, attribution or statement is refused or does not verify."""


class StatementRejected(StatementError):
    """A statement does not hold; `reason` is a short code naming why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class MiningError(ReserveError):
    """An allocation, site or energy reading is refused (docs/mining.md)."""


class MiningNotFound(MiningError):
    """The site a reading or request names is not registered."""


class AuthError(ReserveError):
    """Authentication or authorisation failed."""


class AccountError(ReserveError):
    """A user or API token cannot be created, changed or found as asked."""


class AccountNotFound(AccountError):
    """No such user or token."""


class AccountConflict(AccountError):
    """The user or token already exists, or the change contradicts the current state."""

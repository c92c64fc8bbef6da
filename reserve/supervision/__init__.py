"""The regulator's seat: alerts derived from the ledger, acknowledgements, attestations and
the signing keys of the regulator and supervisors (docs/supervision.md). Import the
submodule you use; importing this package loads nothing."""

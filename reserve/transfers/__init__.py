"""The transfer workflow: proposals, signed approvals, the state machine, the projection
rebuilt from the ledger, the service that records every step, and the seam (`chain`) where
the Bitcoin and EVM layers take over at `releasable`.
"""

"""Transfer proposals, custodians' signed approvals and the proposal state machine.

These are the records both the custody policy (`reserve.policy`, which decides whether a
proposal may proceed) and the transfer workflow (`reserve.transfers`, which records every
step) are about, so they sit below both: pure values and rules, no I/O, importing nothing
of the reserve but its errors.
"""

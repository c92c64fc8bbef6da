"""The transfer workflow: the projection rebuilt from the ledger, the service that records
every step, and the seam (`chain`) where the Bitcoin and EVM layers take over at
`releasable`. The proposals, approvals and state machine it works on live below it, in
`reserve.proposals`, where the custody policy can use them too.
"""

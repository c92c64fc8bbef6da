"""The custodian's offline signing tool (`reserve-sign`): keys never leave the custodian."""

"""The ledger as a log anyone can mirror: C2SP tlog-tiles files and witness cosignatures
(docs/transparency-log.md)."""

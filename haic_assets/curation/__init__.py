"""Tools a curator runs over the ledger: what-if thresholds."""

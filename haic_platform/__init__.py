"""The machinery the Dagster stages run on: the stage factory, the ledger commit, locks, retries,
the run launcher and executors, settings, what-if and re-curation. No asset is defined here."""

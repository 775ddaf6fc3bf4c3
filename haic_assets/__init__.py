"""Dagster assets, jobs, sensors and schedules of the HAIC curation platform."""

import warnings

from dagster import BetaWarning

# Backfills run several source shards per run through `backfill_policy`, which Dagster 1.13 marks
# as beta. We use it on purpose, on a pinned Dagster, and tests/test_partition_runs.py covers it;
# the warning would otherwise greet every code-location load.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` of function", category=BetaWarning)

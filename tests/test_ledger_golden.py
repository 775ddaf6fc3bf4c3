"""The stage redesign changed no decision: the main job's ledger on the bundled sample, and on
every clip of ../shared/media (tests/test_curation_real_media.py), equals the ledger recorded
before it (tests/golden/, written by tests/golden/record_ledger.py) item by item: same items,
verdicts, reasons, measured values and thresholds."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from haic_assets.definitions import build_definitions
from tests.golden.record_ledger import GOLDEN_DIR, decisions_of
from tests.helpers import dagster_instance, land_sample, ledger, run_partition, without_llm

pytestmark = pytest.mark.slow


def assert_same_decisions(book: pd.DataFrame, name: str) -> None:
    expected = pd.read_csv(GOLDEN_DIR / f"ledger_{name}.csv")
    got = pd.read_csv(io.StringIO(decisions_of(book).to_csv(index=False)))  # the same CSV round trip
    assert got[["stage", "item_id"]].values.tolist() == expected[["stage", "item_id"]].values.tolist()
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9)


def test_the_sample_ledger_is_the_one_recorded_before_the_redesign(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    without_llm(monkeypatch)
    partition = land_sample(home)
    with dagster_instance(home) as instance:
        assert run_partition(build_definitions(), instance, partition).success
    assert_same_decisions(ledger(home), "sample")

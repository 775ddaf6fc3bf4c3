"""The `haic` commands as a person at the shell meets them: a mistake gets one clear line and
changes nothing; the commands that change state say what they changed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT, SAMPLE_CSV, wait_until
from tests.timing import limit


def haic(home, *args, timeout=120):
    env = {**os.environ, "HAIC_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "haic_cli", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=limit(timeout))


def test_add_shard_of_a_missing_file_says_so_and_writes_nothing(tmp_path):
    done = haic(tmp_path / "home", "add-shard", str(tmp_path / "nope.csv"), "--source", "webvid")
    assert (done.returncode, done.stderr.strip()) == (2, f"haic add-shard: no such file: {tmp_path / 'nope.csv'}")
    assert not (tmp_path / "home" / "landing").exists()


def test_add_shard_refuses_a_source_name_the_runbook_forbids(tmp_path):
    done = haic(tmp_path / "home", "add-shard", str(SAMPLE_CSV), "--source", "Web Vid")
    assert done.returncode == 2
    assert done.stderr.strip() == ("haic add-shard: source folder 'Web Vid': use lower-case letters, digits, '-' "
                                   "and single '_'")
    assert not (tmp_path / "home" / "landing").exists()


def test_add_shard_installs_a_source_yaml_and_says_what_it_wrote(tmp_path):
    source_yaml = tmp_path / "source.yaml"
    source_yaml.write_text("kind: webvid\n")
    done = haic(tmp_path / "home", "add-shard", str(SAMPLE_CSV), "--source", "webvid_new", "--source-yaml",
                str(source_yaml))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("landing/webvid_new/results_sample.csv written with landing/webvid_new/source.yaml;")
    assert (tmp_path / "home" / "landing" / "webvid_new" / "source.yaml").read_text() == "kind: webvid\n"


def test_funnel_of_an_unknown_source_says_which_sources_have_rows(tmp_path):
    home = tmp_path / "home"
    from tests.helpers import land_sample

    # The sample's two rows the metadata filter drops (176x144; no verb): ledger rows, and no media to decode.
    rows = SAMPLE_CSV.read_text().splitlines()
    shard = tmp_path / "metadata_drops.csv"
    shard.write_text("\n".join([rows[0]] + [r for r in rows if r.startswith(("1003,", "1004,"))]) + "\n")
    land_sample(home, csv=shard)
    assert haic(home, "run", "webvid_sample__metadata_drops.csv", timeout=600).returncode == 0
    done = haic(home, "funnel", "--source", "nope")
    assert (done.returncode, done.stdout.strip()) == (1, "No ledger rows for source 'nope'; sources with rows: "
                                                         "webvid_sample.")


def wait_for_server(port: int, timeout_s: float = 120.0) -> None:
    import urllib.request

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=limit(2)):
                return True
        except OSError:
            return False

    wait_until(answers, timeout_s, f"the UI to answer on port {port}", interval_s=0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_second_ui_on_one_home_is_refused_and_ctrl_c_stops_the_first_cleanly(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "HAIC_HOME": str(home)}
    port = free_port()
    first = subprocess.Popen([sys.executable, "-m", "haic_cli", "ui", "--port", str(port)],
                             env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        wait_until(lambda: (home / "dagster" / ".haic-ui.lock").exists(), 60, "the first UI's lock", interval_s=0.2)
        second = haic(home, "ui", "--port", str(free_port()))
        assert second.returncode == 1
        assert "another `haic ui` is already running on" in second.stderr
        wait_for_server(port)  # a person presses Ctrl-C on a UI that is up
        os.killpg(first.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground process group
        stdout, stderr = first.communicate(timeout=limit(90))
        assert "Traceback" not in stderr
        assert first.returncode == 0
        # The start greets with no warnings of ours: no `dagster dev` supersession notice, no
        # "dagster.yaml will not be used", and no DEBUG engine events.
        assert "superseded" not in stderr and "will not be used" not in stderr
        assert " - WARNING - " not in stderr and " - DEBUG - " not in stderr
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)


def test_run_of_a_mistyped_partition_suggests_the_closest_and_registers_nothing(tmp_path):
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    home = tmp_path / "home"
    landed = haic(home, "add-shard", str(SAMPLE_CSV), "--source", "webvid_sample")
    assert landed.returncode == 0, landed.stderr
    done = haic(home, "run", "webvid_sample__nope.csv")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip() == (
        "haic run: no partition 'webvid_sample__nope.csv' and no landing file landing/webvid_sample/nope.csv; "
        "did you mean: webvid_sample__results_sample.csv? Nothing was registered.")
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster"))) as instance:
        assert instance.get_dynamic_partitions("source_shards") == []
        assert instance.get_runs() == []
    assert not (home / "tables" / "ledger").exists()


def test_run_of_a_key_with_no_shard_of_its_source_lists_none(tmp_path):
    done = haic(tmp_path / "home", "run", "webvid__nope.csv")
    assert done.returncode == 2
    assert done.stderr.strip() == ("haic run: no partition 'webvid__nope.csv' and no landing file "
                                   "landing/webvid/nope.csv; no shard has landed yet. Nothing was registered.")

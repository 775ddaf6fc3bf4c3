"""The production profile end to end: a real PostgreSQL holds the runs, an S3 server (moto) holds
the landing zone, the tables and the ledger; the sensor finds a shard in S3 and its run curates it.

Starts PostgreSQL from Debian's binaries (/usr/lib/postgresql/<version>/bin, installed by
scripts/test.sh) on a free port of 127.0.0.1, as the `postgres` user when the tests run as root,
and moto's S3 server in a thread.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import boto3
import psycopg2
import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context
from dagster._core.instance.ref import InstanceRef

from haic_resources.storage.home import prepare_dagster_home
from haic_resources.storage.warehouse import in_memory_warehouse
from tests.helpers import SAMPLE_CSV, SAMPLE_MEDIA, SAMPLE_PARTITION
from tests.timing import limit

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

SPINE = [AssetKey("raw_metadata"), AssetKey("metadata_filtered")]
BUCKET = "haic-test"
PG_USER, PG_PASSWORD, PG_DB = "haic", "haic-test-password", "haic"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                    "(`apt-get install postgresql`; scripts/test.sh does)")
    return Path(found[-1]).parent


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL server: (host, port), with user PG_USER and database PG_DB."""
    bindir = postgres_bin()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="haic-pg-"))  # not under pytest's tmp: postgres must reach it
    if as_postgres:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    (root / "pwfile").write_text(PG_PASSWORD + "\n")
    if as_postgres:
        shutil.chown(root / "pwfile", "postgres")

    def pg(tool: str, *args: str) -> None:
        subprocess.run([*as_postgres, str(bindir / tool), *args], check=True, capture_output=True, timeout=limit(60))

    try:
        pg("initdb", "-D", str(data), "-U", PG_USER, f"--pwfile={root / 'pwfile'}",
           "--auth=scram-sha-256", "-E", "UTF8", "--no-locale")
        pg("pg_ctl", "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "30", "start",
           "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off")
        conn = psycopg2.connect(host="127.0.0.1", port=port, user=PG_USER, password=PG_PASSWORD, dbname="postgres")
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        conn.cursor().execute(f"CREATE DATABASE {PG_DB}")
        conn.close()
        yield "127.0.0.1", port
    finally:
        if (data / "postmaster.pid").exists():
            pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def s3_server(monkeypatch, tmp_path):
    """moto's S3 server on 127.0.0.1 with an empty bucket; returns its endpoint URL."""
    from moto.server import ThreadedMotoServer

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def production_env(postgres, s3_server, tmp_path, monkeypatch):
    """HAIC_* settings of the production profile, pointing at the two servers."""
    host, port = postgres
    home = tmp_path / "home"
    for name, value in {
        "HAIC_HOME": str(home), "HAIC_PROFILE": "production",
        "HAIC_PG_USER": PG_USER, "HAIC_PG_PASSWORD": PG_PASSWORD, "HAIC_PG_HOST": host,
        "HAIC_PG_PORT": str(port), "HAIC_PG_DB": PG_DB,
        "HAIC_S3_ENDPOINT_URL": s3_server,
        "HAIC_TABLES_URI": f"s3://{BUCKET}/tables", "HAIC_LANDING_URI": f"s3://{BUCKET}/landing",
        "HAIC_MEDIA_URI": f"s3://{BUCKET}/media",
    }.items():
        monkeypatch.setenv(name, value)
    return home


def bucket_keys(endpoint: str, prefix: str) -> list[str]:
    listing = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_a_shard_landed_in_s3_is_curated_with_runs_in_postgres_and_tables_in_s3(
        production_env, postgres, s3_server):
    from dagster_postgres.run_storage import PostgresRunStorage

    from haic_assets.definitions import build_definitions  # reads HAIC_* now, after the env is set
    
    home = production_env
    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.upload_file(str(SAMPLE_CSV), BUCKET, f"landing/webvid_sample/{SAMPLE_CSV.name}")
    s3.put_object(Bucket=BUCKET, Key=f"landing/webvid_sample/{SAMPLE_CSV.name}.complete", Body=b"")
    s3.put_object(Bucket=BUCKET, Key="landing/webvid_sample/source.yaml",
                  Body=f"kind: webvid\nmedia_root: {SAMPLE_MEDIA}\n".encode())

    defs = build_definitions()
    dagster_home = prepare_dagster_home()
    assert (dagster_home / "dagster.yaml").read_text().startswith("# Production profile")
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage), type(instance.run_storage)

        with build_sensor_context(instance=instance, resources=defs.resources) as context:
            tick = defs.resolve_sensor_def("landing_sensor")(context)
        assert [r.partition_key for r in tick.run_requests] == [SAMPLE_PARTITION]
        for request in tick.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))

        request = tick.run_requests[0]
        result = defs.resolve_job_def("curate_source").execute_in_process(
            partition_key=request.partition_key, tags=request.tags, instance=instance,
            asset_selection=SPINE, raise_on_error=False)
        assert result.success

    host, port = postgres
    with psycopg2.connect(host=host, port=port, user=PG_USER, password=PG_PASSWORD, dbname=PG_DB) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT run_id, pipeline_name, status FROM runs")
        assert cursor.fetchall() == [(result.run_id, "curate_source", "SUCCESS")]
        cursor.execute("SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'source_shards'")
        assert cursor.fetchall() == [(SAMPLE_PARTITION,)]
    conn.close()

    assert bucket_keys(s3_server, "tables/") == sorted(
        f"tables/{table}/{SAMPLE_PARTITION}.parquet"
        for table in ("raw_metadata", "metadata_filtered", "ledger/raw_metadata", "ledger/metadata_filtered",
                      "ledger_counts/raw_metadata", "ledger_counts/metadata_filtered"))
    assert not (home / "tables").exists(), "tables were written under HAIC_HOME instead of S3"

    storage = build_definitions().resources["storage"]
    funnel = in_memory_warehouse(storage.tables().local_root()).execute(
        "SELECT stage, item_kind, kept, dropped, error FROM funnel WHERE source = 'webvid_sample' "
        "ORDER BY stage, item_kind").fetchall()
    assert funnel == [("metadata_filtered", "video", 2, 2, 0), ("raw_metadata", "metadata_row", 0, 2, 0),
                      ("raw_metadata", "video", 4, 2, 0)]

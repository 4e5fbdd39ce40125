"""The ``g2bhub`` command as an operator runs it: a real subprocess against a throw-away SQLite file."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from hub.bootstrap import bootstrap
from hub.config import Settings
from hub.organisations import events
from hub.spine.messages import Envelope
from tests.support.environment import ROOT, free_port
from tests.support.waiting import eventually

KEY = re.compile(r"g2b_[0-9a-f]+_[A-Za-z0-9_-]+")

Run = Callable[..., subprocess.CompletedProcess[str]]


def base_env(db_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("G2BHUB_")}
    env.update(
        {
            "G2BHUB_DATABASE__URL": f"sqlite:///{db_path}",
            "G2BHUB_LOGGING__JSON": "false",
            "PYTHONPATH": str(ROOT),
            **extra,
        }
    )
    return env


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hub.db"


@pytest.fixture
def run(tmp_path: Path, db_path: Path) -> Run:
    def run(*args: str, ok: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "hub.cli.main", *args],
            cwd=tmp_path,
            env=base_env(db_path, **env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok and proc.returncode != 0:
            pytest.fail(f"g2bhub {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


@pytest.fixture
def migrated(run: Run) -> Run:
    run("db", "upgrade")
    return run


def test_version(run: Run) -> None:
    assert re.fullmatch(r"g2bhub \S+\n", run("--version").stdout)


def test_commands_on_an_empty_database_say_to_migrate(run: Run) -> None:
    proc = run("orgs", "list", ok=False)
    assert proc.returncode == 1
    assert "g2bhub db upgrade" in proc.stderr


def test_db_upgrade_then_current(run: Run) -> None:
    assert "none" in run("db", "current").stdout
    upgraded = run("db", "upgrade").stdout
    assert re.search(r"at revision \w+ \(head\)", upgraded)
    assert "(head)" in run("db", "current").stdout
    assert "(head)" in run("db", "upgrade").stdout  # again: nothing to do, still fine


def test_organisation_and_key_lifecycle(migrated: Run) -> None:
    run = migrated
    created = run("orgs", "create", "Seoul Metropolitan Government", "--kind", "institution")
    org_id = re.search(r"organisation (\S+) \(institution\)", created.stdout).group(1)  # type: ignore[union-attr]
    first_key = KEY.search(created.stdout).group(0)  # type: ignore[union-attr]
    assert "will not be shown again" in created.stderr

    supplier = json.loads(run("orgs", "create", "Hanbit Construction", "--kind", "supplier", "--json").stdout)
    assert supplier["kind"] == "supplier" and KEY.fullmatch(supplier["api_key"])

    issued = json.loads(run("orgs", "issue-key", org_id, "--label", "ci", "--json").stdout)
    assert issued["api_key"] != first_key and issued["org_id"] == org_id
    listed = {o["id"]: o for o in json.loads(run("orgs", "list", "--json").stdout)}
    assert set(listed) == {org_id, supplier["id"]}
    assert len(listed[org_id]["active_keys"]) == 2

    run("orgs", "revoke-key", org_id, issued["key_id"])
    listed = {o["id"]: o for o in json.loads(run("orgs", "list", "--json").stdout)}
    assert listed[org_id]["active_keys"] == [first_key.split("_")[1]]

    table = run("orgs", "list", "--kind", "institution").stdout
    assert org_id in table and "Seoul Metropolitan Government" in table and supplier["id"] not in table
    assert json.loads(run("orgs", "list", "--kind", "agency", "--json").stdout) == []


def test_revoke_key_takes_a_pasted_key_and_never_echoes_its_secret(migrated: Run) -> None:
    run = migrated
    org = json.loads(run("orgs", "create", "Incheon Airport", "--kind", "agency", "--json").stdout)
    issued = json.loads(run("orgs", "issue-key", org["id"], "--json").stdout)
    secret = issued["api_key"].split("_", 2)[2]
    revoked = run("orgs", "revoke-key", org["id"], issued["api_key"], "--json")
    assert json.loads(revoked.stdout) == {"org_id": org["id"], "key_id": issued["key_id"], "revoked": True}
    assert secret not in revoked.stdout + revoked.stderr
    listed = {o["id"]: o for o in json.loads(run("orgs", "list", "--json").stdout)}
    assert listed[org["id"]]["active_keys"] == [org["key_id"]]

    unknown = f"g2b_{'0' * 16}_{'S' * 43}"
    refused = run("orgs", "revoke-key", org["id"], unknown, ok=False)
    assert refused.returncode == 1 and "0" * 16 in refused.stderr and "S" * 8 not in refused.stderr


def test_disable_and_enable_an_organisation(migrated: Run) -> None:
    run = migrated
    org = json.loads(run("orgs", "create", "Daegu City", "--kind", "institution", "--json").stdout)
    disabled = json.loads(run("orgs", "disable", org["id"], "--reason", "left the programme", "--json").stdout)
    assert disabled["enabled"] is False and disabled["disabled_at"] is not None
    assert "disabled" in run("orgs", "list").stdout
    assert json.loads(run("orgs", "list", "--json").stdout)[0]["enabled"] is False
    enabled = run("orgs", "enable", org["id"])
    assert f"organisation {org['id']} enabled" in enabled.stdout
    assert json.loads(run("orgs", "list", "--json").stdout)[0]["enabled"] is True
    missing = run("orgs", "disable", "no-such-org", ok=False)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_refusals_exit_non_zero_with_a_message(migrated: Run) -> None:
    run = migrated
    missing = run("orgs", "revoke-key", "no-such-org", "abc", ok=False)
    assert missing.returncode == 1 and "not found" in missing.stderr
    blank = run("orgs", "create", "   ", "--kind", "agency", ok=False)
    assert blank.returncode == 1 and "name" in blank.stderr
    bad_kind = run("orgs", "create", "X", "--kind", "ministry", ok=False)
    assert bad_kind.returncode == 2
    org_id = json.loads(run("orgs", "create", "Agency", "--kind", "agency", "--json").stdout)["id"]
    scope = run("orgs", "issue-key", org_id, "--scope", "dlq:admin", ok=False)
    assert scope.returncode == 1 and "scopes" in scope.stderr


def test_dead_letters_list_and_replay(migrated: Run, db_path: Path) -> None:
    run = migrated
    assert "no dead letters" in run("dlq", "list").stdout
    assert json.loads(run("dlq", "list", "--json").stdout) == []
    assert "replayed 0" in run("dlq", "replay", "--all").stdout
    assert run("dlq", "replay", ok=False).returncode == 1  # neither ids nor --all

    # file one dead letter the way a worker does after the delivery limit
    hub = bootstrap(Settings(database={"url": f"sqlite:///{db_path}"}))  # type: ignore[arg-type]
    envelope = Envelope.wrap(events.OrganisationCreated(org_id="o-1", name="Busan Port", kind="agency"))
    try:
        with hub.uow() as uow:
            uow.dead_letters.add("audit", envelope, "RuntimeError: disk full\nTraceback ...", 5)
            uow.commit()
    finally:
        hub.close()

    table = run("dlq", "list").stdout
    assert envelope.message_id in table and "OrganisationCreated" in table and "audit" in table
    assert "RuntimeError: disk full Traceback" in table  # one line per dead letter
    [letter] = json.loads(run("dlq", "list", "--group", "audit", "--json").stdout)
    assert letter["deliveries"] == 5 and letter["replayed_at"] is None
    assert json.loads(run("dlq", "list", "--group", "other", "--json").stdout) == []

    assert json.loads(run("dlq", "replay", "--group", "other", "--all", "--json").stdout) == {
        "replayed": [], "not_replayed": []}
    assert f"replayed 1 dead letter(s): {letter['id']}" in run("dlq", "replay", str(letter["id"])).stdout
    assert "no dead letters" in run("dlq", "list").stdout
    [replayed] = json.loads(run("dlq", "list", "--all", "--json").stdout)
    assert replayed["replayed_at"] is not None
    assert json.loads(run("dlq", "replay", str(letter["id"]), "--json").stdout) == {
        "replayed": [], "not_replayed": [letter["id"]]}
    again = run("dlq", "replay", str(letter["id"]))
    assert "replayed 0" in again.stdout and "not replayed" in again.stderr


def test_config_show_redacts_secrets(run: Run, tmp_path: Path) -> None:
    extra = tmp_path / "site.yaml"
    fernet_key = "Wh1ecsGSA8xFQgxX2Y4ljG5nZ7Ki0-5PpZL8bqAmnqE="
    extra.write_text(yaml.safe_dump({"connectors": {"nts": {"key": "nts-k3y-value", "key_env": "NTS_KEY"}},
                                     "syndication": {"secret_keys": [fernet_key]}}))
    proc = run(
        "config",
        "show",
        G2BHUB_CONFIG=str(extra),
        G2BHUB_DATABASE__URL="postgresql://hub:s3cr3t-pw@db.example:5432/hub",
        G2BHUB_BROKER__URL="amqp://mq:an0ther-pw@mq.example:5672/",
        G2BHUB_BROKER__KIND="rabbitmq",
    )
    out = proc.stdout + proc.stderr
    for secret in ("s3cr3t-pw", "an0ther-pw", "nts-k3y-value", fernet_key):
        assert secret not in out
    shown = yaml.safe_load(proc.stdout)
    assert shown["database"]["url"] == "postgresql://hub:***@db.example:5432/hub"
    assert shown["broker"]["url"] == "amqp://mq:***@mq.example:5672/"
    assert shown["broker"]["kind"] == "rabbitmq"
    nts = shown["connectors"]["nts"]
    assert (nts["key"], nts["key_env"]) == ("***", "NTS_KEY")  # where a key lives is no secret
    assert nts["path"] == "/status"  # the shipped entry, typed, with the deployment's key merged in
    assert shown["syndication"]["secret_keys"] == ["***"]
    assert shown["syndication"]["allow_private_targets"] is False  # a flag, not a secret
    assert shown["suppliers"]["applicable_systems"]["lei"] == ["gleif"]
    assert shown["logging"]["json"] is False


def audit_rows(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute("SELECT count(*) FROM audit_log").fetchone()[0])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_worker_handles_the_outbox_and_stops_on_signal(
    migrated: Run, tmp_path: Path, db_path: Path, sig: signal.Signals
) -> None:
    migrated("orgs", "create", "Incheon Airport", "--kind", "institution")  # two events in the outbox
    assert audit_rows(db_path) == 0  # nothing relays them yet
    port = free_port()
    worker = subprocess.Popen(
        [sys.executable, "-m", "hub.cli.main", "worker", "--concurrency", "2", "--metrics-port", str(port)],
        cwd=tmp_path,
        env=base_env(db_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: audit_rows(db_path) == 2 or worker.poll() is not None, timeout=60, what="audit rows")
        assert worker.poll() is None, worker.communicate()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            exposed = response.read().decode()
        assert 'g2bhub_events_handled_total{group="audit",outcome="applied"} 2.0' in exposed
        worker.send_signal(sig)
        _out, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert audit_rows(db_path) == 2
    assert "worker started" in err and "audit" in err
    assert f"worker stopping on {sig.name}" in err and "worker stopped" in err


def readyz(port: int) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_serve_runs_api_and_embedded_worker_until_sigterm(run: Run, tmp_path: Path, db_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "hub.cli.main", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=base_env(db_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # SQLite: serve migrates by itself, so the API becomes ready on an empty file
        eventually(lambda: readyz(port) == 200 or server.poll() is not None, timeout=60, what="/readyz")
        assert server.poll() is None, server.communicate()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.headers.get("Server") is None  # no uvicorn banner
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        run("orgs", "create", "Daejeon City", "--kind", "institution")
        # the embedded worker relays the CLI's outbox rows and the audit consumer records them
        eventually(lambda: audit_rows(db_path) == 2, timeout=60, what="audit rows")
        server.send_signal(signal.SIGTERM)
        _out, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, err
    assert "embedded worker started" in err


def test_serve_refuses_several_processes_with_the_in_process_broker(run: Run) -> None:
    proc = run("serve", "--workers", "2", ok=False)
    assert proc.returncode == 1 and "rabbitmq" in proc.stderr


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_many_machines_layout_api_and_worker_as_separate_processes(
    tmp_path: Path, postgres_url: str, amqp_url: str
) -> None:
    """PostgreSQL + RabbitMQ: `db upgrade` once, `serve --no-worker` for the API, `worker` on its own."""
    import uuid

    from sqlalchemy import create_engine, text

    from hub.config import BrokerSettings
    from hub.registry import EVENT_HANDLERS
    from hub.spine.bus import consumer_groups
    from hub.spine.db import normalise_url

    namespace = f"t{uuid.uuid4().hex[:10]}"
    env = base_env(
        tmp_path / "unused.db",
        G2BHUB_DATABASE__URL=postgres_url,
        G2BHUB_BROKER__KIND="rabbitmq",
        G2BHUB_BROKER__URL=amqp_url,
        G2BHUB_BROKER__NAMESPACE=namespace,
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "hub.cli.main", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return proc

    def spawn(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli.main", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    engine = create_engine(normalise_url(postgres_url))

    def audit_count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one())

    port = free_port()
    processes: list[subprocess.Popen[str]] = []
    try:
        cli("db", "upgrade")
        processes.append(api := spawn("serve", "--no-worker", "--port", str(port)))
        eventually(lambda: readyz(port) == 200 or api.poll() is not None, timeout=60, what="/readyz")
        assert api.poll() is None, api.communicate()
        cli("orgs", "create", "Gwangju Metro", "--kind", "institution")
        assert audit_count() == 0  # the API process does not relay
        processes.append(worker := spawn("worker"))
        eventually(lambda: audit_count() == 2 or worker.poll() is not None, timeout=60, what="audit rows")
        assert worker.poll() is None, worker.communicate()
        for proc in processes:
            proc.send_signal(signal.SIGTERM)
        for proc in processes:
            _out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        engine.dispose()
        try:
            from hub.spine.brokers.rabbitmq import delete_topology

            delete_topology(
                BrokerSettings(url=amqp_url, namespace=namespace),  # type: ignore[call-arg]
                groups=list(consumer_groups(EVENT_HANDLERS)),
            )
        except Exception:
            pass

"""Collect → store → history, through the real `scan` command against a real private dockerd."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from posture.choices import ScanState
from posture.jobs.ingest import load_snapshot, verify_chain
from posture.models import DockerHost, Evidence, EvidenceSet, ScanRun
from tests.support.commands import run_command as run

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]

CANARY = "canary-9f3b2c-never-store-me"



def all_database_text() -> str:
    """Every row of every posture table as text: where a leaked secret would be."""
    chunks = []
    with connection.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for (table,) in cur.fetchall():
            cur.execute(f'SELECT t::text FROM "{table}" t')
            chunks += [row[0] for row in cur.fetchall()]
    return "\n".join(chunks)


@pytest.fixture
def host(dockerd):
    code, out, _ = run("addhost", "d1", dockerd.url)
    assert code == 0 and "registered host d1" in out
    return DockerHost.objects.get(name="d1")


def test_it_collects_a_real_host_and_prints_json(host, make_container):
    make_container("web", env=["DB_PASSWORD=" + CANARY, "PATH=/bin"], user="65534", read_only=True)
    make_container("stopped", start=False)
    code, out, _ = run("scan", "d1", "--json")
    doc = json.loads(out)
    assert code == 0, doc
    assert doc["state"] == "succeeded" and doc["host"] == "d1"
    assert doc["evidence"]["containers"] == 2 and doc["evidence"]["running"] == 1
    assert doc["evidence"]["images"] >= 1
    assert doc["results"] == [] or isinstance(doc["results"], list)
    snap = load_snapshot(ScanRun.objects.get(pk=doc["scan"]))
    web = next(c for c in snap["containers"] if c["name"] == "web")
    assert web["inspect"]["Config"]["User"] == "65534"
    assert web["inspect"]["HostConfig"]["ReadonlyRootfs"] is True
    assert {"name": "DB_PASSWORD", "looks_secret": True} in web["inspect"]["Config"]["Env"]


def test_it_never_stores_a_secret_env_value(host, make_container, dockerd):
    make_container("leaky", env=[f"API_TOKEN={CANARY}", f"NOTE={CANARY}"], labels={"owner": "team"})
    code, out, err = run("scan", "d1")
    assert code == 0, err
    text = all_database_text()
    assert "API_TOKEN" in text  # the name is kept...
    assert CANARY not in text  # ...the value is nowhere


def test_it_adds_no_payload_when_an_unchanged_host_is_rescanned(host, make_container):
    make_container("steady")
    assert run("scan", "d1")[0] == 0
    payloads, sets = Evidence.objects.count(), EvidenceSet.objects.count()
    assert run("scan", "d1")[0] == 0
    assert run("scan", "d1")[0] == 0
    assert (Evidence.objects.count(), EvidenceSet.objects.count()) == (payloads, sets)
    first, second, third = ScanRun.objects.filter(host=host).order_by("id")
    assert first.evidence_set_id == second.evidence_set_id == third.evidence_set_id
    assert second.previous_id == first.pk and third.previous_id == second.pk
    assert verify_chain(host.pk) == []


def test_it_keeps_the_milestones_of_a_real_scans_log(host, make_container):
    for name in ("m1", "m2", "m3"):
        make_container(name)
    assert run("scan", "d1")[0] == 0
    scan = ScanRun.objects.get(host=host)
    messages = [line.split(" ", 1)[1] for line in scan.log]
    assert messages[0].startswith("attempt 1 on ") and "connecting to" in messages[0]
    assert "inspecting containers 3/3" in messages and messages[-1].startswith("collected ")
    assert not [m for m in messages if m.startswith("inspecting containers") and not m.endswith("3/3")]


def test_it_detects_tampered_evidence(host, make_container):
    make_container("victim")
    assert run("scan", "d1")[0] == 0
    with connection.cursor() as cur:
        cur.execute("""UPDATE posture_evidence SET payload = jsonb_set(payload, '{name}', '"forged"') WHERE kind = 'container'""")
    problems = verify_chain(host.pk)
    assert problems and "does not match its digest" in problems[0]
    code, _, err = run("verify_chain", "d1")
    assert code == 1 and "problem" in err


def test_it_keeps_the_previous_posture_when_a_scan_fails(host, make_container):
    make_container("before")
    assert run("scan", "d1")[0] == 0
    good = ScanRun.objects.get(host=host)
    payloads = Evidence.objects.count()
    host.url = "unix:///tmp/posture-no-such.sock"
    host.save()
    code, out, err = run("scan", "d1")
    assert code == 1
    assert err.count("\n") == 1 and "failed" in err and "posture-no-such.sock" in err
    failed = ScanRun.objects.filter(host=host).latest("id")
    assert failed.state == ScanState.FAILED and failed.evidence_set_id is None
    current = ScanRun.objects.filter(host=host, state=ScanState.SUCCEEDED).latest("finished_at")
    assert current.pk == good.pk
    assert Evidence.objects.count() == payloads


@pytest.mark.parametrize(
    "url, reason",
    [("tcp://127.0.0.1:1", "connection refused"), ("unix:///tmp/posture-missing/docker.sock", "no such")],
)
def test_it_gives_a_one_line_reason_for_an_unreachable_host(url, reason):
    run("addhost", "gone", url)
    code, out, err = run("scan", "gone")
    assert code == 1
    assert reason in err.lower() and err.strip().count("\n") == 0


def test_it_says_when_the_socket_is_not_docker(tmp_path):
    import http.server
    import socketserver
    import threading

    path = str(tmp_path / "web.sock")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"not here")

        def log_message(self, *a):
            pass

    class UnixHTTP(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

        def get_request(self):
            request, _ = super().get_request()
            return request, ("local", 0)

    server = UnixHTTP(path, Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        run("addhost", "web", f"unix://{path}")
        code, _, err = run("scan", "web")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1 and "not a docker" in err.lower(), err


def test_it_scans_over_tcp_with_tls_client_certificates(dockerd_tls, tmp_path):
    bundle = dockerd_tls.bundle
    files = {}
    for role, text in (("ca", bundle.ca.cert_pem), ("cert", bundle.client.cert_pem), ("key", bundle.client.key_pem)):
        files[role] = tmp_path / f"{role}.pem"
        files[role].write_text(text)
    code, out, _ = run("addhost", "tls", dockerd_tls.url, "--tls-ca", str(files["ca"]),
                       "--tls-cert", str(files["cert"]), "--tls-key", str(files["key"]))
    assert code == 0 and "TLS" in out
    code, out, err = run("scan", "tls")
    assert code == 0, err
    # A client certificate that expired after registration: a clear TLS reason at scan time.
    host = DockerHost.objects.get(name="tls")
    host.tls_cert, host.tls_key = bundle.expired_client.cert_pem, bundle.expired_client.key_pem
    host.save()
    code, _, err = run("scan", "tls")
    assert code == 1 and "expired" in err and err.strip().count("\n") == 0


def test_it_refuses_to_register_mismatched_or_expired_tls_files(dockerd_tls, tmp_path):
    bundle = dockerd_tls.bundle
    paths = {}
    for role, text in (("ca", bundle.ca.cert_pem), ("cert", bundle.client.cert_pem),
                       ("otherkey", bundle.foreign_client.key_pem), ("old", bundle.expired_client.cert_pem),
                       ("oldkey", bundle.expired_client.key_pem)):
        paths[role] = tmp_path / f"{role}.pem"
        paths[role].write_text(text)
    with pytest.raises(CommandError, match="do not belong together"):
        call_command("addhost", "m", dockerd_tls.url, "--tls-ca", str(paths["ca"]), "--tls-cert", str(paths["cert"]),
                     "--tls-key", str(paths["otherkey"]))
    with pytest.raises(CommandError, match="expired"):
        call_command("addhost", "m", dockerd_tls.url, "--tls-ca", str(paths["ca"]), "--tls-cert", str(paths["old"]),
                     "--tls-key", str(paths["oldkey"]))
    assert not DockerHost.objects.filter(name="m").exists()


def test_it_collects_host_files_with_the_probe(dockerd, settings):
    settings.POSTURE_PROBE_IMAGE = dockerd.base_image
    run("addhost", "probed", dockerd.url, "--probe")
    code, out, err = run("scan", "probed", "--json")
    assert code == 0, err
    scan = ScanRun.objects.get(pk=json.loads(out)["scan"])
    host = load_snapshot(scan)["host"]
    sock = dockerd.url.removeprefix("unix://")
    assert host["files"][sock]["type"] == "socket"
    assert host["files"]["/etc/docker"]["exists"] in (True, False)
    assert host["docker_root_dir"]
    client = dockerd.client()
    try:
        assert not client.api.containers(all=True, filters={"label": "posture.probe=1"})
    finally:
        client.close()


def test_it_refuses_tls_files_that_are_not_pem(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("hello")
    with pytest.raises(CommandError, match="not PEM"):
        call_command("addhost", "x", "tcp://127.0.0.1:2376", "--tls-ca", str(bad), "--tls-cert", str(bad), "--tls-key", str(bad))
    assert not DockerHost.objects.filter(name="x").exists()


def test_it_stores_hostile_labels_in_postgresql(host, make_container, dockerd):
    """1 MB labels, NUL and non-UTF-8 bytes: the scan succeeds and JSONB accepts the evidence."""
    make_container("huge", start=False, labels={"big": "x" * (1024 * 1024), "html": "<script>x</script>"})
    api = make_container.client.api
    body = b'{"Image": "local/busybox:1", "Cmd": ["true"], "Labels": {"nul": "a\\u0000b", "bytes": "caf\xc3\xa9 \xff end"}}'
    resp = api.post(api._url("/containers/create"), params={"name": "weird"}, data=body,
                    headers={"Content-Type": "application/json"})
    make_container.created.append(api._result(resp, json=True)["Id"])
    code, out, err = run("scan", "d1", "--json")
    assert code == 0, err
    snap = load_snapshot(ScanRun.objects.get(pk=json.loads(out)["scan"]))
    labels = {c["name"]: c["inspect"]["Config"]["Labels"] for c in snap["containers"]}
    assert labels["huge"]["big"].startswith("x" * 1000) and "[truncated: 1048576 bytes" in labels["huge"]["big"]
    assert labels["huge"]["html"] == "<script>x</script>"  # kept as data; pages escape it
    assert "\x00" not in labels["weird"]["nul"] and labels["weird"]["bytes"].startswith("café")


def test_it_fails_cleanly_when_the_daemon_dies_mid_scan(dockerd, make_container, tmp_path):
    """The daemon goes away between calls: a one-line reason, nothing half-stored, the
    previous posture stays current."""
    import threading

    from posture.jobs.scans import execute_scan
    from tests.support.slowproxy import SlowProxy

    for i in range(4):
        make_container(f"dying-{i}")
    proxy = SlowProxy(dockerd.url.removeprefix("unix://"), str(tmp_path / "p.sock"), delay=0.2)
    host = DockerHost.objects.create(name="dying", url=proxy.url)
    assert run("scan", "dying")[0] == 0
    good = ScanRun.objects.get(host=host)
    sets = EvidenceSet.objects.count()
    scan = ScanRun.objects.create(host=host)
    start = proxy.requests
    cutter = threading.Thread(target=lambda: (wait_for(lambda: proxy.requests >= start + 4), proxy.cut()))
    cutter.start()
    result = execute_scan(scan.pk, worker="test")
    cutter.join()
    scan.refresh_from_db()
    assert scan.state == ScanState.FAILED and scan.evidence_set_id is None
    assert "\n" not in scan.error and ("lost" in scan.error or "connect" in scan.error or "refused" in scan.error), scan.error
    assert EvidenceSet.objects.count() == sets
    assert ScanRun.objects.filter(host=host, state=ScanState.SUCCEEDED).latest("finished_at").pk == good.pk
    assert result.outcome.value == "finished"


def wait_for(predicate, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_it_fails_a_scan_that_exceeds_its_time_limit(dockerd, make_container, tmp_path, settings):
    from tests.support.slowproxy import SlowProxy

    for i in range(3):
        make_container(f"slowpoke-{i}")
    settings.POSTURE_SCAN_TIMEOUT = 1  # below what the env allows, to keep the test short
    proxy = SlowProxy(dockerd.url.removeprefix("unix://"), str(tmp_path / "slow.sock"), delay=0.4)
    try:
        DockerHost.objects.create(name="slowpoke", url=proxy.url)
        code, _, err = run("scan", "slowpoke")
    finally:
        proxy.close()
    assert code == 1 and ("time" in err.lower() or "deadline" in err.lower()), err
    assert ScanRun.objects.get(host__name="slowpoke").state == ScanState.FAILED

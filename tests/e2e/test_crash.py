"""Crash safety: SIGKILL during 50 concurrent pushes, restart on the same data
directory, and check that everything visible is whole; abandoned upload sessions
expire after a restart."""

import json
import os
import random
import threading
import time

import pytest
import requests

from conftest import (OCI_CONFIG, OCI_LAYER_GZIP, absolute, basic_session, canonical, descriptor, put_manifest,
                      put_url, push_image, sha256, start_upload, token_session)

REPO = "library/crash"
PUSHES = 50
KILL_AFTER = 10
TIMEOUT = 60

pytestmark = pytest.mark.slow


class Pushes:
    def __init__(self):
        self.lock = threading.Lock()
        self.done = {}        # tag -> (digest, manifest bytes), acknowledged with 201
        self.failed = {}      # tag -> error
        self.blobs = set()    # every blob digest any push tried to upload


def push_one(server, i, state, session):
    rng = random.Random(i)
    tag = f"t{i:02d}"
    try:
        blobs = [rng.randbytes(rng.randint(64 << 10, 4 << 20)) for _ in range(rng.randint(2, 3))]
        with state.lock:
            state.blobs.update(sha256(b) for b in blobs)
        for j, data in enumerate(blobs):
            time.sleep(rng.uniform(0, 0.4))
            loc = start_upload(session, server, REPO)
            if j % 2 == 0:
                r = session.put(put_url(loc, sha256(data)), data=data, timeout=TIMEOUT)
            else:
                for off in range(0, len(data), 1 << 20):
                    part = data[off:off + (1 << 20)]
                    r = session.patch(loc, data=part, timeout=TIMEOUT,
                                      headers={"Content-Range": f"{off}-{off + len(part) - 1}"})
                    assert r.status_code == 202, r.text
                    loc = absolute(server, r)
                r = session.put(put_url(loc, sha256(data)), timeout=TIMEOUT)
            assert r.status_code == 201, r.text
        config = canonical({"architecture": "amd64", "os": "linux", "push": i,
                            "rootfs": {"type": "layers", "diff_ids": [sha256(b) for b in blobs]}})
        layer_descs = [descriptor(OCI_LAYER_GZIP, b) for b in blobs]
        loc = start_upload(session, server, REPO)
        r = session.put(put_url(loc, sha256(config)), data=config, timeout=TIMEOUT)
        assert r.status_code == 201, r.text
        body = canonical({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": descriptor(OCI_CONFIG, config), "layers": layer_descs})
        r = put_manifest(session, server, REPO, tag, body)
        assert r.status_code == 201, r.text
        with state.lock:
            state.done[tag] = (sha256(body), body)
    except (requests.RequestException, AssertionError) as e:
        with state.lock:
            state.failed[tag] = repr(e)[:200]


def verify_repository(s, server, repo=REPO):
    """Every listed tag resolves to a manifest matching its digest, with every blob whole."""
    r = s.get(f"{server.url}/v2/{repo}/tags/list")
    assert r.status_code == 200, r.text
    tags = r.json()["tags"] or []
    for tag in tags:
        m = s.get(f"{server.url}/v2/{repo}/manifests/{tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert m.status_code == 200, f"tag {tag} listed but its manifest answers {m.status_code}"
        assert sha256(m.content) == m.headers["Docker-Content-Digest"], f"tag {tag}: manifest bytes do not match digest"
        manifest = json.loads(m.content)
        for d in [manifest["config"], *manifest["layers"]]:
            b = s.get(f"{server.url}/v2/{repo}/blobs/{d['digest']}")
            assert b.status_code == 200, f"tag {tag}: blob {d['digest']} answers {b.status_code}"
            assert sha256(b.content) == d["digest"] and len(b.content) == d["size"], f"tag {tag}: blob {d['digest']} corrupt"
    return tags


def wait_until(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout} s waiting for {what}", pytrace=False)


def uploads_dir(server):
    return server.data / "storage" / "uploads"


def test_sigkill_during_concurrent_pushes(make_server):
    server = make_server()
    state = Pushes()
    sessions = [token_session(server, [REPO]) if i % 2 else basic_session() for i in range(PUSHES)]
    threads = [threading.Thread(target=push_one, args=(server, i, state, sessions[i]), daemon=True)
               for i in range(PUSHES)]
    for t in threads:
        t.start()
    wait_until(lambda: len(state.done) >= KILL_AFTER or len(state.failed) > 0, 120, f"{KILL_AFTER} pushes to finish")
    assert not state.failed, f"pushes failed before the kill: {state.failed}"
    with state.lock:
        acked_at_kill = dict(state.done)
    server.kill()
    for t in threads:
        t.join(TIMEOUT)
    with state.lock:
        acked = dict(state.done)
    in_flight = PUSHES - len(acked)
    print(f"\nSIGKILL after {len(acked_at_kill)} acknowledged pushes; {in_flight} were in flight")
    assert in_flight > 0, "every push finished before the kill: the test proved nothing"

    server.start(["--upload-expiry", "2"])
    s = basic_session()
    tags = verify_repository(s, server)
    for tag, (digest, body) in acked.items():
        assert tag in tags, f"acknowledged push {tag} lost after the crash"
        r = s.get(f"{server.url}/v2/{REPO}/manifests/{tag}")
        assert r.content == body and r.headers["Docker-Content-Digest"] == digest
    # Half-written blobs must never be served: whatever exists matches its digest.
    for d in sorted(state.blobs):
        r = s.get(f"{server.url}/v2/{REPO}/blobs/{d}")
        assert r.status_code in (200, 404), f"blob {d}: {r.status_code}"
        if r.status_code == 200:
            assert sha256(r.content) == d, f"blob {d} served with wrong content after the crash"
    catalog = s.get(f"{server.url}/v2/_catalog")
    assert catalog.status_code == 200 and REPO in catalog.json()["repositories"]
    for repo in catalog.json()["repositories"]:
        verify_repository(s, server, repo)
    print(f"after restart: {len(tags)} tags, {len(acked)} acknowledged, "
          f"{len(set(tags) - set(acked))} completed but unacknowledged")

    # New pushes work, and abandoned sessions of the killed process are swept.
    digest, body = push_image(s, server, REPO, "after-restart", layers=[os.urandom(100_000)])
    assert s.get(f"{server.url}/v2/{REPO}/manifests/after-restart").content == body
    assert "after-restart" in verify_repository(s, server)
    wait_until(lambda: not any(uploads_dir(server).iterdir()), 30, f"{uploads_dir(server)} to be empty")


def test_abandoned_uploads_expire_after_restart(make_server):
    server = make_server()
    s = basic_session()
    loc = start_upload(s, server, "library/abandoned")
    r = s.patch(loc, data=os.urandom(200_000), headers={"Content-Range": "0-199999"})
    assert r.status_code == 202
    loc = absolute(server, r)
    assert any(uploads_dir(server).iterdir()), "no upload file on disk"
    server.kill()
    server.start(["--upload-expiry", "2"])

    # A session that keeps sending chunks stays alive past the expiry.
    live = start_upload(s, server, "library/abandoned")
    data = os.urandom(8 * 1000)
    for k in range(8):
        r = s.patch(live, data=data[k * 1000:(k + 1) * 1000], headers={"Content-Range": f"{k * 1000}-{k * 1000 + 999}"})
        assert r.status_code == 202, f"active upload expired after {k * 0.6:.1f} s: {r.status_code} {r.text}"
        live = absolute(server, r)
        time.sleep(0.6)

    wait_until(lambda: s.get(loc).status_code == 404, 15, "the abandoned upload to answer 404")
    r = s.get(loc)
    assert r.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    r = s.put(put_url(live, sha256(data)))
    assert r.status_code == 201, r.text
    wait_until(lambda: not any(uploads_dir(server).iterdir()), 15, f"{uploads_dir(server)} to be empty")

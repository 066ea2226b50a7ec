"""HTTP-level behaviours of the Distribution API that real clients rely on,
checked with requests against the real binary."""

import json
import os
import signal
import threading
import time
import uuid

import pytest
import requests

from conftest import (DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, absolute, basic_session, canonical, descriptor,
                      errors_of, get_token, image_manifest, push_blob, push_image, put_manifest, put_url, sha256,
                      sha512, start_upload)

REPO = "library/proto"


@pytest.fixture(scope="module")
def s():
    return basic_session()


def test_out_of_order_chunk_416_status_and_resume(server, s):
    data = os.urandom(300)
    loc = start_upload(s, server, REPO)
    r = s.patch(loc, data=data[:100], headers={"Content-Range": "0-99", "Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["Range"] == "0-99"
    loc = absolute(server, r)
    st = s.get(loc)
    assert st.status_code == 204
    assert st.headers["Range"] == "0-99"
    assert st.headers.get("Docker-Upload-UUID")
    bad = s.patch(loc, data=data[200:], headers={"Content-Range": "200-299", "Content-Type": "application/octet-stream"})
    assert bad.status_code == 416, bad.text
    assert bad.headers.get("Range") == "0-99"
    # The session survives the refused chunk and finishes with the right digest.
    r = s.patch(loc, data=data[100:], headers={"Content-Range": "100-299", "Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["Range"] == "0-299"
    r = s.put(put_url(absolute(server, r), sha256(data)))
    assert r.status_code == 201, r.text
    assert s.get(f"{server.url}/v2/{REPO}/blobs/{sha256(data)}").content == data


def test_cancel_upload_204_then_404(server, s):
    loc = start_upload(s, server, REPO)
    assert s.patch(loc, data=b"x" * 10).status_code == 202
    r = s.delete(loc)
    assert r.status_code == 204, r.text
    assert s.get(loc).status_code == 404
    r = s.delete(loc)
    assert r.status_code == 404 and errors_of(r) == ["BLOB_UPLOAD_UNKNOWN"]


def test_unknown_upload_id_404(server, s):
    r = s.get(f"{server.url}/v2/{REPO}/blobs/uploads/{uuid.uuid4()}")
    assert r.status_code == 404 and errors_of(r) == ["BLOB_UPLOAD_UNKNOWN"]
    r = s.patch(f"{server.url}/v2/{REPO}/blobs/uploads/{uuid.uuid4()}", data=b"abc")
    assert r.status_code == 404 and errors_of(r) == ["BLOB_UPLOAD_UNKNOWN"]


def test_cross_repo_mount(server, s):
    data = os.urandom(2048)
    d = push_blob(s, server, "library/mount-src", data)
    r = s.post(f"{server.url}/v2/library/mount-dst/blobs/uploads/", params={"mount": d, "from": "library/mount-src"})
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d
    assert r.headers["Location"].endswith(f"/v2/library/mount-dst/blobs/{d}")
    assert s.get(f"{server.url}/v2/library/mount-dst/blobs/{d}").content == data
    # A source blob that does not exist: a new upload session (202), which works.
    missing = sha256(os.urandom(32))
    r = s.post(f"{server.url}/v2/library/mount-dst2/blobs/uploads/", params={"mount": missing, "from": "library/mount-src"})
    assert r.status_code == 202, r.text
    assert s.head(f"{server.url}/v2/library/mount-dst2/blobs/{missing}").status_code == 404
    r = s.put(put_url(absolute(server, r), sha256(b"fresh")), data=b"fresh")
    assert r.status_code == 201, r.text


def test_wrong_digest_leaves_no_blob(server, s):
    data = os.urandom(4096)
    claimed = sha256(b"something else")
    loc = start_upload(s, server, REPO)
    r = s.put(put_url(loc, claimed), data=data)
    assert r.status_code == 400 and errors_of(r) == ["DIGEST_INVALID"], r.text
    for d in (claimed, sha256(data)):
        assert s.head(f"{server.url}/v2/{REPO}/blobs/{d}").status_code == 404
    assert s.get(loc).status_code == 404  # the session is gone too
    r = s.post(f"{server.url}/v2/{REPO}/blobs/uploads/", params={"digest": claimed}, data=data)
    assert r.status_code == 400 and errors_of(r) == ["DIGEST_INVALID"]
    assert s.head(f"{server.url}/v2/{REPO}/blobs/{claimed}").status_code == 404


def test_sha512_blobs(server, s):
    data = os.urandom(10000)
    d = push_blob(s, server, REPO, data, algorithm="sha512")
    assert d == sha512(data)
    r = s.get(f"{server.url}/v2/{REPO}/blobs/{d}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["Docker-Content-Digest"] == d
    wrong = sha512(data + b"!")
    r = s.put(put_url(start_upload(s, server, REPO), wrong), data=data)
    assert r.status_code == 400 and errors_of(r) == ["DIGEST_INVALID"]
    assert s.head(f"{server.url}/v2/{REPO}/blobs/{wrong}").status_code == 404
    r = s.post(f"{server.url}/v2/{REPO}/blobs/uploads/", params={"digest": sha512(b"mono")}, data=b"mono")
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == sha512(b"mono")


def test_manifest_blob_unknown(server, s):
    config = b"{}"
    push_blob(s, server, REPO, config)
    body = image_manifest(config, [os.urandom(100)])  # the layer was never pushed
    r = put_manifest(s, server, REPO, "missing-blob", body)
    assert r.status_code == 400 and errors_of(r) == ["MANIFEST_BLOB_UNKNOWN"], r.text
    assert s.get(f"{server.url}/v2/{REPO}/manifests/missing-blob").status_code == 404


def test_index_with_missing_child(server, s):
    child = canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "nonce": "x"})
    index = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(OCI_MANIFEST, child)]})
    r = put_manifest(s, server, REPO, "bad-index", index, OCI_INDEX)
    assert 400 <= r.status_code < 500 and errors_of(r) == ["MANIFEST_UNKNOWN"], f"{r.status_code} {r.text}"
    assert s.get(f"{server.url}/v2/{REPO}/manifests/bad-index").status_code == 404


def test_schema1_and_malformed_manifests(server, s):
    schema1 = json.dumps({"schemaVersion": 1, "name": REPO, "tag": "old", "architecture": "amd64",
                          "fsLayers": [{"blobSum": sha256(b"")}], "history": [{"v1Compatibility": "{}"}]}).encode()
    r = put_manifest(s, server, REPO, "old", schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws")
    assert r.status_code == 400 and errors_of(r) == ["MANIFEST_INVALID"], r.text
    assert "schema 1" in r.json()["errors"][0]["message"].lower()
    r = put_manifest(s, server, REPO, "broken", b'{"schemaVersion": 2, "config": ', OCI_MANIFEST)
    assert r.status_code == 400 and errors_of(r) == ["MANIFEST_INVALID"], r.text
    assert r.json()["errors"][0]["message"]


def test_manifest_size_limit(server, s):
    config = b'{"architecture":"amd64","os":"linux"}'
    push_blob(s, server, REPO, config)
    base = json.loads(image_manifest(config, []))
    base["annotations"] = {"pad": "x" * (3 << 20)}  # 3 MiB: under the limit, accepted
    r = put_manifest(s, server, REPO, "big-ok", canonical(base))
    assert r.status_code == 201, f"{r.status_code} {r.text[:300]}"
    base["annotations"] = {"pad": "x" * ((4 << 20) + 10)}
    r = put_manifest(s, server, REPO, "too-big", canonical(base))
    assert r.status_code == 413, f"{r.status_code} {r.text[:300]}"
    assert s.get(f"{server.url}/v2/{REPO}/manifests/too-big").status_code == 404


def test_invalid_name(server, s):
    for path in ("/v2/library/UPPER/tags/list", "/v2/library/a..b/manifests/1", "/v2/library/-x/blobs/uploads/"):
        r = s.request("POST" if path.endswith("uploads/") else "GET", server.url + path)
        assert r.status_code == 400 and errors_of(r) == ["NAME_INVALID"], f"{path}: {r.status_code} {r.text}"


def test_tag_pagination(server, s):
    repo = "library/paged"
    digest, _ = push_image(s, server, repo, "a")
    tags = ["a", "b", "c", "d", "e"]
    body = s.get(f"{server.url}/v2/{repo}/manifests/a").content
    for t in tags[1:]:
        assert put_manifest(s, server, repo, t, body).status_code == 201
    assert s.get(f"{server.url}/v2/{repo}/tags/list").json() == {"name": repo, "tags": tags}
    seen, url = [], f"{server.url}/v2/{repo}/tags/list?n=2"
    pages = 0
    while url:
        r = s.get(url)
        assert r.status_code == 200
        page = r.json()["tags"]
        assert len(page) <= 2
        seen += page
        pages += 1
        link = r.headers.get("Link")
        if link:
            assert 'rel="next"' in link and link.startswith("<")
            url = server.url + link[1:link.index(">")]
        else:
            url = None
    assert seen == tags and pages == 3
    r = s.get(f"{server.url}/v2/{repo}/tags/list", params={"n": 2, "last": "b"})
    assert r.json()["tags"] == ["c", "d"] and "last=d" in r.headers["Link"]


def test_delete_by_tag_and_by_digest(server, s):
    repo = "library/deletes"
    digest, body = push_image(s, server, repo, "t1")
    assert put_manifest(s, server, repo, "t2", body).status_code == 201
    r = s.delete(f"{server.url}/v2/{repo}/manifests/t1")
    assert r.status_code == 202, r.text
    assert s.get(f"{server.url}/v2/{repo}/manifests/t1").status_code == 404
    assert s.get(f"{server.url}/v2/{repo}/manifests/t2").content == body
    assert s.get(f"{server.url}/v2/{repo}/manifests/{digest}").content == body
    r = s.delete(f"{server.url}/v2/{repo}/manifests/{digest}")
    assert r.status_code == 202, r.text
    assert s.get(f"{server.url}/v2/{repo}/manifests/{digest}").status_code == 404
    assert s.get(f"{server.url}/v2/{repo}/manifests/t2").status_code == 404
    tags = s.get(f"{server.url}/v2/{repo}/tags/list")
    assert tags.status_code == 404 or "t2" not in (tags.json().get("tags") or [])


def test_docker_content_digest_everywhere(server, s):
    repo = "library/digests"
    layer = os.urandom(5000)
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    for b in (config, layer):
        push_blob(s, server, repo, b)
    body = image_manifest(config, [layer], config_type="application/vnd.docker.container.image.v1+json",
                          layer_type="application/vnd.docker.image.rootfs.diff.tar.gzip")
    body = body.replace(OCI_MANIFEST.encode(), DOCKER_MANIFEST.encode())
    d = sha256(body)
    r = put_manifest(s, server, repo, "1", body, DOCKER_MANIFEST)
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == d
    for ref in ("1", d):
        for method in ("GET", "HEAD"):
            r = s.request(method, f"{server.url}/v2/{repo}/manifests/{ref}", headers={"Accept": DOCKER_MANIFEST})
            assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == d, (method, ref)
            assert r.headers["Content-Type"] == DOCKER_MANIFEST
            assert int(r.headers["Content-Length"]) == len(body)
            if method == "GET":
                assert r.content == body
    for method in ("GET", "HEAD"):
        r = s.request(method, f"{server.url}/v2/{repo}/blobs/{sha256(layer)}")
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == sha256(layer)
        assert int(r.headers["Content-Length"]) == len(layer)
    r = s.get(f"{server.url}/v2/{repo}/blobs/{sha256(layer)}", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == layer[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(layer)}"


def test_token_expiry(make_server):
    srv = make_server(["--token-expiry", "2"])
    tok = get_token(srv, "repository:library/exp:pull,push")
    h = {"Authorization": "Bearer " + tok}
    r = requests.get(f"{srv.url}/v2/", headers=h)
    assert r.status_code == 200, r.text
    issued = time.time()
    while True:
        r = requests.get(f"{srv.url}/v2/library/exp/tags/list", headers=h)
        if r.status_code == 401:
            break
        assert r.status_code == 404, r.text  # accepted: the repository is simply empty
        assert time.time() - issued < 15, "token still accepted 15 s after a 2 s expiry"
        time.sleep(0.5)
    assert "Bearer" in r.headers.get("WWW-Authenticate", "")
    assert requests.get(f"{srv.url}/v2/", headers=h).status_code == 401
    print(f"token refused {time.time() - issued:.1f} s after issue (expiry 2 s)")


def test_sigterm_drains_slow_upload(make_server):
    srv = make_server()
    s = basic_session()
    data = os.urandom(64 * 1024)
    loc = start_upload(s, srv, REPO)
    sent_first = threading.Event()

    def slow_body():
        for i in range(0, len(data), 8192):
            yield data[i:i + 8192]
            sent_first.set()
            time.sleep(0.25)

    result = {}

    def upload():
        try:
            result["r"] = s.put(put_url(loc, sha256(data)), data=slow_body())
        except requests.RequestException as e:
            result["e"] = e

    t = threading.Thread(target=upload)
    t.start()
    assert sent_first.wait(10)
    time.sleep(0.3)
    os.kill(srv.pid, signal.SIGTERM)
    t.join(60)
    code = srv.proc.wait(60)
    assert "e" not in result, f"upload in flight was cut off by SIGTERM: {result.get('e')}"
    assert result["r"].status_code == 201, result["r"].text
    assert code == 0, f"exit code {code} after SIGTERM"
    srv.start()
    r = s.get(f"{srv.url}/v2/{REPO}/blobs/{sha256(data)}")
    assert r.status_code == 200 and r.content == data


def test_auth_challenge_token_and_catalog(server, s):
    r = requests.get(f"{server.url}/v2/")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == \
        f'Bearer realm="http://{server.host}/service/token",service="harbor-registry"'
    assert requests.get(f"{server.url}/v2/", auth=("admin", "wrong")).status_code == 401
    assert s.get(f"{server.url}/v2/").status_code == 200
    assert requests.get(f"{server.url}/v2/_catalog").status_code == 401
    catalog = s.get(f"{server.url}/v2/_catalog")
    assert catalog.status_code == 200 and isinstance(catalog.json()["repositories"], list)

    digest, body = push_image(s, server, "library/authz", "1")
    # Anonymous: pull from the public project with or without a token; pushing is challenged.
    assert requests.get(f"{server.url}/v2/library/authz/manifests/1").content == body
    anon = get_token(server, "repository:library/authz:pull,push", user=None)
    h = {"Authorization": "Bearer " + anon}
    assert requests.get(f"{server.url}/v2/library/authz/manifests/{digest}", headers=h).content == body
    r = requests.post(f"{server.url}/v2/library/authz/blobs/uploads/")
    assert r.status_code == 401
    assert 'scope="repository:library/authz:pull,push"' in r.headers["WWW-Authenticate"]
    assert requests.post(f"{server.url}/v2/library/authz/blobs/uploads/", headers=h).status_code in (401, 403)
    # A token for one repository does not open another.
    tok = get_token(server, "repository:library/authz:pull,push")
    r = requests.post(f"{server.url}/v2/library/other/blobs/uploads/", headers={"Authorization": "Bearer " + tok})
    assert r.status_code == 401 and "Bearer" in r.headers["WWW-Authenticate"]
    r = requests.post(f"{server.url}/v2/library/authz/blobs/uploads/", headers={"Authorization": "Bearer " + tok})
    assert r.status_code == 202
    r = requests.get(f"{server.url}/service/token", params={"service": "harbor-registry"}, auth=("admin", "nope"))
    assert r.status_code == 401


def test_concurrent_uploads_of_one_blob(server, s):
    """Parallel pushes sharing a base layer: every upload of the same bytes succeeds and the blob stays whole."""
    data = os.urandom(3 << 20)
    results = []

    def worker(k):
        repo = f"library/shared{k % 3}"
        try:
            results.append((repo, push_blob(basic_session(), server, repo, data)))
        except AssertionError as e:
            results.append((repo, e))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [d for _, d in results] == [sha256(data)] * 9, results
    for repo in {r for r, _ in results}:
        r = s.get(f"{server.url}/v2/{repo}/blobs/{sha256(data)}")
        assert r.status_code == 200 and sha256(r.content) == sha256(data), repo

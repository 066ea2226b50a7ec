"""ORAS (the oras Python client): artifacts with custom types, referrers (OCI 1.1
subject / referrers API) and a Helm chart stored as an OCI artifact."""

import io
import json
import os
import secrets
import tarfile

import pytest
import requests

from conftest import (ADMIN_PASSWORD, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, basic_session, canonical, descriptor,
                      push_blob, put_manifest, sha256)

try:
    import oras.client
    import oras.oci
except ImportError:  # a missing client fails the tests that need it, loudly
    oras = None

ART_TYPE = "application/vnd.berth.e2e.bundle.v1+json"
SIG_TYPE = "application/vnd.berth.e2e.signature.v1+json"
SBOM_TYPE = "application/vnd.berth.e2e.sbom.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


@pytest.fixture
def workdir(tmpdir_clean, monkeypatch):
    """An isolated HOME (no ~/.docker/config.json of the machine) and cwd (oras pushes relative files)."""
    if oras is None:
        pytest.fail("the oras Python package is not installed (pip install oras)", pytrace=False)
    monkeypatch.setenv("HOME", str(tmpdir_clean))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmpdir_clean / ".docker"))
    monkeypatch.chdir(tmpdir_clean)
    return tmpdir_clean


def client(server):
    c = oras.client.OrasClient(hostname=server.host, insecure=True)
    c.auth.set_basic_auth("admin", ADMIN_PASSWORD)
    return c


def manifest_of(server, repo, ref):
    r = basic_session().get(f"{server.url}/v2/{repo}/manifests/{ref}",
                            headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"})
    assert r.status_code == 200, r.text
    assert sha256(r.content) == r.headers["Docker-Content-Digest"]
    return r


def referrers(server, repo, digest, artifact_type=None):
    params = {"artifactType": artifact_type} if artifact_type else None
    r = requests.get(f"{server.url}/v2/{repo}/referrers/{digest}", params=params, auth=("admin", ADMIN_PASSWORD))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith(OCI_INDEX)
    body = r.json()
    assert body["schemaVersion"] == 2 and body["mediaType"] == OCI_INDEX
    return r, body["manifests"]


def test_artifact_and_referrers(server, workdir):
    repo = "library/art"
    target = f"{server.host}/{repo}:1"
    a, b = workdir / "a.txt", workdir / "b.bin"
    a.write_text("hello from berth e2e " + secrets.token_hex(16) + "\n")
    b.write_bytes(os.urandom(300_000))
    (workdir / "conf.json").write_text(json.dumps({"created-by": "e2e", "nonce": secrets.token_hex(4)}))
    c = client(server)
    r = c.push(target=target, files=["a.txt:text/plain", "b.bin:application/octet-stream"],
               manifest_config=f"conf.json:{ART_TYPE}", quiet=True)
    assert r.status_code == 201, r.text
    subject_digest = r.headers["Docker-Content-Digest"]

    out = workdir / "out"
    files = client(server).pull(target=target, outdir=str(out))
    assert sorted(os.path.basename(f) for f in files) == ["a.txt", "b.bin"]
    assert (out / "a.txt").read_bytes() == a.read_bytes()
    assert (out / "b.bin").read_bytes() == b.read_bytes()

    m = manifest_of(server, repo, "1")
    assert m.headers["Docker-Content-Digest"] == subject_digest
    manifest = m.json()
    assert manifest["config"]["mediaType"] == ART_TYPE
    assert [l["mediaType"] for l in manifest["layers"]] == ["text/plain", "application/octet-stream"]
    subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=subject_digest, size=len(m.content))

    # No referrers yet: 200 and an empty index.
    _, listed = referrers(server, repo, subject_digest)
    assert listed == []

    # Referrer 1, pushed by oras with a subject; its artifact type is its config media type.
    (workdir / "sig.json").write_text(json.dumps({"signed": subject_digest}))
    (workdir / "sigconf.json").write_text("{}")
    r = client(server).push(target=f"{server.host}/{repo}:sig", files=["sig.json:application/json"],
                            manifest_config=f"sigconf.json:{SIG_TYPE}", subject=subject, quiet=True)
    assert r.status_code == 201, r.text
    assert r.headers.get("OCI-Subject") == subject_digest, dict(r.headers)
    sig_digest = r.headers["Docker-Content-Digest"]
    sig_size = len(manifest_of(server, repo, sig_digest).content)

    # Referrer 2: an OCI 1.1 artifact manifest with artifactType, an empty config, and
    # annotations, pushed by digest only (no tag).
    s = basic_session()
    sbom = canonical({"spdxVersion": "SPDX-2.3", "nonce": secrets.token_hex(4)})
    push_blob(s, server, repo, b"{}")
    push_blob(s, server, repo, sbom)
    annotations = {"org.opencontainers.image.created": "2026-01-01T00:00:00Z", "org.example.kind": "sbom"}
    body = canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SBOM_TYPE,
                      "config": descriptor(OCI_EMPTY, b"{}"), "layers": [descriptor("application/spdx+json", sbom)],
                      "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(m.content)},
                      "annotations": annotations})
    r = put_manifest(s, server, repo, sha256(body), body)
    assert r.status_code == 201, r.text
    assert r.headers.get("OCI-Subject") == subject_digest

    resp, listed = referrers(server, repo, subject_digest)
    assert "OCI-Filters-Applied" not in resp.headers
    by_digest = {d["digest"]: d for d in listed}
    assert set(by_digest) == {sig_digest, sha256(body)}, listed
    assert by_digest[sig_digest]["artifactType"] == SIG_TYPE
    assert by_digest[sig_digest]["size"] == sig_size
    assert by_digest[sig_digest]["mediaType"] == OCI_MANIFEST
    assert by_digest[sha256(body)]["artifactType"] == SBOM_TYPE
    assert by_digest[sha256(body)]["size"] == len(body)
    assert by_digest[sha256(body)].get("annotations") == annotations

    resp, listed = referrers(server, repo, subject_digest, SBOM_TYPE)
    assert resp.headers.get("OCI-Filters-Applied") == "artifactType"
    assert [d["digest"] for d in listed] == [sha256(body)]
    resp, listed = referrers(server, repo, subject_digest, "application/vnd.nobody.uses.this")
    assert resp.headers.get("OCI-Filters-Applied") == "artifactType" and listed == []

    # Referrers of a digest nobody refers to, and of the referrer itself: empty.
    assert referrers(server, repo, sha256(b"nothing refers to this"))[1] == []
    assert referrers(server, repo, sig_digest)[1] == []


def make_chart(name="berthchart", version="0.1.0") -> bytes:
    files = {
        f"{name}/Chart.yaml": f"apiVersion: v2\nname: {name}\ndescription: e2e chart\ntype: application\n"
                              f"version: {version}\nappVersion: \"1.0\"\n",
        f"{name}/values.yaml": f"replicaCount: 1\nimage:\n  repository: 127.0.0.1/library/hello\n  tag: \"1\"\n"
                               f"nonce: {secrets.token_hex(8)}\n",
        f"{name}/templates/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
                                             "  name: {{ .Release.Name }}\nspec:\n"
                                             "  replicas: {{ .Values.replicaCount }}\n",
        f"{name}/templates/NOTES.txt": "Installed {{ .Chart.Name }}.\n",
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_helm_chart(server, workdir):
    repo = "library/charts/berthchart"
    chart = make_chart()
    (workdir / "berthchart-0.1.0.tgz").write_bytes(chart)
    config = {"apiVersion": "v2", "name": "berthchart", "version": "0.1.0", "appVersion": "1.0",
              "description": "e2e chart", "type": "application"}
    (workdir / "config.json").write_text(json.dumps(config))
    r = client(server).push(target=f"{server.host}/{repo}:0.1.0", files=[f"berthchart-0.1.0.tgz:{HELM_CHART}"],
                            manifest_config=f"config.json:{HELM_CONFIG}", quiet=True)
    assert r.status_code == 201, r.text

    m = manifest_of(server, repo, "0.1.0").json()
    assert m["config"]["mediaType"] == HELM_CONFIG
    assert [l["mediaType"] for l in m["layers"]] == [HELM_CHART]
    assert m["layers"][0]["digest"] == sha256(chart)
    cfg = basic_session().get(f"{server.url}/v2/{repo}/blobs/{m['config']['digest']}")
    assert cfg.status_code == 200 and json.loads(cfg.content) == config

    out = workdir / "pulled"
    files = client(server).pull(target=f"{server.host}/{repo}:0.1.0", outdir=str(out))
    assert [os.path.basename(f) for f in files] == ["berthchart-0.1.0.tgz"]
    pulled = (out / "berthchart-0.1.0.tgz").read_bytes()
    assert pulled == chart
    with tarfile.open(fileobj=io.BytesIO(pulled)) as tar:
        names = tar.getnames()
        assert "berthchart/Chart.yaml" in names and "berthchart/templates/deployment.yaml" in names
        assert b"version: 0.1.0" in tar.extractfile("berthchart/Chart.yaml").read()
    tags = basic_session().get(f"{server.url}/v2/{repo}/tags/list").json()
    assert tags == {"name": repo, "tags": ["0.1.0"]}

"""skopeo (containers/image): multi-platform OCI indexes, a real image from an
OCI layout, Docker schema 2 conversion, and registry-to-registry copies."""

import gzip
import io
import json
import os
import secrets
import tarfile
from pathlib import Path

import pytest

from conftest import (ADMIN_PASSWORD, DATA, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST,
                      basic_session, canonical, descriptor, need, run, sha256)

VULNDATA = DATA / "vulndata-oci-layout"
CREDS = f"admin:{ADMIN_PASSWORD}"


@pytest.fixture
def skopeo(tmpdir_clean):
    """Runs skopeo with its own policy, auth file, registries config and temp dir."""
    need("skopeo")
    home = tmpdir_clean / "skopeo"
    for d in ("run", "tmp", "registries.d", "home"):
        (home / d).mkdir(parents=True)
    policy = home / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    (home / "registries.conf").write_text("unqualified-search-registries = []\n")
    env = {"REGISTRY_AUTH_FILE": str(home / "auth.json"), "XDG_RUNTIME_DIR": str(home / "run"),
           "CONTAINERS_REGISTRIES_CONF": str(home / "registries.conf"), "HOME": str(home / "home"),
           "TMPDIR": str(home / "tmp")}

    def skopeo_run(*args, check=True):
        return run(["skopeo", "--policy", policy, "--registries.d", home / "registries.d", "--tmpdir", home / "tmp",
                    *args], env=env, check=check)

    skopeo_run.dir = tmpdir_clean
    return skopeo_run


def gzip_layer(files: dict) -> tuple:
    """A gzipped tar of `files`; returns (compressed, uncompressed)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0), raw.getvalue()


def write_blob(layout: Path, data: bytes) -> None:
    p = layout / "blobs" / "sha256" / sha256(data).split(":")[1]
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def write_multiarch_layout(layout: Path, tag: str) -> bytes:
    """An OCI layout holding an index of two tiny linux/amd64 and linux/arm64 images; returns the index bytes."""
    layout.mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    children = []
    for arch in ("amd64", "arm64"):
        layers = [gzip_layer({f"{arch}/file{i}.bin": os.urandom(4096 + i)}) for i in range(2)]
        config = canonical({"architecture": arch, "os": "linux", "config": {},
                            "rootfs": {"type": "layers", "diff_ids": [sha256(raw) for _, raw in layers]}})
        manifest = canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                              "layers": [descriptor(OCI_LAYER_GZIP, gz) for gz, _ in layers]})
        for b in (config, manifest, *(gz for gz, _ in layers)):
            write_blob(layout, b)
        children.append(descriptor(OCI_MANIFEST, manifest, platform={"architecture": arch, "os": "linux"}))
    index = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children,
                       "annotations": {"org.example.nonce": secrets.token_hex(8)}})
    write_blob(layout, index)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        descriptor(OCI_INDEX, index, annotations={"org.opencontainers.image.ref.name": tag})]}))
    return index


def layout_ref(layout: Path, tag: str) -> str:
    """The digest the layout's index.json names for `tag`."""
    for d in json.loads((layout / "index.json").read_text())["manifests"]:
        if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return d["digest"]
    raise AssertionError(f"tag {tag} not in {layout}/index.json")


def blobs_of(layout: Path) -> dict:
    return {p.name: p.read_bytes() for p in (layout / "blobs" / "sha256").iterdir()}


def test_multiarch_index_roundtrip(server, skopeo):
    src, out = skopeo.dir / "src", skopeo.dir / "out"
    index = write_multiarch_layout(src, "multi")
    dest = f"docker://{server.host}/library/multi:1"
    skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", CREDS,
           f"oci:{src}:multi", dest)

    raw = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", CREDS, dest).stdout.encode()
    assert raw == index, f"registry returned different index bytes:\n{raw!r}\n!=\n{index!r}"
    r = basic_session().get(f"{server.url}/v2/library/multi/manifests/1", headers={"Accept": OCI_INDEX})
    assert r.headers["Docker-Content-Digest"] == sha256(index)
    assert r.headers["Content-Type"] == OCI_INDEX
    for child in json.loads(index)["manifests"]:
        raw = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", CREDS,
                     f"docker://{server.host}/library/multi@{child['digest']}").stdout.encode()
        assert sha256(raw) == child["digest"]

    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--src-creds", CREDS, dest, f"oci:{out}:1")
    assert layout_ref(out, "1") == sha256(index)
    assert blobs_of(out) == blobs_of(src)


def test_vulndata_image_roundtrip(server, skopeo):
    want = layout_ref(VULNDATA, "v1")
    dest = f"docker://{server.host}/library/vulndata:v1"
    skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", CREDS, f"oci:{VULNDATA}:v1", dest)
    r = basic_session().head(f"{server.url}/v2/library/vulndata/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == want

    info = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", CREDS, dest).stdout)
    assert info["Digest"] == want and info["Architecture"] == "amd64" and len(info["Layers"]) == 3

    out = skopeo.dir / "back"
    skopeo("copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds", CREDS, dest, f"oci:{out}:v1")
    assert layout_ref(out, "v1") == want
    assert blobs_of(out) == blobs_of(VULNDATA)


def test_docker_schema2_format(server, skopeo):
    dest = f"docker://{server.host}/library/vulndata-v2s2:1"
    skopeo("copy", "--format", "v2s2", "--dest-tls-verify=false", "--dest-creds", CREDS, f"oci:{VULNDATA}:v1", dest)
    s = basic_session()
    r = s.get(f"{server.url}/v2/library/vulndata-v2s2/manifests/1", headers={"Accept": DOCKER_MANIFEST})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == DOCKER_MANIFEST
    digest = r.headers["Docker-Content-Digest"]
    assert digest == sha256(r.content)
    m = r.json()
    assert m["mediaType"] == DOCKER_MANIFEST
    assert m["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert {l["mediaType"] for l in m["layers"]} == {"application/vnd.docker.image.rootfs.diff.tar.gzip"}
    src = json.loads((VULNDATA / "blobs" / "sha256" / layout_ref(VULNDATA, "v1").split(":")[1]).read_bytes())
    assert [l["digest"] for l in m["layers"]] == [l["digest"] for l in src["layers"]]
    for d in [m["config"], *m["layers"]]:
        b = s.get(f"{server.url}/v2/library/vulndata-v2s2/blobs/{d['digest']}")
        assert b.status_code == 200 and sha256(b.content) == d["digest"] and len(b.content) == d["size"]

    info = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", CREDS, dest).stdout)
    assert info["Digest"] == digest
    # Registry to registry (blobs mounted across repositories), keeping the schema 2 manifest.
    copy = f"docker://{server.host}/library/copied:1"
    skopeo("copy", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
           "--src-creds", CREDS, "--dest-creds", CREDS, dest, copy)
    r = s.head(f"{server.url}/v2/library/copied/manifests/1", headers={"Accept": DOCKER_MANIFEST})
    assert r.headers["Docker-Content-Digest"] == digest
    # And back into a directory, byte for byte.
    out = skopeo.dir / "dir"
    skopeo("copy", "--src-tls-verify=false", "--src-creds", CREDS, copy, f"dir:{out}")
    assert sha256((out / "manifest.json").read_bytes()) == digest

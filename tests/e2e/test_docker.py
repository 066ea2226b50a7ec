"""The real Docker engine (a private dockerd with vfs storage) against Berth:
login, build FROM scratch, push, pull, save, and the refusals users see."""

import io
import json
import os
import re
import secrets
import shutil
import tarfile
import time

import pytest

from conftest import ADMIN_PASSWORD, DOCKER_MANIFEST, basic_session, mkdtemp


@pytest.fixture(scope="module")
def cfgdirs():
    """Makes fresh DOCKER_CONFIG directories (no stored credentials) for the module."""
    root = mkdtemp("berth-dkcfg-")
    n = iter(range(1000))

    def make():
        d = root / f"cfg{next(n)}"
        d.mkdir()
        return d

    yield make
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def admin_cfg(server, dockerd, cfgdirs):
    cfg = cfgdirs()
    dockerd.run(["login", server.host, "-u", "admin", "--password-stdin"], cfg, input=ADMIN_PASSWORD)
    return cfg


@pytest.fixture(scope="module")
def pushed(server, dockerd, admin_cfg, cfgdirs):
    """An image built FROM scratch with random files, pushed to library/hello:1 as admin."""
    ctx = cfgdirs()
    files = {"a.txt": ("hello " + secrets.token_hex(16)).encode(), "b.bin": os.urandom(100_000),
             "c.bin": os.urandom(3_000)}
    for name, data in files.items():
        (ctx / name).write_bytes(data)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY a.txt b.bin c.bin /files/\nCMD [\"/files/a.txt\"]\n")
    ref = f"{server.host}/library/hello:1"
    dockerd.run(["build", "-t", ref, str(ctx)], admin_cfg)
    image_id = dockerd.run(["image", "inspect", "-f", "{{.Id}}", ref], admin_cfg).stdout.strip()
    out = dockerd.run(["push", ref], admin_cfg).stdout
    m = re.search(r"digest: (sha256:[0-9a-f]{64}) size: (\d+)", out)
    assert m, f"no digest in docker push output:\n{out}"
    return {"ref": ref, "id": image_id, "digest": m.group(1), "size": int(m.group(2)), "files": files}


def test_login(server, dockerd, cfgdirs):
    cfg = cfgdirs()
    p = dockerd.run(["login", server.host, "-u", "admin", "--password-stdin"], cfg, input=ADMIN_PASSWORD)
    assert "Login Succeeded" in p.stdout
    assert server.host in json.loads((cfg / "config.json").read_text())["auths"]

    bad = cfgdirs()
    p = dockerd.run(["login", server.host, "-u", "admin", "--password-stdin"], bad, input="not-the-password",
                    check=False)
    assert p.returncode != 0, p.stdout
    assert "unauthorized" in (p.stdout + p.stderr).lower(), p.stderr
    cfgfile = bad / "config.json"
    assert not cfgfile.exists() or server.host not in json.loads(cfgfile.read_text()).get("auths", {})


def test_push_rmi_pull_same_image(server, dockerd, admin_cfg, pushed):
    s = basic_session()
    r = s.get(f"{server.url}/v2/library/hello/manifests/1", headers={"Accept": DOCKER_MANIFEST})
    assert r.status_code == 200
    assert r.headers["Docker-Content-Digest"] == pushed["digest"]
    assert len(r.content) == pushed["size"]
    manifest = r.json()
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["digest"] == pushed["id"]

    dockerd.run(["rmi", pushed["ref"]], admin_cfg)
    assert dockerd.run(["image", "inspect", pushed["ref"]], admin_cfg, check=False).returncode != 0
    out = dockerd.run(["pull", pushed["ref"]], admin_cfg).stdout
    assert pushed["digest"] in out
    info = json.loads(dockerd.run(["image", "inspect", pushed["ref"]], admin_cfg).stdout)[0]
    assert info["Id"] == pushed["id"]
    assert f"{server.host}/library/hello@{pushed['digest']}" in info["RepoDigests"]

    tar_path = admin_cfg / "saved.tar"
    dockerd.run(["save", "-o", str(tar_path), pushed["ref"]], admin_cfg)
    with tarfile.open(tar_path) as saved:
        entry = json.load(saved.extractfile("manifest.json"))[0]
        assert pushed["id"].split(":")[1] in entry["Config"]
        assert entry["RepoTags"] == [pushed["ref"]]
        found = {}
        for layer in entry["Layers"]:
            with tarfile.open(fileobj=io.BytesIO(saved.extractfile(layer).read())) as lt:
                for member in lt.getmembers():
                    if member.isfile():
                        found[member.name.lstrip("./")] = lt.extractfile(member).read()
    assert {f"files/{k}": v for k, v in pushed["files"].items()} == found


def test_anonymous_push_refused_anonymous_pull_allowed(server, dockerd, pushed, cfgdirs):
    anon = cfgdirs()
    other = f"{server.host}/library/anon:1"
    dockerd.run(["tag", pushed["ref"], other], anon)
    started = time.time()
    p = dockerd.run(["push", other], anon, check=False)
    elapsed = time.time() - started
    assert p.returncode != 0, f"anonymous push succeeded:\n{p.stdout}"
    out = (p.stdout + p.stderr).lower()
    assert "unauthorized" in out or "denied" in out, out
    assert basic_session().head(f"{server.url}/v2/library/anon/manifests/1").status_code == 404

    dockerd.run(["rmi", pushed["ref"], other], anon)
    out = dockerd.run(["pull", pushed["ref"]], anon).stdout
    assert pushed["digest"] in out
    info = json.loads(dockerd.run(["image", "inspect", pushed["ref"]], anon).stdout)[0]
    assert info["Id"] == pushed["id"]

    # The refusal must be final: Docker retries a layer upload (5 times, ~50 s) unless the
    # registry's answer tells it that retrying cannot help (401 challenge / insufficient_scope).
    retries = p.stdout.count("Retrying in")
    assert retries == 0 and elapsed < 20, (
        f"docker push took {elapsed:.0f} s and {retries} retry ticks before giving up; last lines:\n"
        + "\n".join(p.stdout.splitlines()[-3:]) + "\n" + p.stderr)


def test_push_to_missing_project(server, dockerd, admin_cfg, pushed):
    ref = f"{server.host}/nosuch/x:1"
    dockerd.run(["tag", pushed["ref"], ref], admin_cfg)
    p = dockerd.run(["push", ref], admin_cfg, check=False, timeout=300)
    assert p.returncode != 0, f"push to a missing project succeeded:\n{p.stdout}"
    out = p.stdout + p.stderr
    assert "project" in out.lower() and "nosuch" in out, out
    r = basic_session().get(f"{server.url}/v2/_catalog")
    assert r.status_code == 200 and not any(n.startswith("nosuch/") for n in r.json()["repositories"])

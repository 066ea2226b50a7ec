"""buildah builds and pushes, podman pulls, logs in and out (vfs storage, private
storage roots, auth file and runtime dir)."""

import json
import os
import secrets

import pytest

from conftest import ADMIN_PASSWORD, OCI_MANIFEST, basic_session, need, run


@pytest.fixture
def engines(tmpdir_clean):
    need("buildah")
    need("podman")
    home = tmpdir_clean
    for d in ("broot", "brunroot", "proot", "prunroot", "run", "tmp", "home", "config"):
        (home / d).mkdir()
    (home / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{home / "proot"}"\nrunroot = "{home / "prunroot"}"\n')
    (home / "registries.conf").write_text("unqualified-search-registries = []\n")
    (home / "auth.json").write_text('{"auths": {}}')  # buildah refuses a REGISTRY_AUTH_FILE that does not exist
    policy = home / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    env = {"CONTAINERS_STORAGE_CONF": str(home / "storage.conf"), "CONTAINERS_REGISTRIES_CONF": str(home / "registries.conf"),
           "REGISTRY_AUTH_FILE": str(home / "auth.json"), "XDG_RUNTIME_DIR": str(home / "run"),
           "XDG_CONFIG_HOME": str(home / "config"), "HOME": str(home / "home"), "TMPDIR": str(home / "tmp")}
    # buildah and podman keep separate stores, so that a pull really fetches from the registry
    bcommon = ["--root", home / "broot", "--runroot", home / "brunroot", "--storage-driver", "vfs"]
    pcommon = ["--root", home / "proot", "--runroot", home / "prunroot", "--storage-driver", "vfs"]

    class Engines:
        dir = home
        authfile = home / "auth.json"

        def buildah(self, *args, check=True):
            return run(["buildah", *bcommon, *args], env=env, check=check)

        def podman(self, *args, check=True, input=None):
            return run(["podman", *pcommon, "--tmpdir", home / "tmp", "--cgroup-manager", "cgroupfs",
                        "--events-backend", "file", *args], env=env, check=check, input=input)

    yield Engines()
    # podman/buildah may leave overlay-free but read-only vfs layers; make them removable
    run(["chmod", "-R", "u+w", home], check=False)


def build_context(d):
    ctx = d / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hello " + secrets.token_hex(16) + "\n")
    (ctx / "data.bin").write_bytes(os.urandom(200_000))
    (ctx / "Containerfile").write_text('FROM scratch\nCOPY hello.txt data.bin /srv/\nLABEL org.example.e2e="podman"\n')
    return ctx


def test_buildah_push_podman_pull(server, engines):
    ctx = build_context(engines.dir)
    engines.buildah("bud", "--format", "oci", "-f", ctx / "Containerfile", "-t", "localhost/pb:1", ctx)
    ref = f"{server.host}/library/pb:1"
    digestfile = engines.dir / "digest"
    engines.buildah("push", "--tls-verify=false", "--creds", f"admin:{ADMIN_PASSWORD}", "--digestfile", digestfile,
                    "--signature-policy", engines.dir / "policy.json", "localhost/pb:1", f"docker://{ref}")
    digest = digestfile.read_text().strip()
    assert digest.startswith("sha256:")

    s = basic_session()
    r = s.get(f"{server.url}/v2/library/pb/manifests/1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest
    manifest = r.json()
    assert manifest["mediaType"] == OCI_MANIFEST and len(manifest["layers"]) == 1
    config_digest = manifest["config"]["digest"]

    # Pull anonymously (library is public) into a fresh podman store.
    engines.podman("pull", "--tls-verify=false", "--signature-policy", engines.dir / "policy.json", ref)
    info = json.loads(engines.podman("image", "inspect", ref).stdout)[0]
    assert info["Digest"] == digest
    assert f"{server.host}/library/pb@{digest}" in info["RepoDigests"]
    assert "sha256:" + info["Id"] == config_digest
    assert info["Labels"]["org.example.e2e"] == "podman"


def test_podman_login_logout(server, engines):
    host = server.host
    p = engines.podman("login", "--tls-verify=false", "-u", "admin", "--password-stdin", host, input=ADMIN_PASSWORD)
    assert "Login Succeeded" in p.stdout + p.stderr
    auths = json.loads(engines.authfile.read_text())["auths"]
    assert host in auths

    # The stored login is used by a push that passes no credentials.
    ctx = build_context(engines.dir)
    engines.podman("build", "-f", ctx / "Containerfile", "-t", f"{host}/library/login:1", ctx)
    engines.podman("push", "--tls-verify=false", "--signature-policy", engines.dir / "policy.json",
                   f"{host}/library/login:1")
    assert basic_session().head(f"{server.url}/v2/library/login/manifests/1").status_code == 200

    engines.podman("logout", host)
    assert host not in json.loads(engines.authfile.read_text()).get("auths", {})
    engines.podman("tag", f"{host}/library/login:1", f"{host}/library/login:2")
    p = engines.podman("push", "--tls-verify=false", "--signature-policy", engines.dir / "policy.json",
                       f"{host}/library/login:2", check=False)
    assert p.returncode != 0, "push after logout succeeded"
    assert any(w in p.stderr.lower() for w in ("unauthorized", "denied", "authentication required")), p.stderr
    assert basic_session().head(f"{server.url}/v2/library/login/manifests/2").status_code == 404

    p = engines.podman("login", "--tls-verify=false", "-u", "admin", "--password-stdin", host,
                       input="wrong-" + ADMIN_PASSWORD, check=False)
    assert p.returncode != 0, "login with a wrong password succeeded"
    assert host not in json.loads(engines.authfile.read_text()).get("auths", {})

"""Real docker and podman logins as a project member, a robot and with a personal
access token: each pushes and pulls what it may and is refused what it may not."""

import os
import secrets

import pytest

from conftest import ADMIN_PASSWORD, basic_session, need, run

DEV_PW = "Dev-Passw0rd!"


@pytest.fixture(scope="module")
def world(server):
    """Projects `team` (private; dev is a developer) and `vault` (private; dev is a guest),
    a project robot on team, and a personal access token of dev limited to pull."""
    admin = basic_session()
    api = f"{server.url}/api/v2.0"
    r = admin.post(f"{api}/users", json={"username": "dev", "email": "dev@example.com", "realname": "Dev", "password": DEV_PW})
    assert r.status_code == 201, r.text
    for name in ("team", "vault"):
        r = admin.post(f"{api}/projects", json={"project_name": name, "metadata": {"public": "false"}})
        assert r.status_code == 201, r.text
    for project, role in (("team", 2), ("vault", 3)):
        r = admin.post(f"{api}/projects/{project}/members", json={"role_id": role, "member_user": {"username": "dev"}})
        assert r.status_code == 201, r.text
    r = admin.post(f"{api}/robots", json={"name": "ci", "level": "project", "duration": -1, "permissions": [
        {"kind": "project", "namespace": "team", "access": [{"resource": "repository", "action": "push"}]}]})
    assert r.status_code == 201, r.text
    robot = (r.json()["name"], r.json()["secret"])
    dev = basic_session("dev", DEV_PW)
    r = dev.post(f"{server.url}/api/berth/v1/users/current/tokens", json={"name": "laptop", "actions": ["pull"]})
    assert r.status_code == 201, r.text
    pat = ("dev", r.json()["token"])
    return {"dev": ("dev", DEV_PW), "robot": robot, "pat": pat}


def build(dockerd, cfg, ref, ctx):
    ctx.mkdir(exist_ok=True)
    (ctx / "f.bin").write_bytes(os.urandom(50_000) + secrets.token_bytes(8))
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY f.bin /\n")
    dockerd.run(["build", "-t", ref, str(ctx)], cfg)


@pytest.mark.parametrize("who", ["dev", "robot", "pat"])
def test_docker_logins(server, dockerd, world, tmp_path, who):
    user, secret = world[who]
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    dockerd.run(["login", server.host, "-u", user, "--password-stdin"], cfg, input=secret)
    team_ref = f"{server.host}/team/app-{who}:1"
    build(dockerd, cfg, team_ref, tmp_path / "ctx")
    push = dockerd.run(["push", team_ref], cfg, check=False)
    if who == "pat":
        # The token is limited to pull.
        assert push.returncode != 0 and ("denied" in push.stderr + push.stdout or "unauthorized" in push.stderr + push.stdout), push.stderr
    else:
        assert push.returncode == 0, push.stderr
        dockerd.run(["rmi", team_ref], cfg)
        dockerd.run(["pull", team_ref], cfg)
    # Nobody here may push to vault (dev is only a guest there; the robot and token have no grant).
    vault_ref = f"{server.host}/vault/app-{who}:1"
    dockerd.run(["tag", team_ref, vault_ref], cfg, check=False)
    if dockerd.run(["image", "inspect", vault_ref], cfg, check=False).returncode != 0:
        build(dockerd, cfg, vault_ref, tmp_path / "ctx2")
    refused = dockerd.run(["push", vault_ref], cfg, check=False, timeout=120)
    assert refused.returncode != 0, refused.stdout
    out = refused.stderr + refused.stdout
    assert "denied" in out or "unauthorized" in out or "authentication required" in out, out


def test_podman_login_with_robot_and_token(server, world, tmp_path):
    need("podman")
    env = {"REGISTRY_AUTH_FILE": str(tmp_path / "auth.json"), "XDG_RUNTIME_DIR": str(tmp_path), "HOME": str(tmp_path)}
    (tmp_path / "auth.json").write_text('{"auths": {}}')
    for who in ("robot", "pat"):
        user, secret = world[who]
        p = run(["podman", "login", "--tls-verify=false", "-u", user, "--password-stdin", server.host], env=env, input=secret, check=False)
        assert p.returncode == 0, p.stderr
    p = run(["podman", "login", "--tls-verify=false", "-u", "dev", "--password-stdin", server.host], env=env, input="wrong-password", check=False)
    assert p.returncode != 0
    admin = basic_session("admin", ADMIN_PASSWORD)
    assert admin.get(f"{server.url}/api/v2.0/ping").text == "Pong"

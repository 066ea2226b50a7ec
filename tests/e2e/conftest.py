"""Shared helpers of Berth's end-to-end suite: the server under test, registry
HTTP helpers (blobs, manifests, tokens), subprocess helpers for real clients and
a private Docker daemon.

Every server runs on a free loopback port with its own temporary data directory
and is stopped by its pid; every temporary directory is removed afterwards.
"""

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
BERTH_BIN = os.environ.get("BERTH_BIN") or str(ROOT / "target" / "release" / "berth")
ADMIN_PASSWORD = "E2e-" + secrets.token_hex(8)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

_live_servers = []


# --- small utilities ------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def digest_of(data: bytes, algorithm: str) -> str:
    return f"{algorithm}:" + hashlib.new(algorithm, data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(tool: str) -> str:
    """The path of a client binary; the test FAILS (never skips) when it is missing."""
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"required client {tool!r} is not installed (PATH={os.environ.get('PATH')})", pytrace=False)
    return path


def run(cmd, env=None, input=None, check=True, timeout=600, cwd=None):
    """Runs a client command; on an unexpected exit code fails with its whole output."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.run(
        [str(c) for c in cmd], env=full_env, input=input, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    if check and p.returncode != 0:
        pytest.fail(
            f"command failed with exit code {p.returncode}: {' '.join(map(str, cmd))}\n"
            f"--- stdout ---\n{p.stdout}\n--- stderr ---\n{p.stderr}",
            pytrace=False,
        )
    return p


def mkdtemp(prefix="berth-e2e-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture
def tmpdir_clean():
    d = mkdtemp()
    yield d
    shutil.rmtree(d, ignore_errors=True)


# --- the server under test ------------------------------------------------------------


class Server:
    """One `berth serve` process on a free loopback port."""

    def __init__(self, data: Path, args=(), password=ADMIN_PASSWORD):
        self.data = Path(data)
        self.args = list(args)
        self.password = password
        self.proc = None
        self.port = None
        self.log_path = self.data.parent / f"{self.data.name}.log"

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"http://{self.host}"

    @property
    def pid(self):
        return self.proc.pid

    def start(self, args=None):
        if not os.access(BERTH_BIN, os.X_OK):
            pytest.fail(f"berth binary not found at {BERTH_BIN}: build it with cargo build --release -p berth", pytrace=False)
        if args is not None:
            self.args = list(args)
        for attempt in range(5):
            if attempt > 0 or self.port is None:  # a restart keeps its port (clients keep their URLs)
                self.port = free_port()
            env = dict(os.environ, BERTH_ADMIN_PASSWORD=self.password)
            log_start = len(self.log())
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [BERTH_BIN, "serve", "--listen", self.host, "--data", str(self.data), *self.args],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready():
                if self not in _live_servers:
                    _live_servers.append(self)
                return self
            if self.proc.poll() is None:
                self.kill()
            if "cannot listen" not in self.log()[log_start:]:  # retry on another port only if taken
                break
        pytest.fail(f"berth did not start on {self.host}:\n{self.log()[-4000:]}", pytrace=False)

    def _wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                r = requests.get(self.url + "/v2/", timeout=2)
                if r.status_code == 401:
                    return True
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        return False

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=40):
        """Signals the server by pid and waits; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self in _live_servers:
            _live_servers.remove(self)
        return self.proc.returncode

    def kill(self):
        return self.stop(signal.SIGKILL)

    def status(self) -> dict:
        """Fields of /proc/<pid>/status in kB (VmRSS, VmHWM, ...)."""
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if v.strip().endswith("kB"):
                    out[k] = int(v.split()[0])
        return out


@pytest.fixture
def make_server():
    """Factory: make_server(args=[...]) starts a fresh server; all are stopped and removed after the test."""
    made = []

    def make(args=(), password=ADMIN_PASSWORD):
        parent = mkdtemp("berth-srv-")
        s = Server(parent / "data", args, password)
        made.append((s, parent))
        return s.start()

    yield make
    for s, parent in made:
        s.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def server():
    """One server for a whole test module."""
    parent = mkdtemp("berth-srv-")
    s = Server(parent / "data").start()
    yield s
    s.stop()
    shutil.rmtree(parent, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for s in list(_live_servers):
            rep.sections.append((f"berth log {s.host}", s.log()[-6000:]))


# --- HTTP helpers ---------------------------------------------------------------------


def basic_session(user="admin", password=ADMIN_PASSWORD) -> requests.Session:
    s = requests.Session()
    s.auth = (user, password)
    return s


def get_token(server, scope, user="admin", password=ADMIN_PASSWORD):
    auth = (user, password) if user else None
    r = requests.get(f"{server.url}/service/token", params={"service": "harbor-registry", "scope": scope}, auth=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"] and body["access_token"] == body["token"]
    return body["token"]


def token_session(server, repos, user="admin", password=ADMIN_PASSWORD) -> requests.Session:
    """A session carrying a Bearer token for pull,push,delete on each of `repos`."""
    scopes = " ".join(f"repository:{r}:pull,push,delete" for r in repos)
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + get_token(server, scopes, user, password)
    return s


def errors_of(r) -> list:
    """The error codes of an OCI error body."""
    try:
        return [e["code"] for e in r.json()["errors"]]
    except (ValueError, KeyError, TypeError):
        return []


def absolute(server, r) -> str:
    loc = r.headers.get("Location")
    assert loc, f"no Location header in {r.status_code} response: {dict(r.headers)}"
    return urljoin(server.url + "/", loc)


def start_upload(sess, server, repo) -> str:
    r = sess.post(f"{server.url}/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, f"{r.status_code} {r.text}"
    return absolute(server, r)


def put_url(loc: str, digest: str) -> str:
    return loc + ("&" if "?" in loc else "?") + "digest=" + digest


def push_blob(sess, server, repo, data: bytes, algorithm="sha256") -> str:
    """POST a session then PUT the whole blob; returns its digest."""
    d = digest_of(data, algorithm)
    r = sess.put(put_url(start_upload(sess, server, repo), d), data=data,
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, f"{r.status_code} {r.text}"
    assert r.headers.get("Docker-Content-Digest") == d
    return d


def push_blob_monolithic(sess, server, repo, data, digest) -> requests.Response:
    """Single POST with ?digest= (data may be bytes or a generator)."""
    return sess.post(f"{server.url}/v2/{repo}/blobs/uploads/", params={"digest": digest}, data=data,
                     headers={"Content-Type": "application/octet-stream"})


def descriptor(media_type, data: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def canonical(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def image_manifest(config: bytes, layers, config_type=OCI_CONFIG, layer_type=OCI_LAYER_GZIP, **extra) -> bytes:
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(config_type, config),
         "layers": [descriptor(layer_type, l) for l in layers], **extra}
    return canonical(m)


def put_manifest(sess, server, repo, ref, body: bytes, media_type=OCI_MANIFEST) -> requests.Response:
    return sess.put(f"{server.url}/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media_type})


def push_image(sess, server, repo, tag, layers=None, config=None):
    """Pushes blobs and an OCI image manifest; returns (manifest digest, manifest bytes)."""
    layers = layers if layers is not None else [os.urandom(1024)]
    config = config if config is not None else canonical({"architecture": "amd64", "os": "linux",
                                                           "rootfs": {"type": "layers", "diff_ids": []},
                                                           "nonce": secrets.token_hex(8)})
    for b in [config, *layers]:
        push_blob(sess, server, repo, b)
    body = image_manifest(config, layers)
    r = put_manifest(sess, server, repo, tag, body)
    assert r.status_code == 201, f"{r.status_code} {r.text}"
    assert r.headers["Docker-Content-Digest"] == sha256(body)
    return sha256(body), body


# --- a private Docker daemon ----------------------------------------------------------


class Docker:
    def __init__(self, root: Path):
        self.root = root
        self.sock = root / "docker.sock"
        self.proc = None

    def env(self, config_dir):
        return {"DOCKER_HOST": f"unix://{self.sock}", "DOCKER_CONFIG": str(config_dir), "DOCKER_BUILDKIT": "0"}

    def run(self, args, config_dir, check=True, input=None, timeout=600):
        return run(["docker", *args], env=self.env(config_dir), check=check, input=input, timeout=timeout)


@pytest.fixture(scope="session")
def dockerd():
    need("dockerd")
    need("docker")
    root = mkdtemp("berth-dk-")
    d = Docker(root)
    log = open(root / "dockerd.log", "wb")
    d.proc = subprocess.Popen(
        ["dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
         "--data-root", root / "root", "--exec-root", root / "exec", "--pidfile", root / "pid",
         "--host", f"unix://{d.sock}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    cfg = root / "probe-config"
    cfg.mkdir()
    deadline = time.time() + 90
    while True:
        if d.proc.poll() is not None or time.time() > deadline:
            pytest.fail(f"dockerd did not start:\n{(root / 'dockerd.log').read_text()[-4000:]}", pytrace=False)
        if d.run(["version"], cfg, check=False, timeout=30).returncode == 0:
            break
        time.sleep(0.5)
    yield d
    containerd_pid = root / "exec" / "containerd" / "containerd.pid"
    cpid = int(containerd_pid.read_text().strip()) if containerd_pid.exists() else None
    d.proc.terminate()
    try:
        d.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        d.proc.kill()
        d.proc.wait()
    if cpid:  # dockerd stops its containerd; make sure ours (and only ours) is gone
        for _ in range(20):
            try:
                cmdline = Path(f"/proc/{cpid}/cmdline").read_bytes()
            except FileNotFoundError:
                break
            if str(root).encode() not in cmdline:
                break
            time.sleep(0.5)
        else:
            os.kill(cpid, signal.SIGKILL)
    log.close()
    shutil.rmtree(root, ignore_errors=True)

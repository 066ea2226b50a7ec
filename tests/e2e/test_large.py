"""1 GiB blobs, pushed monolithically and in 16 MiB chunks by streaming
generators (never held in memory), pulled back with digest verification and
by Range, while the server's resident memory is sampled."""

import hashlib
import random
import shutil
import tempfile
import threading
import time

import pytest

from conftest import absolute, basic_session, push_blob_monolithic, put_url, start_upload

GiB = 1 << 30
MiB = 1 << 20
PIECE = MiB
CHUNK = 16 * MiB
RSS_LIMIT_MIB = 200
REPO = "library/large"

pytestmark = pytest.mark.slow


class Content:
    """1 GiB of deterministic content made of 1 MiB pieces, each distinct."""

    def __init__(self, seed, size=GiB):
        self.base = random.Random(seed).randbytes(PIECE)
        self.size = size
        self.digest = None

    def piece(self, k):
        return k.to_bytes(8, "big") + self.base[8:]

    def pieces(self, first=0, last=None):
        for k in range(first, (self.size // PIECE) if last is None else last):
            yield self.piece(k)

    def slice(self, start, end):
        """Bytes start..end inclusive."""
        out = bytearray()
        for k in range(start // PIECE, end // PIECE + 1):
            out += self.piece(k)
        off = (start // PIECE) * PIECE
        return bytes(out[start - off:end - off + 1])

    def compute_digest(self):
        h = hashlib.sha256()
        for p in self.pieces():
            h.update(p)
        self.digest = "sha256:" + h.hexdigest()
        return self.digest


class Reader:
    """A file-like body of known length (requests then sends Content-Length, not chunked)."""

    def __init__(self, pieces, length):
        self.it, self.length, self.buf = pieces, length, b""

    def __len__(self):
        return self.length

    def read(self, n=-1):
        while n < 0 or len(self.buf) < n:
            nxt = next(self.it, None)
            if nxt is None:
                break
            self.buf += nxt
        n = len(self.buf) if n < 0 else n
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class RssSampler(threading.Thread):
    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.peak_kb, self.stop_flag = server, 0, threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            try:
                self.peak_kb = max(self.peak_kb, self.server.status().get("VmRSS", 0))
            except FileNotFoundError:
                return
            time.sleep(0.05)

    def finish(self):
        self.stop_flag.set()
        self.join()
        return max(self.peak_kb, self.server.status().get("VmHWM", 0)) / 1024


def pull_and_verify(s, server, content):
    r = s.get(f"{server.url}/v2/{REPO}/blobs/{content.digest}", stream=True)
    assert r.status_code == 200, r.text
    assert r.headers["Docker-Content-Digest"] == content.digest
    assert int(r.headers["Content-Length"]) == content.size
    h, n = hashlib.sha256(), 0
    for part in r.iter_content(MiB):
        h.update(part)
        n += len(part)
    assert n == content.size
    assert "sha256:" + h.hexdigest() == content.digest


def test_one_gib_blobs(server):
    free = shutil.disk_usage(server.data).free
    if free < 4 * GiB:
        pytest.fail(f"need 4 GiB free under {server.data} for the 1 GiB blob test, have {free / GiB:.1f} GiB",
                    pytrace=False)
    if shutil.disk_usage(tempfile.gettempdir()).free < 4 * GiB:
        pytest.fail(f"need 4 GiB free in {tempfile.gettempdir()}", pytrace=False)
    s = basic_session()
    sampler = RssSampler(server)
    sampler.start()
    t0 = time.time()

    mono = Content(seed=1)
    mono.compute_digest()
    r = push_blob_monolithic(s, server, REPO, mono.pieces(), mono.digest)  # chunked transfer encoding
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == mono.digest
    t_mono = time.time()

    chunked = Content(seed=2)
    chunked.compute_digest()
    loc = start_upload(s, server, REPO)
    per = CHUNK // PIECE
    for i in range(GiB // CHUNK):
        start, end = i * CHUNK, (i + 1) * CHUNK - 1
        r = s.patch(loc, data=Reader(chunked.pieces(i * per, (i + 1) * per), CHUNK),
                    headers={"Content-Range": f"{start}-{end}", "Content-Type": "application/octet-stream"})
        assert r.status_code == 202, f"chunk {i}: {r.status_code} {r.text}"
        assert r.headers["Range"] == f"0-{end}"
        loc = absolute(server, r)
    r = s.put(put_url(loc, chunked.digest))
    assert r.status_code == 201, r.text
    t_chunked = time.time()

    for content in (mono, chunked):
        pull_and_verify(s, server, content)
    t_pull = time.time()

    for spec, (a, b) in [(f"bytes={300 * MiB + 12345}-{305 * MiB + 999}", (300 * MiB + 12345, 305 * MiB + 999)),
                         ("bytes=-1000", (GiB - 1000, GiB - 1)),
                         (f"bytes={GiB - 10}-", (GiB - 10, GiB - 1))]:
        r = s.get(f"{server.url}/v2/{REPO}/blobs/{chunked.digest}", headers={"Range": spec})
        assert r.status_code == 206, f"{spec}: {r.status_code}"
        assert r.headers["Content-Range"] == f"bytes {a}-{b}/{GiB}"
        assert r.content == chunked.slice(a, b), spec
    r = s.get(f"{server.url}/v2/{REPO}/blobs/{chunked.digest}", headers={"Range": f"bytes={GiB}-"})
    assert r.status_code == 416

    peak = sampler.finish()
    print(f"\n1 GiB monolithic push {t_mono - t0:.1f} s, chunked push {t_chunked - t_mono:.1f} s, "
          f"two pulls {t_pull - t_chunked:.1f} s; server peak RSS {peak:.1f} MiB")
    assert peak < RSS_LIMIT_MIB, f"server peak RSS {peak:.1f} MiB >= {RSS_LIMIT_MIB} MiB"

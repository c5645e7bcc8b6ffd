"""URL sources against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import pytest

from sigeo.data.download import download
from sigeo.errors import DataError


@pytest.fixture
def server(tmp_path):
    (tmp_path / "www").mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield tmp_path / "www", f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_verifies_sha256(server, tmp_path):
    www, url = server
    payload = b"1\t2\t3\n" * 1000
    (www / "train.txt").write_bytes(payload)
    good = hashlib.sha256(payload).hexdigest()
    dest = download(f"{url}/train.txt", good, tmp_path / "got" / "train.txt")
    assert dest.read_bytes() == payload


def test_wrong_checksum_leaves_no_file(server, tmp_path):
    www, url = server
    (www / "train.txt").write_bytes(b"data\n")
    with pytest.raises(DataError, match="does not match the configured"):
        download(f"{url}/train.txt", "0" * 64, tmp_path / "got" / "train.txt")
    assert not list((tmp_path / "got").iterdir())


def test_missing_file_on_server(server, tmp_path):
    _, url = server
    with pytest.raises(DataError, match="download failed"):
        download(f"{url}/absent.txt", "0" * 64, tmp_path / "x")


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD the way ``self.server.mode`` says: cut short, chunked and cut, or paused halfway."""

    def do_GET(self) -> None:
        mode, half = self.server.mode, len(PAYLOAD) // 2
        self.send_response(200)
        if mode == "chunked-cut":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n" % (half, PAYLOAD[:half]))  # no terminating chunk
            return
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[:half])
        self.wfile.flush()
        if mode == "paused":
            self.server.halfway.set()
            self.server.resume.wait(30)
            self.wfile.write(PAYLOAD[half:])
        # "cut": the connection closes after half the promised bytes

    def log_message(self, *args: object) -> None:
        pass


PAYLOAD = b"0\t1\t2\n" * 50_000


@pytest.fixture
def scripted():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    httpd.halfway, httpd.resume = threading.Event(), threading.Event()
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}/train.txt"
    httpd.resume.set()
    httpd.shutdown()


@pytest.mark.parametrize(("mode", "message"), [("cut", "truncated: 150000 of 300000 bytes"), ("chunked-cut", "failed")])
def test_truncated_body_leaves_no_file(scripted, tmp_path, mode, message):
    httpd, url = scripted
    httpd.mode = mode
    with pytest.raises(DataError, match=message):
        download(url, hashlib.sha256(PAYLOAD).hexdigest(), tmp_path / "got" / "train.txt")
    assert not list((tmp_path / "got").iterdir())


def test_file_is_invisible_until_verified(scripted, tmp_path):
    """Half-way through, the destination does not exist (only a hidden temporary file does)."""
    httpd, url = scripted
    httpd.mode = "paused"
    dest = tmp_path / "got" / "train.txt"
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(download(url, hashlib.sha256(PAYLOAD).hexdigest(), dest)))
    worker.start()
    assert httpd.halfway.wait(30)
    assert not dest.exists()
    assert [p.name.startswith(".train.txt.") for p in dest.parent.iterdir()] == [True]
    httpd.resume.set()
    worker.join(30)
    assert result == [dest] and dest.read_bytes() == PAYLOAD

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
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
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

"""Downloads against a loopback HTTP server serving archives built in the test."""

import hashlib
import io
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from segkit.cli import download as download_cli
from segkit.data import download as dl
from segkit.data import voc_split
from segkit.data.download import Archive, download, fetch_all


class _Handler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    cut_first: set[str] = set()  # paths whose first response is cut in half
    stall_first: set[str] = set()  # first response: half the body, no Content-Length, then silence
    ignore_range: set[str] = set()  # answer 200 with the whole body even when a Range is asked
    wrong_offset: set[str] = set()  # answer a Range with 206 but from byte 0 (a broken server)
    log: list[tuple[str, str | None]] = []

    def do_GET(self):  # noqa: N802 (http.server API)
        body = self.files.get(self.path)
        rng = self.headers.get("Range")
        self.log.append((self.path, rng))
        if body is None:
            self.send_error(404)
            return
        if self.path in self.stall_first:
            self.stall_first.discard(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(1.5)  # longer than the client's timeout
            self.close_connection = True
            return
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        if self.path in self.ignore_range:
            start = 0
        if rng and self.path in self.wrong_offset:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{len(body)}")
            start = 0
        else:
            self.send_response(206 if rng and start else 200)
            if rng and start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if self.path in self.cut_first:
            self.cut_first.discard(self.path)
            payload = payload[: len(payload) // 2]
            self.close_connection = True
        self.wfile.write(payload)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    _Handler.files, _Handler.log = {}, []
    _Handler.cut_first, _Handler.stall_first = set(), set()
    _Handler.ignore_range, _Handler.wrong_offset = set(), set()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield _Handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _tar_of(folder, arcname, mode="w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        tar.add(folder, arcname=arcname)
    return buf.getvalue()


def _serve(handler, base, path, body, md5=None, creates="VOCdevkit/VOC2012") -> Archive:
    handler.files[path] = body
    return Archive(f"{base}{path}", path.lstrip("/"), md5 or hashlib.md5(body).hexdigest(), creates)


def test_good_archives_download_extract_and_build_trainaug(server, voc_root, tmp_path, make_sbd):
    handler, base = server
    make_sbd(voc_root, ["sbd_1"], ["sbd_2"])
    voc = _serve(handler, base, "/voc.tar", _tar_of(voc_root / "VOCdevkit", "VOCdevkit"))
    sbd = _serve(
        handler,
        base,
        "/sbd.tgz",
        _tar_of(voc_root / "benchmark_RELEASE", "benchmark_RELEASE", "w:gz"),
        creates="benchmark_RELEASE/dataset",
    )
    out = tmp_path / "out"
    counts = fetch_all(out, archives={"voc2012": voc, "sbd": sbd})
    assert counts["trainaug"] == 8
    assert len(voc_split(out, "val", num_classes=5)) == 3
    assert (out / "voc.tar").is_file() and not (out / "voc.tar.part").exists()
    requests = len(handler.log)
    fetch_all(out, archives={"voc2012": voc, "sbd": sbd})  # everything present: no new requests
    assert len(handler.log) == requests
    # a half-finished extraction (marker left behind) is redone from the verified archive
    (out / ".voc.tar.extracting").touch()
    (out / "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt").unlink()
    fetch_all(out, archives={"voc2012": voc, "sbd": sbd})
    assert len(voc_split(out, "val", num_classes=5)) == 3 and len(handler.log) == requests


def test_wrong_checksum_deletes_download_and_says_so(server, tmp_path):
    handler, base = server
    archive = _serve(handler, base, "/bad.tar", b"x" * 1000, md5="0" * 32)
    with pytest.raises(
        ValueError,
        match=r"checksum mismatch for http://127\.0\.0\.1:\d+/bad\.tar: expected MD5 0{32}",
    ):
        download(archive, tmp_path)
    assert not (tmp_path / "bad.tar").exists() and not (tmp_path / "bad.tar.part").exists()


def _interrupted(server, tmp_path, name: str, faults: tuple[str, ...], match: str, **kw):
    """Serve a 100 KiB body at ``/<name>`` whose first transfer fails (``faults``: attributes of
    the handler); the failed download must keep the half it got as ``<name>.part``."""
    handler, base = server
    body = bytes(range(256)) * 400
    archive = _serve(handler, base, f"/{name}", body)
    for fault in faults:
        getattr(handler, fault).add(f"/{name}")
    with pytest.raises(ConnectionError, match=match):
        download(archive, tmp_path, **kw)
    assert (tmp_path / f"{name}.part").stat().st_size == len(body) // 2
    return handler, archive, body


def test_interrupted_transfer_keeps_part_and_resumes(server, tmp_path):
    match = r"interrupted at 51200 of 102400 bytes.*rerun the same command to resume"
    handler, archive, body = _interrupted(server, tmp_path, "big.tar", ("cut_first",), match)
    path = download(archive, tmp_path)
    assert handler.log[-1] == ("/big.tar", f"bytes={len(body) // 2}-")
    assert path.read_bytes() == body


@pytest.mark.parametrize("server_fault", ["ignore_range", "wrong_offset"])
def test_resume_falls_back_to_a_fresh_download(server, tmp_path, server_fault):
    # a server that ignores the Range, or answers it from the wrong byte, must not corrupt the file
    faults = ("cut_first", server_fault)
    match = "rerun the same command to resume"
    handler, archive, body = _interrupted(server, tmp_path, "r.tar", faults, match)
    assert download(archive, tmp_path).read_bytes() == body  # MD5 verified inside download()
    assert handler.log[1] == ("/r.tar", f"bytes={len(body) // 2}-")


def test_stalled_transfer_without_length_keeps_part(server, tmp_path):
    # no Content-Length, so only the read timeout shows the cut: the bytes are kept, not deleted
    match = r"interrupted at 51200 bytes \(\w*Timeout\w*\).*kept: rerun"
    handler, archive, body = _interrupted(
        server, tmp_path, "s.tar", ("stall_first",), match, timeout=0.5
    )
    assert download(archive, tmp_path).read_bytes() == body
    assert handler.log[-1] == ("/s.tar", f"bytes={len(body) // 2}-")


def test_cli_reports_one_line_error(server, tmp_path, monkeypatch, capsys):
    handler, base = server
    monkeypatch.setitem(
        dl.ARCHIVES, "voc2012", _serve(handler, base, "/v.tar", b"abc", md5="1" * 32)
    )
    assert download_cli.voc(["--root", str(tmp_path), "--no-sbd"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    # the download's progress record (one line when not a terminal), then the error, one line
    assert lines[0].startswith("downloading v.tar: 3/3 B in ")
    assert len(lines) == 2 and lines[1].startswith("error: checksum mismatch")


def test_unreachable_server(tmp_path):
    archive = Archive("http://127.0.0.1:9/none.tar", "none.tar", "0" * 32, "x")
    with pytest.raises(ConnectionError, match=r"cannot reach http://127\.0\.0\.1:9/none\.tar"):
        download(archive, tmp_path, timeout=5)

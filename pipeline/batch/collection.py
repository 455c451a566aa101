"""A collection of videos for `detstream batch`: directories, globs and list files.

Each input expands to files, and each file gets a relative path (`rel`) that is its
source id in messages and its place under the output folder, so the output tree mirrors
the input tree:

- a directory: every file below it whose extension is a video extension; rel is the
  path inside the directory (`videos/` -> `day1/cam2.mp4`);
- a glob (`videos/**/*.mp4`): rel is the path below the pattern's fixed prefix;
- a text file (`.txt`, `.list`): one path or URL per line, `#` comments; relative paths
  are relative to the list file, rel is the path below the listed files' common folder,
  a URL's rel is its host and path;
- a single video file: rel is its name.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from pipeline.core.errors import ConfigError
from pipeline.core.secrets import mask_url

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".ts", ".mts", ".flv", ".mpg", ".mpeg", ".wmv")
LIST_EXTENSIONS = (".txt", ".list", ".lst")
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class FileTask:
    """One input of the collection."""

    uri: str  # what the decoder opens: an absolute path or a URL
    rel: str  # POSIX relative path: the source id and the output location

    @property
    def is_url(self) -> bool:
        return "://" in self.uri


@dataclass(frozen=True)
class FileStat:
    """What tells a changed input from the one already processed (None for URLs)."""

    size: int | None
    mtime_ns: int | None


def stat_of(task: FileTask) -> FileStat:
    if task.is_url:
        return FileStat(None, None)
    try:
        st = os.stat(task.uri)
    except OSError:
        return FileStat(None, None)  # the decoder reports the missing file
    return FileStat(st.st_size, st.st_mtime_ns)


def expand(inputs: list[str], extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> list[FileTask]:
    """Every file of every input, in a stable order, each path once.

    Two different files that would land on the same output path are an error: their
    results would overwrite each other.
    """
    extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
    tasks: list[FileTask] = []
    for spec in inputs:
        tasks.extend(_expand_one(spec, extensions))
    seen_uri: set[str] = set()
    by_rel: dict[str, str] = {}
    unique: list[FileTask] = []
    for task in tasks:
        if task.uri in seen_uri:
            continue
        seen_uri.add(task.uri)
        if task.rel in by_rel:
            raise ConfigError(
                f"{by_rel[task.rel]} and {task.uri} would both write results to {task.rel}: "
                "give them as one directory, or process them in separate runs"
            )
        by_rel[task.rel] = task.uri
        unique.append(task)
    return unique


def _expand_one(spec: str, extensions: tuple[str, ...]) -> list[FileTask]:
    if "://" in spec:
        return [_url_task(spec)]
    path = Path(spec)
    if path.is_dir():
        try:
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
        except OSError as exc:  # a folder below it we may not read
            raise ConfigError(f"{spec}: cannot scan this folder: {exc}") from None
        if not files:
            raise ConfigError(f"{spec}: no video files here (extensions: {' '.join(extensions)})")
        return [_file_task(p, path) for p in files]
    if _GLOB_CHARS & set(spec):
        matches = sorted(Path(m) for m in glob.glob(spec, recursive=True) if Path(m).is_file())
        if not matches:
            raise ConfigError(f"{spec}: the pattern matches no file")
        return [_file_task(p, _glob_root(spec)) for p in matches]
    if path.is_file() and path.suffix.lower() in LIST_EXTENSIONS:
        return _list_tasks(path)
    if path.is_file():
        return [_file_task(path, path.parent)]
    raise ConfigError(f"{spec}: no such file, directory or pattern")


def _file_task(path: Path, root: Path) -> FileTask:
    absolute = path.absolute()
    try:
        rel = absolute.relative_to(root.absolute()).as_posix()
    except ValueError:  # cannot happen for paths found under root; said clearly if it does
        raise ConfigError(f"{path}: not under {root}, so it has no place under the output folder") from None
    return FileTask(str(absolute), rel)


def _url_task(url: str) -> FileTask:
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # `http://[x`: a bad IPv6 host
        raise ConfigError(f"{mask_url(url)}: not a valid URL ({exc})") from None
    # host and path only: credentials and query strings never become file names, and no
    # part may climb out of the output folder (`http://../x.mp4` has the host '..')
    host = parts.hostname if parts.hostname not in (None, "", ".", "..") else "url"
    rel = PurePosixPath(host, *[p for p in parts.path.split("/") if p not in ("", ".", "..")])
    return FileTask(url, rel.as_posix())


def _glob_root(pattern: str) -> Path:
    """The folder before the first path part with a wildcard in it."""
    fixed = []
    for part in Path(pattern).parts:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _list_tasks(list_file: Path) -> list[FileTask]:
    urls: list[str] = []
    paths: list[Path] = []
    try:
        text = list_file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{list_file}: cannot read this list file: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if any(ord(c) < 32 for c in entry):  # a NUL cuts the name FFmpeg sees
            raise ConfigError(f"{list_file}:{number}: a control character in {entry!r}")
        if "://" in entry:
            urls.append(entry)
            continue
        path = Path(entry) if Path(entry).is_absolute() else list_file.parent / entry
        # a missing file is kept: it fails alone in the run, listed with its reason
        # normpath keeps a leading '//' (POSIX allows it to mean something else): one '/'
        paths.append(Path("/" + os.path.normpath(path.absolute()).lstrip("/")))
    if not urls and not paths:
        raise ConfigError(f"{list_file}: the list names no file")
    root = Path(os.path.commonpath([str(p.parent) for p in paths])) if paths else Path(".")
    return [_file_task(p, root) for p in paths] + [_url_task(u) for u in urls]

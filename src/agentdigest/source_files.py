"""The files a source's ``files`` entries name: local globs and folders expanded as DuckDB and Spark read them
(hidden files and Spark's own ``_`` files left out, each file once), URLs as written, and the passwords those URLs
carry, which an engine's error may echo back."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from .errors import InputError
from .masking import mask_text, url_secrets


def _data_files(patterns: list[str]) -> list[str]:
    """The files ``files`` names: URLs as given, local patterns expanded (InputError when one matches none),
    each file once: one named by two entries (``["events/*", "events/date=1/x.parquet"]``, a folder and a file
    in it, two links to it) was read twice, its events doubled without a word (found in a review). A local
    file is known by its resolved real path and kept where it is first named; a URL by its text."""
    paths: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        if "://" in pattern:
            found = [pattern]
        else:
            found = local_files(pattern)
            if not found:
                what = "no file in the folder" if os.path.isdir(pattern) else "no file matches"
                raise InputError(mask_text(f"source.files: {what} {pattern!r}"))
        for path in found:
            key = path if "://" in path else os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                paths.append(path)
    return paths


def local_files(pattern: str) -> list[str]:
    """The files a local ``files`` entry names, as DuckDB reads them: a glob, where ``**`` matches any
    number of folders (``hive/**/*.parquet`` for ``month=11/day=23/`` folders; found by a new user, it
    matched nothing), or a folder, meaning every file under it but hidden ones and Spark's ``_SUCCESS``
    markers (``.`` and ``_`` names, as Spark skips them). A folder a glob matches is read the same way, as
    Spark reads it: ``events/*`` over ``date=…/`` folders read only the files beside them, silently, and
    ``out/*.parquet`` over the folders Spark writes found no file (found in a Spark audit)."""
    if os.path.isdir(pattern):
        # The folder's name escaped: a glob's folder named run[1] (or a partition value with [ or ?) read as a
        # pattern matched nothing, and its files were left out without a word (found in a review).
        return sorted(path for path in glob.glob(os.path.join(glob.escape(pattern), "**", "*"), recursive=True)
                      if os.path.isfile(path) and not any(map(_skipped, Path(os.path.relpath(path, pattern)).parts)))
    if not glob.has_magic(pattern) or os.path.isfile(pattern):  # a file named x[1].parquet, as DuckDB reads it
        return [pattern] if os.path.isfile(pattern) else []
    found: set[str] = set()
    for path in glob.glob(pattern, recursive=True):
        if os.path.isdir(path):
            if not _skipped(os.path.basename(path)):  # events/* beside a _delta_log/ or a write's _temporary/
                found.update(local_files(path))
        elif os.path.isfile(path) and not os.path.basename(path).startswith("_"):  # _SUCCESS beside the parts
            found.add(path)
    return sorted(found)


def _skipped(name: str) -> bool:
    """A file or folder name Spark leaves out when it reads a folder: hidden (``.``) or its own (``_SUCCESS``,
    ``_temporary/``, ``_delta_log/``); a partition folder ``_col=value`` is data. Found in a review: with only
    ``_`` file names skipped, ``events/*`` beside a ``_delta_log/`` folder read its JSON as Parquet and failed
    (exit 3), where it read the parts before a glob's folders were read as folders."""
    return name.startswith(".") or (name.startswith("_") and "=" not in name)


def file_secrets(patterns: list[str]) -> list[str]:
    """The passwords of file URLs (``s3a://key:secret@bucket/...``), which an engine's error may echo
    back outside the URL, where :func:`mask_text` would not recognise them."""
    return [secret for pattern in patterns for secret in url_secrets(pattern)]

"""File readers of the ``maxlik`` command line: CSV, .npy, .npz and Parquet.

``load_data`` turns a path into a float64 (rows x columns) array and its column
names; anything wrong with the file or its contents is a ``DataError``, which
the command line reports in one line with exit code 1.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import sys

import numpy as np

_NA_TOKENS = {"", "na", "nan", "n/a", "null", "none", "?"}


class DataError(Exception):
    """A problem with the user's data: reported in one line, exit code 1."""


def _bundled_faithful():
    from importlib import resources

    return resources.files("maxlik").joinpath("data", "faithful.csv")


def _select(names, spec, source):
    """Indices of the requested columns (names or 0-based indices)."""
    if spec is None:
        return list(range(len(names)))
    out = []
    for item in spec:
        if item in names:
            out.append(names.index(item))
        elif item.lstrip("-").isdigit() and -len(names) <= int(item) < len(names):
            out.append(int(item) % len(names))
        else:
            raise DataError(f"{source}: no column {item!r}; the columns are "
                            f"{', '.join(names)}")
    return out


def _is_number(cell):
    try:
        float(cell)
        return True
    except ValueError:
        return cell.strip().lower() in _NA_TOKENS


def _read_csv(path, source, columns):
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        raise DataError(f"{source}: not a text (CSV) file; use .csv, .npy, .npz or .parquet") from None
    if not text.strip():
        raise DataError(f"{source}: the file is empty")
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t| ")
    except csv.Error:
        dialect = csv.excel
    rows = [(i + 1, r) for i, r in enumerate(csv.reader(io.StringIO(text), dialect))]
    rows = [(ln, [c.strip() for c in r]) for ln, r in rows if any(c.strip() for c in r)]
    first = rows[0][1]
    # Header detection: the first row is a header if some column is text in
    # the first row but a number in the second (a text column of data does not
    # make a header), or, for a single row, if any of its cells is text.
    if len(rows) > 1:
        has_header = any(not _is_number(a) and _is_number(b)
                         for a, b in zip(first, rows[1][1]))
    else:
        has_header = not all(_is_number(c) for c in first)
    ncol = len(first)
    names = first if has_header else [f"x{j}" for j in range(ncol)]
    body = rows[1:] if has_header else rows
    if not body:
        raise DataError(f"{source}: no data rows")
    cols = _select(names, columns, source)
    data = np.empty((len(body), len(cols)), dtype=np.float64)
    for i, (ln, r) in enumerate(body):
        if len(r) != ncol:
            raise DataError(f"{source}: line {ln} has {len(r)} fields, expected {ncol}")
        for j, c in enumerate(cols):
            cell = r[c]
            try:
                data[i, j] = float(cell)
            except ValueError:
                if cell.lower() in _NA_TOKENS:
                    data[i, j] = np.nan
                else:
                    raise DataError(f"{source}: column {names[c]!r} is not numeric "
                                    f"(line {ln}: {cell!r}); choose numeric columns with "
                                    "--columns") from None
    return data, [names[c] for c in cols]


def _numeric_2d(arr, source, what="array"):
    if arr.dtype.names:
        names = list(arr.dtype.names)
        try:
            arr = np.stack([np.asarray(arr[n], dtype=np.float64) for n in names], axis=1)
        except (TypeError, ValueError):
            raise DataError(f"{source}: the {what} has non-numeric fields") from None
        return arr, names
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{source}: the {what} has dtype {arr.dtype}, expected numbers")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{source}: the {what} must be 1-D or 2-D (rows x columns); "
                        f"got shape {arr.shape}")
    return arr.astype(np.float64), [f"x{j}" for j in range(arr.shape[1])]


def _read_parquet(path, source, columns):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{source}: reading Parquet needs pyarrow (pip install pyarrow), "
                        "or convert the file to CSV") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"{source}: cannot read Parquet: {exc}") from None
    names = list(table.column_names)
    cols = _select(names, columns, source)
    out = np.empty((table.num_rows, len(cols)), dtype=np.float64)
    for j, c in enumerate(cols):
        try:
            col = table.column(c).to_numpy(zero_copy_only=False)
            out[:, j] = np.asarray(col, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{source}: column {names[c]!r} is not numeric; choose numeric "
                            "columns with --columns") from None
    return out, [names[c] for c in cols]


def load_data(path, *, columns=None, key=None, drop_na=False):
    """(X float64 (n, d), column names, display name) for the fit command.

    Raises DataError for anything wrong with the file or its contents.
    """
    if path is None:
        source = "faithful (bundled Old Faithful data)"
        with contextlib.ExitStack() as stack:
            from importlib import resources

            real = stack.enter_context(resources.as_file(_bundled_faithful()))
            X, names = _read_csv(real, source, columns)
    else:
        source = path
        if not os.path.exists(path):
            raise DataError(f"{path}: no such file")
        if os.path.isdir(path):
            raise DataError(f"{path}: is a directory, expected a data file")
        ext = os.path.splitext(path)[1].lower()
        if ext == ".npy":
            try:
                arr = np.load(path, allow_pickle=False)
            except Exception as exc:
                raise DataError(f"{path}: cannot read .npy: {exc}") from None
            X, names = _numeric_2d(arr, path)
            X = X[:, _select(names, columns, path)]
            names = [names[i] for i in _select(names, columns, path)]
        elif ext == ".npz":
            try:
                z = np.load(path, allow_pickle=False)
            except Exception as exc:
                raise DataError(f"{path}: cannot read .npz: {exc}") from None
            with z:
                keys = list(z.keys())
                if key is None:
                    if len(keys) != 1:
                        raise DataError(f"{path}: holds arrays {', '.join(keys) or '(none)'}; "
                                        "choose one with --key")
                    key = keys[0]
                elif key not in keys:
                    raise DataError(f"{path}: no array {key!r}; it holds {', '.join(keys)}")
                X, names = _numeric_2d(z[key], path, f"array {key!r}")
            sel = _select(names, columns, path)
            X, names = X[:, sel], [names[i] for i in sel]
        elif ext in (".parquet", ".pq"):
            X, names = _read_parquet(path, path, columns)
        else:
            X, names = _read_csv(path, path, columns)
    if X.shape[0] == 0:
        raise DataError(f"{source}: no data rows")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        n_bad = int(bad.sum())
        if not drop_na:
            first = int(np.argmax(bad))
            raise DataError(f"{source}: {n_bad} row(s) have missing or non-finite values "
                            f"(first: data row {first + 1}); pass --drop-na to drop them")
        X = X[~bad]
        print(f"maxlik: dropped {n_bad} row(s) with missing values", file=sys.stderr)
        if X.shape[0] == 0:
            raise DataError(f"{source}: no rows left after --drop-na")
    return np.ascontiguousarray(X), names, source

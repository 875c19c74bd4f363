"""File readers of the ``maxlik`` command line: CSV, .npy, .npz and Parquet.

``load_data`` turns a path into a float64 (rows x columns) array and its column
names; anything wrong with the file or its contents is a ``DataError``, which
the command line reports in one line with exit code 1.

CSV is read in blocks of about 4 MiB of text. Each block is parsed by a C
parser: pyarrow's CSV reader when pyarrow is installed, else ``np.loadtxt``
(C-implemented since numpy 1.23), with missing-value tokens rewritten to
``nan`` by one regular-expression pass when the plain parse fails. A block that
neither parses is read again by the exact (slow, per-cell) parser, which
defines the semantics and produces the error messages: line numbers, the
non-numeric column named. Parsed blocks go into memory, or, when the data
would take more than a quarter of the available memory (or more than
``MAXLIK_IN_MEMORY_LIMIT`` bytes), into a temporary memory-mapped file that
the estimators then fit out of core.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Sequence

import numpy as np

_NA_TOKENS = {"", "na", "nan", "n/a", "null", "none", "?"}
_BLOCK_BYTES = 1 << 22  # text per parsed block: bounded memory whatever the file size
_HEAD_BYTES = 1 << 16  # read to sniff the dialect and detect the header
_NOT_TEXT = "not a text (CSV) file; use .csv, .npy, .npz or .parquet"


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


# ----------------------------------------------------------------------------- CSV
class _Layout:
    """What the head of a CSV file says: dialect, header, columns, where data starts."""

    def __init__(self, dialect, names, cols, ncol, skip_lines, body_offset):
        self.dialect = dialect
        self.delimiter = dialect.delimiter
        self.quotechar = dialect.quotechar or '"'
        self.names = names  # all column names (the header's, or x0, x1, ...)
        self.cols = cols  # indices of the selected columns
        self.ncol = ncol
        self.skip_lines = skip_lines  # physical lines before the first data line
        self.body_offset = body_offset  # byte offset of the first data line


def _raw_blocks(fh):
    """(bytes of whole lines, number of lines before them) blocks of an open binary file."""
    rest = b""
    line0 = 0
    while True:
        chunk = fh.read(_BLOCK_BYTES)
        raw = rest + chunk
        if not raw:
            return
        if chunk:
            cut = raw.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a block: read on
                rest = raw
                continue
            raw, rest = raw[:cut], raw[cut:]
        else:
            rest = b""
        yield raw, line0
        if not chunk:
            return
        line0 += raw.count(b"\n")


def _decode(raw, source):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{source}: {_NOT_TEXT}") from None


def _csv_layout(path, source, columns):
    with open(path, "rb") as fh:
        # enough whole lines for the sniffer and the header test
        head = fh.read(_HEAD_BYTES)
        while True:
            more = fh.read(_HEAD_BYTES) if b"\n" not in head[-_HEAD_BYTES:] else b""
            if not more:
                break
            head += more
        if fh.read(1) and b"\n" in head:
            head = head[:head.rfind(b"\n") + 1]
    bom = head.startswith(b"\xef\xbb\xbf")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the head
            raise DataError(f"{source}: {_NOT_TEXT}") from None
        text = head[:exc.start].decode("utf-8-sig")
    if not text.strip():
        if len(head) < _HEAD_BYTES:
            raise DataError(f"{source}: the file is empty")
        raise DataError(f"{source}: no data in the first {len(head)} bytes")
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t| ")
    except csv.Error:
        dialect = csv.excel
    lines = text.split("\n")
    rows = []  # (physical line index, cells) of the first two non-blank rows
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        rows.append((i, [c.strip() for c in next(csv.reader([line.rstrip("\r")], dialect),
                                                  [])]))
        if len(rows) == 2:
            break
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
    cols = _select(names, columns, source)
    skip = rows[0][0] + 1 if has_header else 0
    offset = sum(len(ln.encode("utf-8")) + 1 for ln in lines[:skip]) + (3 if bom else 0)
    return _Layout(dialect, names, cols, ncol, skip, offset)


def _na_pattern(delim):
    """Fields holding a missing-value token (or nothing) in a block of lines."""
    d = re.escape(delim)
    pad = "[ \\t]".replace(delim, "") if delim in " \t" else "[ \\t]"
    tokens = "|".join(re.escape(t) for t in sorted(_NA_TOKENS - {""}, key=len, reverse=True))
    end = f"(?={d}|\\r?$)"
    return re.compile(
        f"(?:(?<={d})|^){pad}*(?:{tokens}){pad}*{end}"  # a token, anywhere
        f"|(?<={d}){pad}*{end}"  # an empty field after a delimiter
        f"|^{pad}*(?={d})",  # an empty first field
        re.IGNORECASE | re.MULTILINE)


def _loadtxt(data, lay, usecols):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "input contained no data" for an all-blank block
        return np.loadtxt(data, dtype=np.float64, delimiter=lay.delimiter, comments=None,
                          quotechar=lay.quotechar, usecols=usecols, ndmin=2)


def _fields_ok(raw, lay):
    """True if every line of `raw` has exactly ncol fields (unquoted text only)."""
    b = np.frombuffer(raw, np.uint8)
    if lay.quotechar.encode() in raw:
        return False
    ends = np.flatnonzero(b == 10)
    if not raw.endswith(b"\n"):
        ends = np.append(ends, len(b))
    delims = np.flatnonzero(b == ord(lay.delimiter))
    counts = np.diff(np.searchsorted(delims, ends), prepend=0)
    return bool((counts == lay.ncol - 1).all())


def _parse_fast(raw, lay, pattern):
    """The block parsed by np.loadtxt, or None where the exact parser must decide.

    First as it is (numpy's C reader decodes the bytes itself), then, if that
    fails, with the missing-value tokens rewritten to nan.
    """
    subset = sorted(set(lay.cols)) != list(range(lay.ncol))
    usecols = sorted(set(lay.cols)) if subset else None
    if subset and not _fields_ok(raw, lay):
        return None
    arr = None
    try:
        arr = _loadtxt(io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"), lay, usecols)
    except ValueError:  # a non-number (or invalid UTF-8: _decode reports it)
        with contextlib.suppress(ValueError):
            arr = _loadtxt(pattern.sub("nan", _decode(raw, "")).split("\n"), lay, usecols)
    if arr is None:
        return None
    if arr.shape[0] == 0:
        return np.empty((0, len(lay.cols)))
    if not subset and arr.shape[1] != lay.ncol:
        return None
    if lay.cols != list(range(arr.shape[1])):
        pos = {c: j for j, c in enumerate(usecols or range(lay.ncol))}
        arr = arr[:, [pos[c] for c in lay.cols]]
    return arr


def _parse_exact(text, line0, lay, source):
    """The reference parser: one row per non-blank line, float() per selected cell."""
    names, cols, ncol = lay.names, lay.cols, lay.ncol
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    reader = csv.reader(lines, lay.dialect)
    for r in reader:
        r = [c.strip() for c in r]
        if not any(r):
            continue
        ln = line0 + reader.line_num
        if len(r) != ncol:
            raise DataError(f"{source}: line {ln} has {len(r)} fields, expected {ncol}")
        row = []
        for c in cols:
            cell = r[c]
            try:
                row.append(float(cell))
            except ValueError:
                if cell.lower() in _NA_TOKENS:
                    row.append(np.nan)
                else:
                    raise DataError(f"{source}: column {names[c]!r} is not numeric "
                                    f"(line {ln}: {cell!r}); choose numeric columns with "
                                    "--columns") from None
        out.append(row)
    return np.array(out, dtype=np.float64).reshape(len(out), len(cols))


def _numpy_blocks(path, lay, source):
    pattern = _na_pattern(lay.delimiter)
    with open(path, "rb") as fh:
        fh.seek(lay.body_offset)
        for raw, line0 in _raw_blocks(fh):
            line0 += lay.skip_lines
            try:
                arr = _parse_fast(raw, lay, pattern)
            except DataError:  # invalid UTF-8
                raise DataError(f"{source}: {_NOT_TEXT}") from None
            yield arr if arr is not None else _parse_exact(_decode(raw, source), line0, lay,
                                                           source)


class _ArrowFailed(Exception):
    """pyarrow could not parse the file as maxlik reads CSV; the numpy path decides."""


def _arrow_blocks(path, lay):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    fields = [f"f{j}" for j in range(lay.ncol)]
    wanted = list(dict.fromkeys(fields[c] for c in lay.cols))
    na = sorted({v for t in _NA_TOKENS for v in (t, t.upper(), t.capitalize())})
    try:
        fh = open(path, "rb")
        fh.seek(lay.body_offset)
        reader = pacsv.open_csv(
            fh,
            read_options=pacsv.ReadOptions(column_names=fields, block_size=_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=lay.delimiter, quote_char=lay.quotechar),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted, column_types={f: pa.float64() for f in wanted},
                null_values=na, strings_can_be_null=True))
        with fh:
            for batch in reader:
                arr = np.empty((batch.num_rows, len(lay.cols)))
                for j, c in enumerate(lay.cols):
                    col = batch.column(fields[c])
                    arr[:, j] = col.to_numpy(zero_copy_only=False)
                yield arr
    except (pa.ArrowException, ValueError, TypeError, OSError) as exc:
        raise _ArrowFailed(str(exc)) from None


def _csv_engine():
    engine = os.environ.get("MAXLIK_CSV_ENGINE", "auto").strip().lower()
    if engine not in ("auto", "numpy", "pyarrow"):
        raise DataError(f"MAXLIK_CSV_ENGINE must be auto, numpy or pyarrow; got {engine!r}")
    if engine == "numpy":
        return "numpy"
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        if engine == "pyarrow":
            raise DataError("MAXLIK_CSV_ENGINE=pyarrow needs pyarrow: "
                            "pip install pyarrow") from None
        return "numpy"
    return "pyarrow"


def _in_memory_limit():
    """Bytes of parsed data kept in memory; larger data goes to a temporary memmap."""
    env = os.environ.get("MAXLIK_IN_MEMORY_LIMIT")
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise DataError(f"MAXLIK_IN_MEMORY_LIMIT must be a number of bytes; got {env!r}") \
                from None
    avail = None
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    if avail is None:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return (avail or 8 << 30) // 4


class _Rows:
    """Parsed blocks gathered in memory or in an (unlinked) temporary file, with
    the missing-value bookkeeping of --drop-na done block by block."""

    def __init__(self, width, out_of_core, drop_na):
        self.width = width
        self.drop_na = drop_na
        self.blocks = []
        self.file = tempfile.TemporaryFile(prefix="maxlik-csv-") if out_of_core else None
        self.n = 0  # rows kept
        self.n_seen = 0  # data rows read
        self.n_bad = 0
        self.first_bad = None

    def add(self, arr):
        if arr.shape[0] == 0:
            return
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            if self.first_bad is None:
                self.first_bad = self.n_seen + int(np.argmax(bad))
            self.n_bad += int(bad.sum())
            if self.drop_na:
                arr = arr[~bad]
        self.n_seen += bad.shape[0]
        if not self.drop_na and self.n_bad:
            return  # an error at the end; only the count is still needed
        self.n += arr.shape[0]
        if self.file is not None:
            np.ascontiguousarray(arr).tofile(self.file)
        else:
            self.blocks.append(arr)

    def close(self):
        if self.file is not None:
            self.file.close()

    def array(self):
        if self.file is not None:
            self.file.flush()
            if self.n == 0:
                return np.empty((0, self.width))
            return np.memmap(self.file, dtype=np.float64, mode="r", shape=(self.n, self.width))
        if len(self.blocks) == 1:
            return self.blocks[0]
        return np.concatenate(self.blocks) if self.blocks else np.empty((0, self.width))


def _read_csv(path, source, columns, drop_na=False):
    """(X, names, rows dropped) of a CSV file; X may be a read-only np.memmap."""
    lay = _csv_layout(path, source, columns)
    size = os.path.getsize(path)
    est_rows = (size - lay.body_offset) / _bytes_per_line(path, lay)
    out_of_core = est_rows * 8 * len(lay.cols) > _in_memory_limit()
    engine = _csv_engine()
    while True:
        rows = _Rows(len(lay.cols), out_of_core, drop_na)
        try:
            blocks = _arrow_blocks(path, lay) if engine == "pyarrow" else \
                _numpy_blocks(path, lay, source)
            for arr in blocks:
                rows.add(arr)
        except _ArrowFailed:
            rows.close()
            engine = "numpy"  # the exact parser decides, and words the error
            continue
        except BaseException:
            rows.close()
            raise
        break
    if rows.n_seen == 0:
        rows.close()
        raise DataError(f"{source}: no data rows")
    if rows.n_bad and not drop_na:
        rows.close()
        raise DataError(f"{source}: {rows.n_bad} row(s) have missing or non-finite values "
                        f"(first: data row {rows.first_bad + 1}); pass --drop-na to drop them")
    X = rows.array()
    rows.close()  # a memmap keeps its own handle on the unlinked file
    return X, [lay.names[c] for c in lay.cols], rows.n_bad


def _bytes_per_line(path, lay):
    with open(path, "rb") as fh:
        fh.seek(lay.body_offset)
        sample = fh.read(1 << 16)
    return max(1.0, len(sample) / max(1, sample.count(b"\n")))


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


def load_data(path: str | None, *, columns: Sequence[str] | None = None, key: str | None = None,
              drop_na: bool = False) -> tuple[np.ndarray, list[str], str]:
    """(X float64 (n, d), column names, display name) for the fit command.

    X is C-contiguous, or a read-only ``np.memmap`` for a CSV file too large
    to hold in memory. Raises DataError for anything wrong with the file or
    its contents.
    """
    if path is None:
        source = "faithful (bundled Old Faithful data)"
        with contextlib.ExitStack() as stack:
            from importlib import resources

            real = stack.enter_context(resources.as_file(_bundled_faithful()))
            X, names, dropped = _read_csv(real, source, columns, drop_na)
        return _checked_csv(X, names, source, dropped)
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
        X, names, dropped = _read_csv(path, path, columns, drop_na)
        return _checked_csv(X, names, source, dropped)
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
        _dropped_note(n_bad, X, source)
    return np.ascontiguousarray(X), names, source


def _dropped_note(n_bad, X, source):
    print(f"maxlik: dropped {n_bad} row(s) with missing values", file=sys.stderr)
    if X.shape[0] == 0:
        raise DataError(f"{source}: no rows left after --drop-na")


def _checked_csv(X, names, source, dropped):
    """The CSV reader has checked the rows block by block (see _Rows)."""
    if dropped:
        _dropped_note(dropped, X, source)
    if not isinstance(X, np.memmap):
        X = np.ascontiguousarray(X)
    return X, names, source

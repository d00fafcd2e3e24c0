"""Data files for the command line, and atomic writes.

:func:`read_data` reads a data matrix from .npy (memory-mapped), .csv or
.parquet; :func:`write_array` writes predictions; :func:`atomic_write` is how
every output file (model files included, see :mod:`fastem.model_file`) appears:
whole, or not at all.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np


def atomic_write(path, write):
    """Call ``write(tmp_path)`` and rename the result to ``path``; clean up on error."""
    write_together({path: write})


def write_together(writers):
    """Write several files so that they appear all together or not at all.

    Parameters
    ----------
    writers : dict
        ``{path: write}``; ``write(tmp_path)`` writes the file's content to a
        temporary file in ``path``'s folder (with ``path``'s suffix, so writers
        that infer a format from it work).

    Raises
    ------
    OSError
        Naming the output ``path`` (never the hidden temporary file) when a
        folder is missing or unwritable or a write fails; nothing is left behind.
    """
    temps = {}
    try:
        for path, write in writers.items():
            path = Path(path)
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".tmp",
                                           dir=path.parent if str(path.parent) else ".")
            except OSError as exc:
                raise OSError(exc.errno, f"cannot write {path}: {exc.strerror}") from None
            os.close(fd)
            temps[path] = tmp
            try:
                write(tmp)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from None
        for path, tmp in temps.items():
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------
# Data files for the command line
# ----------------------------------------------------------------------------

class NamedColumns:
    """A 2-D array with column names, read by the estimators as a dataframe.

    ``columns`` gives ``feature_names_in_`` on fit and is checked on predict;
    ``np.asarray`` gives the array itself (no copy).

    Attributes
    ----------
    array : ndarray of shape (n_samples, n_features)
    columns : list of str, length n_features
    """

    def __init__(self, array, columns):
        self.array = array
        self.columns = list(columns)

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype, copy=False)

    @property
    def shape(self):
        return self.array.shape

    @property
    def ndim(self):
        return self.array.ndim


def read_data(path, header=None):
    """Read a data matrix: .npy (memory-mapped), .csv, or .parquet (pyarrow).

    A CSV header line and parquet column names become the column names that
    a model is fitted with (``feature_names_in_``) and checked against.

    Parameters
    ----------
    path : str or Path
    header : bool or None, default=None
        CSV only: whether the first record names the columns. None decides
        from the record: it is a header when any of its cells is not a number
        (so a header of numbers, such as years, needs ``header=True``).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features) (a read-only memory map for
        .npy), or :class:`NamedColumns` when the file names its columns

    Raises
    ------
    ValueError
        For a file that is not numeric data: ragged or malformed rows,
        non-numeric parquet columns (strings, timestamps, ...).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable .npy file ({exc})") from None
    if suffix == ".csv":
        return _read_csv(path, header)
    if suffix == ".parquet":
        return _read_parquet(path)
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use .npy, .csv or .parquet.")


def _read_parquet(path):
    """Numeric parquet columns as float64; any other column type is refused
    (a timestamp is not a number of seconds)."""
    try:
        import pyarrow.parquet as pq
        import pyarrow.types as pat
    except ImportError:
        raise ValueError("reading .parquet files needs pyarrow: pip install pyarrow") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable parquet file ({exc})") from None
    for name, col in zip(table.column_names, table.columns):
        if not (pat.is_integer(col.type) or pat.is_floating(col.type)):
            raise ValueError(f"{path}: parquet column {name!r} has type {col.type}; columns "
                             "must be integers or floating point numbers.")
    X = np.column_stack([col.to_numpy(zero_copy_only=False).astype(np.float64)
                         for col in table.columns])
    return NamedColumns(X, [str(c) for c in table.column_names])


def _is_number(cell):
    try:
        float(cell)
        return True
    except ValueError:
        return False


#: CSV cells that mark a missing value (read as NaN), besides "nan" itself.
MISSING_CELLS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL")


def _cell(text):
    """One CSV cell as a float; :data:`MISSING_CELLS` as NaN."""
    text = text.strip()
    return np.nan if text in MISSING_CELLS else float(text)


def _read_csv(path, header=None):
    """Numeric CSV (UTF-8, with or without a byte-order mark), optionally with
    one header record of column names; ragged rows are an error; an empty
    cell or one of :data:`MISSING_CELLS` is a missing value (NaN).

    The header is parsed by the standard library's ``csv`` (quoted names may
    hold commas), the numbers by NumPy's C reader (``loadtxt``, quotes allowed).
    """
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        try:
            first = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: malformed CSV ({exc})") from None
        header_lines = reader.line_num
    if not first or not any(c.strip() for c in first):
        raise ValueError(f"{path}: empty CSV file, or an empty first line")
    if header is None:
        header = not all(_is_number(c) for c in first)
    options = dict(delimiter=",", skiprows=header_lines if header else 0, ndmin=2,
                   dtype=np.float64, encoding="utf-8-sig", quotechar='"')
    try:
        try:
            with warnings.catch_warnings():
                # a header and no rows: "input contained no data" on stderr,
                # before the estimator's own error about an empty X
                warnings.filterwarnings("ignore", ".*input contained no data")
                X = np.loadtxt(path, **options)
        except ValueError:
            # Missing values (an empty cell, or NA): read again, cell by cell in
            # Python (slower), only when the C reader found such a cell.
            X = np.loadtxt(path, converters=_cell, **options)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: malformed CSV ({exc})") from None
    if header and X.shape[0] == 0:
        raise ValueError(f"{path}: a header and no rows of data")
    if not header:
        return X
    names = [c.strip() for c in first]
    if len(names) != X.shape[1]:
        raise ValueError(f"{path}: the header names {len(names)} columns, the rows have "
                         f"{X.shape[1]}.")
    return NamedColumns(X, names)


def write_array(path, array, columns=None):
    """Write ``array`` as .npy or .csv (by suffix), atomically; a CSV gets a
    header record of ``columns`` when they are given."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        fmt = "%d" if np.issubdtype(array.dtype, np.integer) else "%.17g"
        if columns is None:
            header = ""
        else:
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow(list(columns))
            header = buffer.getvalue()
        atomic_write(path, lambda tmp: np.savetxt(tmp, array, delimiter=",", fmt=fmt,
                                                  header=header, comments=""))
    elif path.suffix.lower() == ".npy":
        def write(tmp):
            with open(tmp, "wb") as f:
                np.save(f, array)
        atomic_write(path, write)
    else:
        raise ValueError(f"{path}: output must end in .npy or .csv")

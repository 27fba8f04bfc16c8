"""Reading and writing raw tables, with the schema checked on the way in.

Bring-your-own data: a folder holding one ``<table>.parquet`` (or ``.csv``) per
table of the workload's schema (``Workload.schemas``, printed by ``kindml data
schema``). A missing or mistyped column is a :class:`~kindml.errors.DataError`
naming the file and column.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from kindml.errors import DataError

MAX_INPUT_BYTES = 5 * 1024**3


def _find(folder: Path, stem: str) -> Path:
    for ext in (".parquet", ".csv"):
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    raise DataError(
        f"{folder} has no {stem}.parquet or {stem}.csv",
        f"Put your {stem} table there (columns: see `kindml data schema`), or use generated data (data.source: generate).",
    )


def _read(path: Path) -> pd.DataFrame:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}", "Check the path and its permissions.") from None
    if size == 0:
        raise DataError(f"{path} is empty", "Provide a file with a header and at least one row.")
    if size > MAX_INPUT_BYTES:
        raise DataError(f"{path} is {size / 1024**3:.1f} GiB, above the 5 GiB limit of the local target", "Sample it down or run on the cluster target.")
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path, encoding="utf-8", low_memory=False)
        return pd.read_parquet(path)
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text", "Re-save the CSV as UTF-8.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path} is not valid CSV: {str(exc).splitlines()[0]}", "Check quoting and the number of fields per line.") from None
    except Exception as exc:  # pyarrow raises many types for damaged files
        raise DataError(f"{path} cannot be read as {path.suffix.lstrip('.') or 'data'}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", "Check that the file is complete and of the type its extension says.") from None


def coerce(df: pd.DataFrame, columns: dict[str, str], where: str) -> pd.DataFrame:
    """Check columns exist and cast to the schema types (timestamps to UTC)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {', '.join(missing)}",
            f"Expected columns: {', '.join(columns)}. Rename or add them.",
        )
    out = pd.DataFrame(index=df.index)
    for col, kind in columns.items():
        s = df[col]
        try:
            if kind.startswith("datetime64"):
                out[col] = pd.to_datetime(s, utc=True, errors="raise")
            elif kind == "int64":
                num = pd.to_numeric(s, errors="raise")
                if num.isna().any() or not np.all(np.mod(num.to_numpy(dtype=float), 1) == 0):
                    raise ValueError("has empty or non-integer values")
                out[col] = num.astype(np.int64)
            elif kind == "float64":
                out[col] = pd.to_numeric(s, errors="raise").astype(np.float64)
            else:
                out[col] = s.astype(object).where(s.notna(), None)
        except (ValueError, TypeError, OverflowError) as exc:
            raise DataError(f"{where}: column {col!r} cannot be read as {kind}: {str(exc).splitlines()[0][:200]}", f"Fix the values of {col!r} or drop the bad rows.") from None
    return out


def load_tables(folder: Path, schemas: dict[str, dict[str, str]]) -> dict[str, pd.DataFrame]:
    """Every table of ``schemas`` from ``folder`` (parquet or CSV), columns checked and cast."""
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder",
                        f"Point data.path (or --data) at a folder with {', '.join(f'{t}.(parquet|csv)' for t in schemas)}.")
    out = {}
    for table, columns in schemas.items():
        path = _find(folder, table)
        df = coerce(_read(path), columns, str(path))
        if df.empty:
            raise DataError(f"{path} has no rows", f"Provide the {table} rows.")
        out[table] = df
    return out


def content_hash(*frames: pd.DataFrame) -> str:
    """A stable hash of the rows (not of the file bytes, which vary by writer)."""
    h = hashlib.sha256()
    for df in frames:
        h.update(",".join(map(str, df.columns)).encode())
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """Write parquet or CSV (by suffix), atomically."""
    if path.suffix == ".csv":
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        df.to_csv(tmp, index=False)
        tmp.replace(path)
    else:
        write_parquet(df, path)
    return path

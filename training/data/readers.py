"""Format readers: every supported layout becomes one `RawInteractions`.

Formats (`fmt`): `atomic` (RecBole `*.inter` + optional `*.item`, typed `name:type` headers),
`movielens` (`u.data` + `u.item`, or `ratings.dat` + `movies.dat`; the newer `ratings.csv` +
`movies.csv` layout is read as `csv` with its metadata), `text` (one `user item` action
per line, file order is time), `seqline` (one user per line, `user item item ...` in time order:
the research format of ICLRec, CoSeRec and others), `csv` and `parquet` (a column mapping picks
user, item, time).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.errors import DataFormatError
from training.data.tables import (
    Table,
    check_field_counts,
    decode,
    join_nonempty,
    numeric_column,
    parse_delimited,
    read_bytes,
    require_nonempty,
    wrong_fields,
)

FORMATS = ("atomic", "movielens", "text", "seqline", "csv", "parquet")
META_COLUMNS = ["title", "year", "genres", "text"]

# Accepted names for each role when no mapping is given (first match wins).
_ALIASES = {
    "user": ("user_id", "user", "userId", "userid", "uid", "session_id"),
    "item": ("item_id", "item", "itemId", "itemid", "movieId", "movie_id", "iid"),
    "time": ("timestamp", "time", "ts", "datetime", "date"),
}
_TITLE_FIELDS = ("movie_title", "title", "name")
_YEAR_FIELDS = ("release_year", "year")
_GENRE_FIELDS = ("class", "genre", "genres", "categories", "category")
_ATOMIC_TYPES = {"token", "token_seq", "float", "float_seq"}
# u.genre is optional in MovieLens 100K copies; this is its content, in flag order.
_ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
_RATINGS_FILES = ("u.data", "ratings.dat", "ratings.csv")
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")

EXPECTED = {
    "atomic": "a RecBole atomic file: tab-separated, header cells `name:type` "
    "(e.g. `user_id:token  item_id:token  timestamp:float`)",
    "atomic_item": "a RecBole atomic .item file: tab-separated, header cells `name:type` "
    "(e.g. `item_id:token  movie_title:token_seq  release_year:token  class:token_seq`)",
    "u.data": "MovieLens u.data: `user<TAB>item<TAB>rating<TAB>timestamp`",
    "u.item": "MovieLens u.item: `id|title|release date|video release date|url|` + genre flags",
    "ratings.dat": "MovieLens ratings.dat: `user::item::rating::timestamp`",
    "movies.dat": "MovieLens movies.dat: `id::title (year)::Genre|Genre`",
    "text": "one action per line: `user item` (whitespace-separated), in time order",
    "seqline": "one user per line: `user item item ...` (whitespace-separated), "
    "items in time order",
    "csv": "a CSV file with a header row holding the user, item (and time) columns",
    "movies.csv": "MovieLens movies.csv: header `movieId,title,genres`, genres `A|B`",
    "parquet": "a Parquet file holding the user, item (and time) columns",
}


@dataclass
class RawInteractions:
    """Actions in file order. `timestamps is None` means file order is time order.

    `items_meta` (optional) is indexed by external item id, columns `META_COLUMNS` (strings,
    "" when unknown; genres comma-separated).
    """

    users: np.ndarray  # object (str) [A]
    items: np.ndarray  # object (str) [A]
    timestamps: np.ndarray | None  # int64 / float64 [A]
    items_meta: pd.DataFrame | None = None


@dataclass(frozen=True)
class Source:
    """What `detect_source` found: the format and the files it will read, by role."""

    fmt: str
    name: str
    files: dict[str, Path] = field(default_factory=dict)


def parse_columns(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """`"user=uid,item=iid,time=ts"` (or a mapping) -> {"user": "uid", ...}."""
    if spec is None:
        return {}
    pairs = dict(spec) if isinstance(spec, Mapping) else {}
    if isinstance(spec, str):
        for part in filter(None, (p.strip() for p in spec.split(","))):
            role, sep, name = part.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"column mapping {part!r}: expected role=column, e.g. user=uid")
            pairs[role.strip()] = name.strip()
    unknown = set(pairs) - set(_ALIASES)
    if unknown:
        raise ValueError(
            f"column mapping: unknown role(s) {sorted(unknown)}; roles are user, item, time"
        )
    return pairs


def detect_source(path: Path | str, fmt: str | None = None) -> Source:
    """Find the format and files of a data set given as a folder or a file."""
    path = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        return _detect_folder(path, fmt)
    fmt = fmt or _format_of_file(path)
    name = path.parent.name if path.name in _RATINGS_FILES else path.stem
    if fmt == "atomic":
        return Source(fmt, name, {"inter": path, **_optional(path.with_suffix(".item"), "item")})
    if fmt == "movielens":
        if path.name == "ratings.dat" or path.suffix == ".dat":
            items = path.parent / "movies.dat"
            return Source(fmt, name, {"ratings.dat": path, **_optional(items, "movies.dat")})
        extra = {**_optional(path.parent / "u.item", "u.item")}
        extra |= _optional(path.parent / "u.genre", "u.genre")
        return Source(fmt, name, {"u.data": path, **extra})
    if fmt == "csv" and path.name == "ratings.csv":
        return Source(fmt, name, {"inter": path, **_optional(path.parent / "movies.csv", "movies")})
    return Source(fmt, name, {"inter": path})


def _optional(path: Path, role: str) -> dict[str, Path]:
    return {role: path} if path.is_file() else {}


def _format_of_file(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".inter":
        return "atomic"
    if path.name in ("u.data", "ratings.dat"):
        return "movielens"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    return "seqline" if _looks_like_seqline(path) else "text"


def _looks_like_seqline(path: Path, lines: int = 100) -> bool:
    """The first lines read as one user each with a sequence: longer than `user item`, no user
    twice. Anything else stays `text`, whose reader names a line with the wrong field count."""
    try:
        with path.open("rb") as file:
            head = [line.split() for _, line in zip(range(lines), file, strict=False)]
    except OSError:
        return False
    head = [fields for fields in head if fields]
    users = {fields[0] for fields in head}
    return (
        any(len(fields) > 2 for fields in head)
        and all(len(fields) >= 2 for fields in head)
        and len(users) == len(head)
    )


def _detect_folder(folder: Path, fmt: str | None) -> Source:
    inters = sorted(folder.glob("*.inter"))
    if (fmt in (None, "atomic")) and inters:
        own = [p for p in inters if p.stem == folder.name]
        if len(own) != 1 and len(inters) != 1:
            names = ", ".join(p.name for p in inters)
            raise ValueError(f"{folder}: several .inter files ({names}); pass one as the path")
        return detect_source((own or inters)[0], "atomic")
    if fmt in (None, "movielens"):
        for ratings in ("u.data", "ratings.dat"):
            if (folder / ratings).is_file():
                return detect_source(folder / ratings, "movielens")
    if fmt in (None, "csv") and (folder / "ratings.csv").is_file():
        return detect_source(folder / "ratings.csv", "csv")
    suffixes = {
        "csv": (".csv", ".tsv"),
        "parquet": (".parquet", ".pq"),
        "text": (".txt",),
        "seqline": (".txt",),
        "atomic": (".inter",),
        "movielens": (),
    }
    wanted = [fmt] if fmt else ["csv", "parquet", "text"]
    found = [p for f in wanted for p in sorted(folder.iterdir()) if p.suffix in suffixes[f]]
    if len(found) == 1:
        return detect_source(found[0], fmt or _format_of_file(found[0]))
    why = "several candidate files" if found else "no data file"
    raise ValueError(
        f"{folder}: {why} for format {fmt or 'auto'}; expected *.inter (+ *.item), u.data, "
        "ratings.dat, or a single .csv / .parquet / .txt file (or pass the file itself)"
    )


def read_source(source: Source, columns: Mapping[str, str] | None = None) -> RawInteractions:
    """Parse the files of `source` (the expensive step the cache avoids)."""
    columns = dict(columns or {})
    if columns and source.fmt in ("movielens", "text", "seqline"):
        raise ValueError(f"a column mapping does not apply to the {source.fmt} format")
    readers = {
        "atomic": _read_atomic,
        "movielens": _read_movielens,
        "text": _read_text,
        "seqline": _read_seqline,
        "csv": _read_csv,
        "parquet": _read_parquet,
    }
    return readers[source.fmt](source, columns)


def _pick(available: list[str], role: str, columns: Mapping[str, str]) -> str | None:
    if role in columns:
        return columns[role] if columns[role] in available else None
    return next((a for a in _ALIASES[role] if a in available), None)


def _pick_required(
    path: Path, available: list[str], role: str, columns: Mapping[str, str], expected: str
) -> str:
    name = _pick(available, role, columns)
    if name is None:
        wanted = columns.get(role) or " / ".join(_ALIASES[role])
        raise DataFormatError(
            path,
            1,
            f"no {role} column {wanted!r} (columns: {', '.join(available)})",
            expected + "; map columns with --columns user=...,item=...,time=...",
        )
    return name


def _time_column(
    path: Path, available: list[str], columns: Mapping[str, str], expected: str
) -> str | None:
    if "time" in columns:
        return _pick_required(path, available, "time", columns, expected)
    return _pick(available, "time", columns)


def _interactions(
    path: Path,
    table: Table,
    user: str | int,
    item: str | int,
    time: str | int | None,
    expected: str,
) -> RawInteractions:
    require_nonempty(path, table, user, "user id", expected)
    require_nonempty(path, table, item, "item id", expected)
    stamps = None if time is None else numeric_column(path, table, time, "timestamp", expected)
    return RawInteractions(
        users=table.frame[user].to_numpy(dtype=object),
        items=table.frame[item].to_numpy(dtype=object),
        timestamps=stamps,
    )


# --- atomic -----------------------------------------------------------------------------------


def _atomic_table(path: Path, expected: str) -> Table:
    """Parse an atomic file into a table whose columns are the bare field names."""
    data = read_bytes(path, expected)
    text = decode(data)
    header = text.split("\n", 1)[0].rstrip("\r").split("\t")
    names: list[str] = []
    for cell in header:
        name, sep, kind = cell.partition(":")
        if not sep or kind not in _ATOMIC_TYPES or not name or name in names:
            raise DataFormatError(path, 1, f"header cell {cell!r} is not a new name:type", expected)
        names.append(name)
    check_field_counts(path, data, b"\t", len(header), expected)
    table = parse_delimited(path, text, sep="\t", expected=expected, header=True)
    table.frame.columns = names
    return table


def _read_atomic(source: Source, columns: Mapping[str, str]) -> RawInteractions:
    path = source.files["inter"]
    expected = EXPECTED["atomic"]
    table = _atomic_table(path, expected)
    available = list(table.frame.columns)
    user = _pick_required(path, available, "user", columns, expected)
    item = _pick_required(path, available, "item", columns, expected)
    raw = _interactions(
        path, table, user, item, _time_column(path, available, columns, expected), expected
    )
    if "item" in source.files:
        raw.items_meta = _read_atomic_items(source.files["item"], item)
    return raw


def _read_atomic_items(path: Path, item_field: str) -> pd.DataFrame:
    expected = EXPECTED["atomic_item"]
    frame = _atomic_table(path, expected).frame
    if item_field not in frame.columns:
        raise DataFormatError(
            path, 1, f"no {item_field!r} column (columns: {', '.join(frame.columns)})", expected
        )
    title = next((f for f in _TITLE_FIELDS if f in frame.columns), None)
    year = next((f for f in _YEAR_FIELDS if f in frame.columns), None)
    genres = next((f for f in _GENRE_FIELDS if f in frame.columns), None)
    rest = [c for c in frame.columns if c not in (item_field, title, year, genres)]
    meta = pd.DataFrame(index=pd.Index(frame[item_field].to_numpy(dtype=object), name="item"))
    meta["title"] = frame[title].to_numpy() if title else ""
    meta["year"] = frame[year].to_numpy() if year else ""
    meta["genres"] = frame[genres].str.split().str.join(", ").to_numpy() if genres else ""
    meta["text"] = _labelled_text(frame, rest)
    return meta[~meta.index.duplicated()]


def _labelled_text(frame: pd.DataFrame, fields: list[str]) -> np.ndarray:
    """`field: value; field: value` over the non-empty cells of each row."""
    parts = [(f"{name}: " + frame[name]).where(frame[name] != "", "") for name in fields]
    if not parts:
        return np.full(len(frame), "", dtype=object)
    return join_nonempty(parts).to_numpy(dtype=object)


# --- MovieLens raw ----------------------------------------------------------------------------


def _read_movielens(source: Source, columns: Mapping[str, str]) -> RawInteractions:
    if "u.data" in source.files:
        path = source.files["u.data"]
        expected = EXPECTED["u.data"]
        data = read_bytes(path, expected)
        check_field_counts(path, data, b"\t", 4, expected)
        text = decode(data)
        table = parse_delimited(path, text, sep="\t", expected=expected)
        raw = _interactions(path, table, 0, 1, 3, expected)
        if "u.item" in source.files:
            raw.items_meta = _read_u_item(source.files["u.item"], source.files.get("u.genre"))
        return raw
    path = source.files["ratings.dat"]
    expected = EXPECTED["ratings.dat"]
    data = read_bytes(path, expected)
    # `::` is two one-char separators with an empty field between: the fast C parser handles
    # that, where a multi-char separator would need the slow Python engine.
    check_field_counts(path, data, b":", 7, expected)
    text = decode(data)
    table = parse_delimited(path, text, sep=":", expected=expected)
    raw = _interactions(path, table, 0, 2, 6, expected)
    if "movies.dat" in source.files:
        raw.items_meta = _read_movies_dat(source.files["movies.dat"])
    return raw


def _split_title(title: str) -> tuple[str, str]:
    found = _TITLE_YEAR.match(title)
    return (found["title"], found["year"]) if found else (title.strip(), "")


def _read_u_item(path: Path, genre_path: Path | None) -> pd.DataFrame:
    expected = EXPECTED["u.item"]
    genres = list(_ML100K_GENRES)
    if genre_path is not None:
        genre_text = decode(genre_path.read_bytes())
        genres = [line.split("|")[0] for line in genre_text.splitlines() if line.strip()]
    data = read_bytes(path, expected)
    check_field_counts(path, data, b"|", 5 + len(genres), expected)
    text = decode(data)
    table = parse_delimited(path, text, sep="|", expected=expected)
    frame = table.frame
    flags = frame.iloc[:, 5:].to_numpy() == "1"
    names = np.array(genres, dtype=object)
    rows = []
    for row, (item, title, date) in enumerate(frame.iloc[:, :3].itertuples(index=False)):
        clean, year = _split_title(title)
        rows.append((item, clean, year or date[-4:], ", ".join(names[flags[row]]), ""))
    return _meta_frame(rows)


def _read_movies_dat(path: Path) -> pd.DataFrame:
    expected = EXPECTED["movies.dat"]
    text = decode(read_bytes(path, expected))
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("::")
        if len(fields) != 3:
            raise DataFormatError(path, number, wrong_fields(len(fields), 3), expected)
        clean, year = _split_title(fields[1])
        genres = ", ".join(g for g in fields[2].split("|") if g and g != "(no genres listed)")
        rows.append((fields[0], clean, year, genres, ""))
    return _meta_frame(rows)


def _meta_frame(rows: list[tuple[str, str, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["item", *META_COLUMNS]).set_index("item")
    return frame[~frame.index.duplicated()]


# --- one action per line ----------------------------------------------------------------------


def _read_text(source: Source, columns: Mapping[str, str]) -> RawInteractions:
    path = source.files["inter"]
    expected = EXPECTED["text"]
    text = decode(read_bytes(path, expected))
    # pandas sizes the table by the first line: a short first line must be caught here.
    filled = ((n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip())
    number, first = next(filled)
    if len(first.split()) != 2:
        problem = wrong_fields(len(first.split()), 2)
        raise DataFormatError(path, number, problem, expected)
    # Any token is an id here, so a header would pass as one action of a user named "user";
    # words over numeric ids are what a header looks like.
    _, second = next(filled, (0, ""))
    next_fields = second.split()
    if (
        next_fields
        and not any(field.isdigit() for field in first.split())
        and all(field.isdigit() for field in next_fields)
    ):
        problem = (
            f"{first.strip()!r} looks like a header, and this format has none: remove the line "
            "(or give the file a .csv name and a user,item header)"
        )
        raise DataFormatError(path, number, problem, expected)
    table = parse_delimited(path, text, sep=r"\s+", expected=expected)
    frame = table.frame
    # Whitespace-separated fields cannot be empty, so an empty item means a one-field line.
    short = np.flatnonzero((frame[1] == "").to_numpy())
    if len(short):
        row = int(short[0])
        raise DataFormatError(path, int(table.lines[row]), wrong_fields(1, 2), expected)
    return _interactions(path, table, 0, 1, None, expected)


def _read_seqline(source: Source, columns: Mapping[str, str]) -> RawInteractions:
    path = source.files["inter"]
    expected = EXPECTED["seqline"]
    text = decode(read_bytes(path, expected))
    users: list[str] = []
    items: list[str] = []
    lengths: list[int] = []
    line_of_user: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        user, *sequence = fields
        if not sequence:
            raise DataFormatError(path, number, f"user {user!r} has no items", expected)
        # Two lines for one user leave their relative time order unknown: refuse, not guess.
        if user in line_of_user:
            problem = f"user {user!r} already has a sequence on line {line_of_user[user]}"
            raise DataFormatError(path, number, problem, expected)
        line_of_user[user] = number
        users.append(user)
        lengths.append(len(sequence))
        items.extend(sequence)
    if not users:
        raise DataFormatError(path, 1, "the file holds no sequence", expected)
    return RawInteractions(
        users=np.repeat(np.asarray(users, dtype=object), lengths),
        items=np.asarray(items, dtype=object),
        timestamps=None,
    )


# --- CSV / Parquet ----------------------------------------------------------------------------


def _read_csv(source: Source, columns: Mapping[str, str]) -> RawInteractions:
    path = source.files["inter"]
    expected = EXPECTED["csv"]
    text = decode(read_bytes(path, expected))
    first = text.split("\n", 1)[0]
    sep = "\t" if path.suffix.lower() == ".tsv" or ("\t" in first and "," not in first) else ","
    header = next(csv.reader([first], delimiter=sep))
    available = [h.strip() for h in header]
    user = _pick_required(path, available, "user", columns, expected)
    item = _pick_required(path, available, "item", columns, expected)
    time = _time_column(path, available, columns, expected)
    table = parse_delimited(
        path, text, sep=sep, expected=expected, header=True, quoting=csv.QUOTE_MINIMAL
    )
    raw = _interactions(path, table, user, item, time, expected)
    if "movies" in source.files:
        raw.items_meta = _read_movies_csv(source.files["movies"])
    return raw


def _read_movies_csv(path: Path) -> pd.DataFrame:
    expected = EXPECTED["movies.csv"]
    text = decode(read_bytes(path, expected))
    table = parse_delimited(
        path, text, sep=",", expected=expected, header=True, quoting=csv.QUOTE_MINIMAL
    )
    missing = [c for c in ("movieId", "title", "genres") if c not in table.frame.columns]
    if missing:
        raise DataFormatError(path, 1, f"no column(s) {', '.join(missing)}", expected)
    rows = []
    for item, title, genres in table.frame[["movieId", "title", "genres"]].itertuples(index=False):
        clean, year = _split_title(title)
        names = ", ".join(g for g in genres.split("|") if g and g != "(no genres listed)")
        rows.append((item, clean, year, names, ""))
    return _meta_frame(rows)


def _read_parquet(source: Source, columns: Mapping[str, str]) -> RawInteractions:
    import pyarrow.parquet as pq

    path = source.files["inter"]
    expected = EXPECTED["parquet"]
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise DataFormatError(path, None, f"not a Parquet file ({exc})", expected) from exc
    available = list(schema.names)
    user = _pick_required(path, available, "user", columns, expected)
    item = _pick_required(path, available, "item", columns, expected)
    time = _time_column(path, available, columns, expected)
    frame = pd.read_parquet(path, columns=[c for c in (user, item, time) if c])
    if frame.empty:
        raise DataFormatError(path, None, "no rows", expected)
    stamps = None
    if time:
        column = frame[time]
        if pd.api.types.is_datetime64_any_dtype(column):
            column = column.astype("int64")
        values = pd.to_numeric(column, errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if len(bad):
            raise DataFormatError(
                path, None, f"row {bad[0] + 1}: timestamp {column.iat[bad[0]]!r} is not a number",
                expected,
            )  # fmt: skip
        stamps = values.to_numpy()
    ids = {}
    for role, name in (("user", user), ("item", item)):
        values = frame[name]
        missing = np.flatnonzero(values.isna().to_numpy())
        if len(missing):
            raise DataFormatError(
                path, None, f"row {missing[0] + 1}: {role} id is missing", expected
            )
        ids[role] = values.astype(str).to_numpy(dtype=object)
    return RawInteractions(users=ids["user"], items=ids["item"], timestamps=stamps)

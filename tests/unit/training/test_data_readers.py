"""Each reader on tiny hand-made files, format detection, and rejection of malformed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data import DataFormatError
from training.data.readers import detect_source, parse_columns, read_source


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def read(path: Path, fmt: str | None = None, columns: str | None = None):
    return read_source(detect_source(path, fmt), parse_columns(columns))


def flags(*on: int) -> str:
    cells = ["0"] * 19
    for index in on:
        cells[index] = "1"
    return "|".join(cells)


def test_atomic_reads_interactions_and_item_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    write(
        folder / "shop.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "u1\ti1\t4\t100\nu1\ti2\t3\t50\nu2\ti1\t5\t70\n",
    )
    write(
        folder / "shop.item",
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tstudio:token\n"
        "i1\tToy Story\t1995\tAnimation Comedy\tPixar\ni2\tHeat\t\tCrime\t\n",
    )
    source = detect_source(folder)
    assert (
        source.fmt == "atomic" and source.name == "shop" and set(source.files) == {"inter", "item"}
    )
    raw = read_source(source)
    assert raw.users.tolist() == ["u1", "u1", "u2"]
    assert raw.items.tolist() == ["i1", "i2", "i1"]
    assert raw.timestamps.tolist() == [100, 50, 70]
    meta = raw.items_meta
    assert meta.loc["i1"].tolist() == ["Toy Story", "1995", "Animation, Comedy", "studio: Pixar"]
    assert meta.loc["i2"].tolist() == ["Heat", "", "Crime", ""]


def test_atomic_column_mapping_and_no_timestamp(tmp_path: Path) -> None:
    path = write(tmp_path / "s.inter", "session:token\tproduct:token\nA\tp1\nA\tp2\nB\tp1\n")
    raw = read(path, columns="user=session,item=product")
    assert raw.users.tolist() == ["A", "A", "B"]
    assert raw.items.tolist() == ["p1", "p2", "p1"]
    assert raw.timestamps is None  # file order is time


def test_movielens_100k_raw(tmp_path: Path) -> None:
    folder = tmp_path / "ml"
    write(folder / "u.data", "1\t10\t4\t881250949\n2\t20\t3\t881250950\n1\t20\t5\t881250940\n")
    write(
        folder / "u.item",
        f"10|Misérables, Les (1995)|01-Jan-1995||http://x|{flags(8, 12)}\n"
        f"20|unknown||||{flags(0)}\n",
        encoding="latin-1",
    )
    source = detect_source(folder)
    assert source.fmt == "movielens"
    raw = read_source(source)
    assert raw.users.tolist() == ["1", "2", "1"]
    assert raw.items.tolist() == ["10", "20", "20"]
    assert raw.timestamps.tolist() == [881250949, 881250950, 881250940]
    assert raw.items_meta.loc["10"].tolist() == ["Misérables, Les", "1995", "Drama, Musical", ""]
    assert raw.items_meta.loc["20"].tolist() == ["unknown", "", "unknown", ""]


def test_movielens_100k_uses_u_genre_when_present(tmp_path: Path) -> None:
    write(tmp_path / "u.data", "1\t10\t4\t5\n")
    write(tmp_path / "u.genre", "Odd|0\nEven|1\n")
    write(tmp_path / "u.item", "10|Film (2001)|||url|0|1\n")
    raw = read(tmp_path)
    assert raw.items_meta.loc["10", "genres"] == "Even"


def test_movielens_1m_dat(tmp_path: Path) -> None:
    write(tmp_path / "ratings.dat", "1::260::5::978300760\n1::1::3::978300755\n")
    write(
        tmp_path / "movies.dat",
        "260::Star Wars: Episode IV - A New Hope (1977)::Action|Adventure|Sci-Fi\n"
        "1::Toy Story (1995)::(no genres listed)\n",
    )
    raw = read(tmp_path / "ratings.dat")
    assert raw.users.tolist() == ["1", "1"]
    assert raw.items.tolist() == ["260", "1"]
    assert raw.timestamps.tolist() == [978300760, 978300755]
    star_wars = raw.items_meta.loc["260"].tolist()
    assert star_wars == [
        "Star Wars: Episode IV - A New Hope",
        "1977",
        "Action, Adventure, Sci-Fi",
        "",
    ]
    assert raw.items_meta.loc["1", "genres"] == ""


def test_text_one_action_per_line(tmp_path: Path) -> None:
    path = write(tmp_path / "log.txt", "alice x\nbob   y\n\nalice\tz\n")
    source = detect_source(path)
    assert source.fmt == "text"
    raw = read_source(source)
    assert raw.users.tolist() == ["alice", "bob", "alice"]
    assert raw.items.tolist() == ["x", "y", "z"]
    assert raw.timestamps is None


def test_csv_with_mapping_and_with_default_names(tmp_path: Path) -> None:
    mapped = write(tmp_path / "a.csv", 'ts,uid,iid,extra\n3,u,i1,"a, b"\n1,u,i2,c\n')
    raw = read(mapped, columns="user=uid,item=iid,time=ts")
    assert raw.users.tolist() == ["u", "u"]
    assert raw.items.tolist() == ["i1", "i2"]
    assert raw.timestamps.tolist() == [3, 1]
    defaults = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,5,4.0,10\n")
    raw = read(defaults)
    assert (raw.users.tolist(), raw.items.tolist(), raw.timestamps.tolist()) == (["1"], ["5"], [10])


def test_movielens_latest_csv_layout(tmp_path: Path) -> None:
    write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,2,4.0,10\n1,9,3.5,5\n")
    write(tmp_path / "tags.csv", "userId,movieId,tag,timestamp\n")
    write(
        tmp_path / "movies.csv",
        'movieId,title,genres\n2,"Jumanji, The (1995)",Adventure|Children\n9,Heat,Crime\n',
    )
    source = detect_source(tmp_path)
    assert (source.fmt, source.name, set(source.files)) == (
        "csv",
        tmp_path.name,
        {"inter", "movies"},
    )
    raw = read_source(source)
    assert raw.items.tolist() == ["2", "9"] and raw.timestamps.tolist() == [10, 5]
    assert raw.items_meta.loc["2"].tolist() == ["Jumanji, The", "1995", "Adventure, Children", ""]
    assert raw.items_meta.loc["9"].tolist() == ["Heat", "", "Crime", ""]
    write(tmp_path / "movies.csv", "id,name\n2,x\n")
    with pytest.raises(DataFormatError, match=r"movies.csv, line 1: no column\(s\) movieId"):
        read_source(source)


def test_tsv_is_read_as_csv_with_tabs(tmp_path: Path) -> None:
    path = write(tmp_path / "d.tsv", "user\titem\ttime\nu\ti\t1.5\n")
    raw = read(path)
    assert raw.items.tolist() == ["i"] and raw.timestamps.tolist() == [1.5]


def test_parquet_with_mapping_and_datetimes(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame(
        {
            "uid": [7, 7, 8],
            "iid": ["a", "b", "a"],
            "when": pd.to_datetime(["2024-01-02", "2024-01-01", "2024-01-03"]),
        }
    ).to_parquet(path)
    raw = read(path, columns="user=uid,item=iid,time=when")
    assert raw.users.tolist() == ["7", "7", "8"]
    assert raw.items.tolist() == ["a", "b", "a"]
    assert np.argsort(raw.timestamps).tolist() == [1, 0, 2]


def test_format_override(tmp_path: Path) -> None:
    path = write(tmp_path / "events.log", "u,i\nv,j\n")
    assert detect_source(path).fmt == "text"
    raw = read(path, fmt="csv", columns="user=u,item=i")
    assert raw.users.tolist() == ["v"] and raw.items.tolist() == ["j"]


def test_detection_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        detect_source(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown format"):
        detect_source(tmp_path, "xml")
    write(tmp_path / "a.csv", "user,item\n")
    write(tmp_path / "b.csv", "user,item\n")
    with pytest.raises(ValueError, match="several candidate files"):
        detect_source(tmp_path)
    with pytest.raises(ValueError, match="unknown role"):
        parse_columns("who=uid")


ATOMIC_HEAD = "user_id:token\titem_id:token\ttimestamp:float\n"

# (file name, content, line the error must name, words the message must hold)
MALFORMED = [
    ("bad.inter", "user_id\titem_id:token\n1\t2\n", 1, "name:type"),
    ("bad.inter", ATOMIC_HEAD + "1\t2\t3\n1\t2\n", 3, "found 2 fields instead of 3"),
    ("bad.inter", ATOMIC_HEAD + "1\t2\t3\n\n1\t2\tyesterday\n", 4, "'yesterday' is not a number"),
    ("bad.inter", "session:token\titem_id:token\n1\t2\n", 1, "no user column"),
    ("bad.inter", "", 1, "empty"),
    ("u.data", "1\t2\t3\t4\n1\t2\t3\t4\t5\n", 2, "found 5 fields instead of 4"),
    ("u.data", "1\t2\t3\t4\n1\t2\t3\tx\n", 2, "'x' is not a number"),
    ("u.data", "\n", 1, "empty"),
    ("ratings.dat", "1::2::3::4\n1::2::3\n", 2, "found 5 fields instead of 7"),
    ("ratings.dat", "1::2::3::4\n1::2::3::t\n", 2, "'t' is not a number"),
    ("log.txt", "u i\nu i j\n", 2, "found 3 fields instead of 2"),
    ("log.txt", "u i\nu\n", 2, "found 1 field instead of 2"),
    ("log.txt", "u\nu i\n", 1, "found 1 field instead of 2"),
    ("log.txt", "u i j\nu i\n", 1, "found 3 fields instead of 2"),
    ("d.csv", "user,item\n1,2\n1,2,3\n", 3, "found 3 fields instead of 2"),
    ("log.txt", "", 1, "empty"),
    ("d.csv", "who,what\n1,2\n", 1, "no user column 'user_id / user"),
    ("d.csv", "user,item\n1,2,3\n", 2, "more fields than the header"),
    ("d.csv", "user,item,time\n1,2,3\n1,2,noon\n", 3, "'noon' is not a number"),
    ("d.csv", "user,item,time\n1,2,3\n,2,4\n", 3, "user id is missing"),
    ("d.csv", "user,item\n", 1, "no data rows"),
    ("log.txt", "\nuser_id item_id\n1 2\n3 4\n", 2, "looks like a header"),
]


@pytest.mark.parametrize(("name", "content", "line", "words"), MALFORMED)
def test_malformed_files_name_file_line_and_format(
    tmp_path: Path, name: str, content: str, line: int, words: str
) -> None:
    path = write(tmp_path / name, content)
    columns = (
        "user=user,item=item,time=time" if "time" in content and name.endswith(".csv") else None
    )
    with pytest.raises(DataFormatError) as caught:
        read(path, columns=None if "who" in content else columns)
    message = str(caught.value)
    assert str(path) in message
    assert f"line {line}:" in message
    assert words in message
    assert "expected" in message
    assert caught.value.line == line


@pytest.mark.parametrize(
    ("name", "content", "line", "words"),
    [
        ("u.item", "10|Film (2001)|||url|0|1\n", 1, "found 7 fields instead of 24"),
        (
            "movies.dat",
            "1::Film (2001)::Drama\n2::Film::\n3::Film\n",
            3,
            "found 2 fields instead of 3",
        ),
    ],
)
def test_malformed_metadata_files(
    tmp_path: Path, name: str, content: str, line: int, words: str
) -> None:
    ratings = "u.data" if name == "u.item" else "ratings.dat"
    write(tmp_path / ratings, "1\t10\t4\t5\n" if name == "u.item" else "1::10::4::5\n")
    path = write(tmp_path / name, content)
    with pytest.raises(DataFormatError, match=f"line {line}: {words}") as caught:
        read(tmp_path)
    assert str(path) in str(caught.value) and "expected MovieLens" in str(caught.value)


def test_malformed_parquet_names_file_and_row(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"], "time": ["1", "soon"]}).to_parquet(path)
    with pytest.raises(DataFormatError, match=r"row 2: timestamp 'soon' is not a number") as caught:
        read(path)
    assert str(path) in str(caught.value)
    with pytest.raises(DataFormatError, match="no item column 'iid'"):
        read(path, columns="item=iid")
    broken = write(tmp_path / "broken.parquet", "not parquet")
    with pytest.raises(DataFormatError, match="not a Parquet file"):
        read(broken)


def test_latin1_atomic_file_falls_back_from_utf8(tmp_path: Path) -> None:
    write(tmp_path / "x.inter", "user_id:token\titem_id:token\n1\t2\n")
    write(tmp_path / "x.item", "item_id:token\ttitle:token_seq\n2\tAmélie\n", encoding="latin-1")
    assert read(tmp_path / "x.inter").items_meta.loc["2", "title"] == "Amélie"


def test_windows_line_ends_and_byte_order_mark(tmp_path: Path) -> None:
    inter = tmp_path / "w.inter"
    inter.write_bytes("\ufeffuser_id:token\titem_id:token\r\n1\t2\r\n1\t3\r\n".encode())
    assert read(inter).items.tolist() == ["2", "3"]
    table = tmp_path / "w.csv"
    table.write_bytes("\ufeffuser,item,time\r\na,b,1\r\n".encode())
    assert read(table).timestamps.tolist() == [1]
    log = tmp_path / "w.txt"
    log.write_bytes(b"a b\r\na c\r\n")
    assert read(log).items.tolist() == ["b", "c"]


def test_seqline_one_user_per_line_is_detected(tmp_path: Path) -> None:
    path = write(tmp_path / "Shop.txt", "1 10 11 12\n2 11 10\n\n3 12 12 13 10\n")
    source = detect_source(path)
    assert source.fmt == "seqline"
    raw = read_source(source)
    assert raw.users.tolist() == ["1"] * 3 + ["2"] * 2 + ["3"] * 4
    assert raw.items.tolist() == ["10", "11", "12", "11", "10", "12", "12", "13", "10"]
    assert raw.timestamps is None
    # The folder form finds the single .txt file and detects the same format.
    assert detect_source(tmp_path).fmt == "seqline"


def test_two_field_lines_stay_text_and_seqline_can_be_forced(tmp_path: Path) -> None:
    path = write(tmp_path / "log.txt", "1 10\n2 11\n")
    assert detect_source(path).fmt == "text"
    raw = read(path, "seqline")
    assert raw.users.tolist() == ["1", "2"]
    assert raw.items.tolist() == ["10", "11"]


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        ("1 10 11\n2\n", 2, "user '2' has no items"),
        ("1 10 11\n2 12 13\n1 14 15\n", 3, "user '1' already has a sequence on line 1"),
        ("\n\n", 1, "empty"),
    ],
)
def test_malformed_seqline_names_file_line_and_format(
    tmp_path: Path, content: str, line: int, words: str
) -> None:
    path = write(tmp_path / "seq.txt", content)
    with pytest.raises(DataFormatError) as caught:
        read(path, "seqline")
    message = str(caught.value)
    assert str(path) in message
    assert f"line {line}:" in message
    assert words in message
    assert "one user per line" in message

"""load_corpus: unlabeled text from text files, gzip, records, tar archives, folders and
tfds:, in documents and stream mode; real tiny Shakespeare and IMDB samples, planted errors."""

import gzip
import io
import json
import os
import tarfile

import pytest

from conftest import IMDB_TAR, SHARED_DATA, write_file
from seqtasks.data.text_corpus import TextCorpus, load_corpus
from seqtasks.errors import DataError

SHAKESPEARE = os.path.join(SHARED_DATA, "tinyshakespeare", "train.txt")


def write_tar(path, members: dict, compression: str = "gz") -> str:
    """A tar archive of ``members`` (name -> str or bytes), in the order given."""
    with tarfile.open(path, f"w:{compression}" if compression else "w") as archive:
        for name, content in members.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)


REVIEWS = {
    "aclImdb/README": "Large Movie Review Dataset v1.0\n",
    "aclImdb/imdbEr.txt": "0.1\n0.2\n",
    "aclImdb/imdb.vocab": "the\nand\n",
    "aclImdb/train/urls_pos.txt": "http://www.imdb.com/title/tt0453418/usercomments\n",
    "aclImdb/train/pos/10_9.txt": "Loved it.<br /><br />Would watch again.",
    "aclImdb/train/pos/0_9.txt": "Great<br/>film<BR>really",
    "aclImdb/train/neg/1_2.txt": "  \n ",
    "aclImdb/train/neg/0_3.txt": "Dull.",
    "aclImdb/train/pos/._0_9.txt": "\x00\x05AppleDouble",
    "top.txt": "a file at the archive root",
}


@pytest.fixture(scope="module")
def shakespeare_text():
    with open(SHAKESPEARE, encoding="utf-8", newline="") as f:
        return f.read()


@pytest.fixture(scope="module")
def imdb_train():
    """The real IMDB training archive (25,000 reviews plus README, urls and vocab files)."""
    return load_corpus(IMDB_TAR)


def test_stream_mode_reads_a_text_file_exactly(shakespeare_text):
    corpus = load_corpus(SHAKESPEARE, mode="stream")
    assert len(corpus) == 1 and len(corpus.texts[0]) == 1_003_854
    assert corpus.stream_text() == shakespeare_text
    assert corpus.names == [SHAKESPEARE] and corpus.source == SHAKESPEARE
    assert corpus.skipped_empty == 0 and corpus.skipped_bad_rows is None


def test_documents_mode_gives_each_non_blank_line(shakespeare_text):
    corpus = load_corpus(SHAKESPEARE)
    lines = shakespeare_text.split("\n")
    assert len(corpus) == 29_242 == sum(1 for line in lines if line.strip())
    assert corpus.texts[:3] == [
        "First Citizen:",
        "Before we proceed any further, hear me speak.",
        "All:",
    ]
    assert corpus.names[:3] == [f"{SHAKESPEARE}:{n}" for n in (1, 2, 4)]  # line 3 is blank
    assert corpus.skipped_empty == 0  # blank lines separate, they are not empty documents
    first = load_corpus(SHAKESPEARE, max_documents=5)
    assert first.texts == corpus.texts[:5] and first.names == corpus.names[:5]


def test_text_lines_with_crlf_bom_and_whitespace_lines(tmp_path):
    path = write_file(tmp_path / "notes", b"\xef\xbb\xbfone\r\n\r\n   \r\n two \r\nthree")
    corpus = load_corpus(path)  # no extension: read as text
    assert corpus.texts == ["one", " two ", "three"]
    assert corpus.names == [f"{path}:1", f"{path}:4", f"{path}:5"]
    assert load_corpus(path, mode="stream").texts == ["one\r\n\r\n   \r\n two \r\nthree"]


def test_gzip_text_in_both_modes_and_a_broken_gzip(tmp_path):
    path = write_file(tmp_path / "corpus.txt.gz", gzip.compress("α line\n\nβ line\n".encode()))
    assert load_corpus(path).texts == ["α line", "β line"]
    assert load_corpus(path).names == [f"{path}:1", f"{path}:3"]
    assert load_corpus(path, mode="stream").stream_text() == "α line\n\nβ line\n"
    broken = write_file(tmp_path / "broken.gz", b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match=r"^.*broken\.gz: not a readable gzip file: "):
        load_corpus(broken)


def test_stream_text_adds_a_newline_only_where_none_ends_a_text():
    corpus = TextCorpus(["a\n", "b", "c", "d\n"], "x")
    assert corpus.stream_text() == "a\nb\nc\nd\n"
    assert TextCorpus([], "x").stream_text() == ""
    assert TextCorpus(["only"], "x").stream_text() == "only"


def test_subset_keeps_texts_names_and_counts():
    corpus = TextCorpus(["a", "b", "c"], "src", ["f:1", "f:2", "f:3"], 4, 2)
    part = corpus.subset([2, 0])
    assert part.texts == ["c", "a"] and part.names == ["f:3", "f:1"]
    assert (part.source, part.skipped_empty, part.skipped_bad_rows) == ("src", 4, 2)
    assert TextCorpus(["a", "b"], "tfds:x").subset([1]).names is None
    assert len(corpus) == 3  # the original is unchanged


def test_archive_reads_folder_txt_members_in_name_order(tmp_path):
    path = write_tar(tmp_path / "reviews.tar.gz", REVIEWS)
    corpus = load_corpus(path)
    members = [
        "aclImdb/train/neg/0_3.txt",
        "aclImdb/train/pos/0_9.txt",
        "aclImdb/train/pos/10_9.txt",
    ]
    assert corpus.names == [f"{path}:{m}" for m in members]
    assert corpus.texts == ["Dull.", "Great\nfilm\nreally", "Loved it.\n\nWould watch again."]
    assert corpus.skipped_empty == 1  # neg/1_2.txt is whitespace only
    positive = load_corpus(path, split="pos", mode="stream")
    assert positive.texts == corpus.texts[1:]
    assert positive.stream_text() == "Great\nfilm\nreally\nLoved it.\n\nWould watch again."
    assert load_corpus(path, split="train", max_documents=1).texts == ["Dull."]
    with pytest.raises(
        DataError,
        match=r"reviews\.tar\.gz: no text \(expected <folder>/<name>\.txt members in a folder 'unsup'\)$",
    ):
        load_corpus(path, split="unsup")


def test_plain_tar_and_archive_errors(tmp_path):
    path = write_tar(tmp_path / "plain.tar", {"docs/a.txt": "first", "docs/b.txt": "second"}, "")
    assert load_corpus(path).texts == ["first", "second"]
    latin = write_tar(tmp_path / "latin.tgz", {"docs/a.txt": "ok", "docs/b.txt": b"caf\xe9\nx"})
    with pytest.raises(DataError, match=r"latin\.tgz:docs/b\.txt:1: not valid UTF-8 \(byte 0xe9"):
        load_corpus(latin)
    truncated = write_file(tmp_path / "cut.tar.gz", open(path, "rb").read()[:700])
    with pytest.raises(DataError, match=r"cut\.tar\.gz: not a readable tar archive: "):
        load_corpus(truncated)


def test_real_imdb_archive_skips_readme_urls_and_vocab(imdb_train):
    assert len(imdb_train) == 25_000 and imdb_train.skipped_empty == 0
    folders = {name.split(":", 1)[1].rsplit("/", 1)[0] for name in imdb_train.names}
    assert folders == {"aclImdb/train/neg", "aclImdb/train/pos"}
    assert imdb_train.names[0] == f"{IMDB_TAR}:aclImdb/train/neg/0_3.txt"
    assert imdb_train.names == sorted(imdb_train.names)
    assert not any("<br" in text.lower() for text in imdb_train.texts)
    assert sum("\n\n" in text for text in imdb_train.texts) > 10_000  # <br /><br /> breaks


def test_records_pick_the_text_column(tmp_path):
    csv_path = write_file(tmp_path / "a.csv", 'id,text\n1,"first, quoted"\n2,second\n')
    corpus = load_corpus(csv_path)
    assert corpus.texts == ["first, quoted", "second"]
    assert corpus.names == [f"{csv_path}:2", f"{csv_path}:3"] and corpus.skipped_bad_rows is None
    tsv_path = write_file(tmp_path / "sst.tsv", "sentence\tlabel\na fine film\t1\n")
    assert load_corpus(tsv_path).texts == ["a fine film"]  # classification's text names
    jsonl = write_file(tmp_path / "b.jsonl", '{"id": 1, "body": "only string"}\n')
    assert load_corpus(jsonl).texts == ["only string"]  # the only string field
    as_csv = write_file(tmp_path / "b.data", "body\nrow one\n")
    assert load_corpus(as_csv, format="csv").names == [f"{as_csv}:2"]
    assert load_corpus(as_csv, mode="stream").texts == ["body\nrow one\n"]  # unknown: text
    assert load_corpus(csv_path, mode="stream").stream_text() == "first, quoted\nsecond"


def test_records_parquet_only_string_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = str(tmp_path / "docs.parquet")
    pq.write_table(pa.table({"score": [1, 2, 3], "body": ["x", None, "z"]}), path)
    corpus = load_corpus(path, on_bad_rows="skip")
    assert corpus.texts == ["x", "z"] and corpus.names == [f"{path}:row 1", f"{path}:row 3"]
    assert corpus.skipped_bad_rows == 1
    with pytest.raises(DataError, match=r"docs\.parquet:row 2: field 'body' is null"):
        load_corpus(path)


def test_records_column_errors(tmp_path):
    two = write_file(tmp_path / "two.csv", "title,body\nt,b\n")
    with pytest.raises(
        DataError,
        match=r"two\.csv: cannot find a text column \(tried text, sentence, review, content, "
        r"then the only string column: found 2 string columns\); the columns are: title, body; "
        r"pass --text-column$",
    ):
        load_corpus(two)
    assert load_corpus(two, text_column="body").texts == ["b"]
    with pytest.raises(
        DataError, match=r"two\.csv: no text column 'note'; the columns are: title, body$"
    ):
        load_corpus(two, text_column="note")
    numbers = write_file(tmp_path / "n.jsonl", json.dumps({"a": 1, "b": 2.5}) + "\n")
    with pytest.raises(DataError, match=r"n\.jsonl:1: cannot find a text column .*found no string"):
        load_corpus(numbers)


def test_empty_record_texts_are_bad_rows_as_in_classification(tmp_path, caplog):
    path = write_file(tmp_path / "r.tsv", "text\tlabel\ngood\t1\n  \t0\nfine\t1\n")
    with pytest.raises(DataError, match=r"r\.tsv:3: field 'text' is empty$"):
        load_corpus(path)
    corpus = load_corpus(path, on_bad_rows="skip")
    assert corpus.texts == ["good", "fine"] and corpus.skipped_bad_rows == 1
    assert corpus.skipped_empty == 0
    assert "skipped 1 bad row of" in caplog.text and "empty text" in caplog.text
    only_bad = write_file(tmp_path / "bad.tsv", "text\tlabel\n \t1\n")
    with pytest.raises(
        DataError,
        match=r"bad\.tsv: no text \(expected rows with a non-empty text field\) \(skipped 1 bad row",
    ):
        load_corpus(only_bad, on_bad_rows="skip")


def test_folder_reads_known_files_in_path_order(tmp_path):
    write_file(tmp_path / "b.txt", "b one\n\nb two\n")
    (tmp_path / "a").mkdir()
    write_file(tmp_path / "a" / "rows.csv", "text\nfrom csv\n")
    write_tar(tmp_path / "a" / "z.tar.gz", {"aclImdb/train/unsup/0_0.txt": "unsup<br />review"})
    write_file(tmp_path / "c.txt", "   \n")
    for skipped in ("README.md", "LICENSE", ".hidden.txt", "picture.png", "notes.md"):
        write_file(tmp_path / skipped, "not read\n")
    (tmp_path / ".git").mkdir()
    write_file(tmp_path / ".git" / "x.txt", "not read\n")
    folder = str(tmp_path)
    corpus = load_corpus(folder)
    assert corpus.texts == ["from csv", "unsup\nreview", "b one", "b two"]
    assert corpus.names == [
        os.path.join(folder, "a", "rows.csv") + ":2",
        os.path.join(folder, "a", "z.tar.gz") + ":aclImdb/train/unsup/0_0.txt",
        os.path.join(folder, "b.txt") + ":1",
        os.path.join(folder, "b.txt") + ":3",
    ]
    assert corpus.skipped_bad_rows is None and corpus.skipped_empty == 0
    stream = load_corpus(folder, mode="stream")
    assert stream.texts == ["from csv", "unsup\nreview", "b one\n\nb two\n"]
    assert stream.skipped_empty == 1  # c.txt
    assert load_corpus(folder, split="unsup").texts == ["unsup\nreview"]
    assert load_corpus(folder, split="a").texts == ["from csv"]  # files under a folder 'a'
    assert load_corpus(folder, max_documents=2).texts == corpus.texts[:2]


def test_no_text_and_path_errors(tmp_path):
    with pytest.raises(DataError, match=r"^/no/such/corpus\.txt: no such file or directory$"):
        load_corpus("/no/such/corpus.txt")
    empty = write_file(tmp_path / "empty.txt", "")
    with pytest.raises(
        DataError, match=r"empty\.txt: no text \(expected UTF-8 text, not only whitespace\)$"
    ):
        load_corpus(empty)
    blank = write_file(tmp_path / "blank.txt", " \n\t\n")
    for mode in ("documents", "stream"):
        with pytest.raises(DataError, match=r"blank\.txt: no text"):
            load_corpus(blank, mode=mode)
    folder = tmp_path / "nothing"
    folder.mkdir()
    write_file(folder / "README.txt", "about\n")
    with pytest.raises(
        DataError,
        match=r"nothing: no text \(expected \.txt/\.text/\.gz, .* files in the folder or below it\)$",
    ):
        load_corpus(str(folder))
    latin = write_file(tmp_path / "latin.txt", b"ok\ncaf\xe9\n")
    with pytest.raises(
        DataError,
        match=r"latin\.txt:2: not valid UTF-8 \(byte 0xe9 at offset 6\); expected UTF-8 text$",
    ):
        load_corpus(latin)


def test_argument_errors(tmp_path):
    path = write_file(tmp_path / "t.txt", "text\n")
    with pytest.raises(
        DataError, match=r"--mode: expected one of documents, stream; received: 'lines'"
    ):
        load_corpus(path, mode="lines")
    with pytest.raises(
        DataError,
        match=r"--format: expected one of text, tsv, csv, jsonl, parquet; received: 'xml'",
    ):
        load_corpus(path, format="xml")
    with pytest.raises(
        DataError, match=r"t\.txt: --split 'unsup' applies to archives, folders and tfds:"
    ):
        load_corpus(path, split="unsup")
    with pytest.raises(DataError, match=r"--max-documents: expected at least 1; received: 0"):
        load_corpus(path, max_documents=0)
    with pytest.raises(DataError, match=r"--on-bad-rows: expected one of error, skip"):
        load_corpus(path, on_bad_rows="ignore")
    assert load_corpus(write_file(tmp_path / "t.csv", "a,b\n"), format="text").texts == ["a,b"]


def test_unknown_tfds_dataset_is_one_line():
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(
        DataError, match=r"^tfds:no_such_corpus_xyz: cannot load split 'train': .*not found"
    ) as error:
        load_corpus("tfds:no_such_corpus_xyz")
    assert "\n" not in str(error.value)


def test_tfds_text_feature_and_decoding(monkeypatch):
    """A stand-in tensorflow_datasets (no download): the only scalar string feature is read."""
    import sys
    import types

    def feature(dtype, shape=()):
        return types.SimpleNamespace(dtype=types.SimpleNamespace(name=dtype), shape=shape)

    features = {
        "title": feature("string", (None,)),
        "body": feature("string"),
        "n": feature("int64"),
    }
    examples = [
        {"body": "caf\xe9 one".encode(), "n": 1},
        {"body": b"  ", "n": 2},
        {"body": b"two", "n": 3},
    ]
    calls = []

    def load(name, split, with_info):
        calls.append((name, split))
        return examples, types.SimpleNamespace(features=features)

    fake = types.SimpleNamespace(load=load, as_numpy=lambda dataset: iter(dataset))
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    corpus = load_corpus("tfds:reviews", split="unsupervised")
    assert corpus.texts == ["caf\xe9 one", "two"] and corpus.names is None
    assert corpus.skipped_empty == 1 and calls == [("reviews", "unsupervised")]
    assert load_corpus("tfds:reviews", text_column="body").texts == corpus.texts
    assert calls[-1] == ("reviews", "train")
    del features["body"]
    with pytest.raises(
        DataError, match=r"^tfds:reviews: cannot find a text column .*found no string"
    ):
        load_corpus("tfds:reviews")

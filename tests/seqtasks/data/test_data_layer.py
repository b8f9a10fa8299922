"""One data layer for translation and captioning: records files, column options, --on-bad-rows.

Real Multi30k and Anki pairs and Flickr8k captions are converted in the test into CSV,
TSV (with a header), JSONL and Parquet, read back and compared exactly; each kind of bad
row is planted and checked with its exact message (``error``) or count and lines (``skip``).
"""

import csv
import gzip
import io
import json
import logging
import os
import re
import zipfile

import numpy as np
import pytest

from cli import cli
from conftest import SHARED_DATA, flickr_images, write_file
from seqtasks.data.captions import load_captions
from seqtasks.data.parallel import load_parallel
from seqtasks.errors import DataError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

MULTI30K = os.path.join(SHARED_DATA, "multi30k")
ANKI = os.path.join(SHARED_DATA, "anki", "spa-eng.zip")
IMAGES = ""  # the image folder of the flickr_rows fixture


def raises(message: str):
    return pytest.raises(DataError, match="^" + re.escape(message) + "$")


@pytest.fixture(scope="module")
def multi30k_pairs() -> list[tuple[str, str]]:
    """The first 50 real Multi30k training pairs (en, de)."""
    sides = []
    for lang in ("en", "de"):
        with gzip.open(os.path.join(MULTI30K, f"train.{lang}.gz"), "rt", encoding="utf-8") as f:
            sides.append([next(f).rstrip("\n") for _ in range(50)])
    return list(zip(*sides))


@pytest.fixture(scope="module")
def anki_pairs() -> list[tuple[str, str]]:
    """The first 30 real Anki spa-eng pairs (en, es)."""
    with zipfile.ZipFile(ANKI) as archive:
        lines = archive.read("spa-eng/spa.txt").decode("utf-8").split("\n")[:30]
    return [tuple(line.split("\t")[:2]) for line in lines]


def write_records(path, format: str, columns: list[str], rows: list[tuple]) -> str:
    """``rows`` under ``columns`` as a CSV, TSV (header row), JSONL or Parquet file."""
    path = str(path)
    if format == "parquet":
        pq.write_table(pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)}), path)
    elif format == "jsonl":
        lines = [json.dumps(dict(zip(columns, r)), ensure_ascii=False) for r in rows]
        write_file(path, "\n".join(lines) + "\n")
    elif format == "csv":
        out = io.StringIO()
        csv.writer(out).writerows([columns, *rows])
        write_file(path, out.getvalue())
    else:
        write_file(path, "\n".join("\t".join(r) for r in [columns, *rows]) + "\n")
    return path


EXTENSIONS = {"csv": "csv", "tsv": "tsv", "jsonl": "jsonl", "parquet": "parquet"}


# --- translation: records ----------------------------------------------------------------


@pytest.mark.parametrize("format", ["csv", "tsv", "jsonl", "parquet"])
def test_translation_records_round_trip(tmp_path, multi30k_pairs, anki_pairs, format):
    # Multi30k under language-code columns (the default), plus an extra column.
    rows = [(str(i), en, de) for i, (en, de) in enumerate(multi30k_pairs)]
    path = write_records(tmp_path / f"m.{format}", format, ["id", "en", "de"], rows)
    data = load_parallel(path, source_lang="en", target_lang="de")
    assert list(zip(data.sources, data.targets)) == multi30k_pairs
    assert data.source == path and data.skipped_bad_rows is None
    reverse = load_parallel(path, source_lang="de", target_lang="en", max_examples=3)
    assert list(zip(reverse.targets, reverse.sources)) == multi30k_pairs[:3]
    # Anki under source/target (the fallback), and under names given as options.
    path = write_records(tmp_path / f"a.{format}", format, ["source", "target"], anki_pairs)
    data = load_parallel(path, source_lang="en", target_lang="es", on_bad_rows="skip")
    assert list(zip(data.sources, data.targets)) == anki_pairs and data.skipped_bad_rows == 0
    path = write_records(tmp_path / f"n.{format}", format, ["spanish", "english"], anki_pairs)
    data = load_parallel(
        path, source_lang="es", target_lang="en", source_column="spanish", target_column="english"
    )
    assert list(zip(data.sources, data.targets)) == anki_pairs


def test_translation_tsv_txt_records_or_pair_file(tmp_path, anki_pairs):
    """A .tsv/.txt is records when its first line names both columns, --format or a column
    option is given; otherwise a headerless pair file (the Anki layout)."""
    headerless = "".join(f"{en}\t{es}\tCC-BY\n" for en, es in anki_pairs)
    for name in ("pairs.tsv", "pairs.txt"):
        path = write_file(tmp_path / name, headerless)
        data = load_parallel(path, source_lang="en", target_lang="es")
        assert list(zip(data.sources, data.targets)) == anki_pairs
        with_header = write_file(tmp_path / f"h{name}", "en\tes\tnote\n" + headerless)
        data = load_parallel(with_header, source_lang="en", target_lang="es")
        assert list(zip(data.sources, data.targets)) == anki_pairs
    # The first pair read as a header: column options or --format make a file records.
    path = str(tmp_path / "pairs.txt")
    data = load_parallel(
        path, source_lang="en", target_lang="es", source_column="Go.", target_column="Ve."
    )
    assert data.sources[0] == anki_pairs[1][0] and len(data) == 29
    with raises(f"{path}: cannot find a source column (tried en, source); the columns are: "
                "Go., Ve., CC-BY; pass --source-column"):  # fmt: skip
        load_parallel(path, source_lang="en", target_lang="es", format="tsv")
    # The real Anki zip and Multi30k folder keep working, and refuse records options.
    data = load_parallel(ANKI, source_lang="en", target_lang="es", max_examples=30)
    assert list(zip(data.sources, data.targets)) == anki_pairs
    with raises(f"--format applies to CSV, TSV, JSONL and Parquet files; received it with {ANKI} "
                "(a zip of a pair file)"):  # fmt: skip
        load_parallel(ANKI, source_lang="en", target_lang="es", format="tsv")
    with raises(f"--source-column applies to CSV, TSV, JSONL and Parquet files; received it with "
                f"{MULTI30K} (a folder of <split>.<lang> files)"):  # fmt: skip
        load_parallel(MULTI30K, source_lang="en", target_lang="de", source_column="en")


# --- translation: bad rows ---------------------------------------------------------------

# (file name, content, error message after "<path>", skip summary after "<path> (")
TRANSLATION_BAD = [
    (
        "empty.csv",
        "en,de\nA dog .,Ein Hund .\nA cat ., \n,Leer\nA bird .,Ein Vogel .\n",
        ":3: field 'de' is empty (empty target sentence)",
        "lines 3, 4): empty target, empty source",
    ),
    (
        "fields.tsv",
        "en\tde\nA dog .\tEin Hund .\nno tab here\nA\tB\tC\nA bird .\tEin Vogel .\n",
        ":3: expected 2 tab-separated fields (en, de), got 1",
        "lines 3, 4): wrong number of fields",
    ),
    (
        "utf8.csv",
        b"en,de\nA dog .,Ein Hund .\nA caf\xe9 .,Ein Caf\xe9 .\nA bird .,Ein Vogel .\n",
        ":3: not valid UTF-8 (byte 0xe9 at offset 30); expected UTF-8 text",
        "line 3): not valid UTF-8",
    ),
    (
        "json.jsonl",
        '{"en": "A dog .", "de": "Ein Hund ."}\n{"en": "A cat ."\n[1, 2]\n'
        '{"en": "A bird .", "de": "Ein Vogel ."}\n{"en": "A fish ."}\n{"en": 3, "de": "Drei"}\n',
        ":2: invalid JSON: Expecting ',' delimiter (column 17)",
        "lines 2, 3, 5, 6): invalid JSON, not a JSON object, missing target, source not a string",
    ),
    (
        "pairs.txt",
        b"A dog .\tEin Hund .\nno tab\nA cat .\t \n \tLeer\nA caf\xe9\tCaf\xe9\nA bird .\tVogel\n",
        ":5: not valid UTF-8 (byte 0xe9 at offset 48); expected UTF-8 text",
        "lines 2, 3, 4, 5): no tab, empty target, empty source, not valid UTF-8",
    ),
]


@pytest.mark.parametrize("name, content, message, summary", TRANSLATION_BAD)
def test_translation_bad_rows_error_and_skip(tmp_path, caplog, name, content, message, summary):
    path = write_file(tmp_path / name, content)
    with raises(path + message):
        load_parallel(path, source_lang="en", target_lang="de")
    with caplog.at_level(logging.WARNING):
        data = load_parallel(path, source_lang="en", target_lang="de", on_bad_rows="skip")
    count = len(summary.split(")")[0].split(","))
    rows = "row" if count == 1 else "rows"
    assert caplog.messages == [f"skipped {count} bad {rows} of {path} ({summary}"]
    assert data.skipped_bad_rows == count
    assert data.sources[0] == "A dog ." and data.sources[-1] == "A bird ."
    assert len(data) == 2


def test_translation_missing_columns_parquet_nulls_and_line_files(tmp_path, caplog):
    path = write_records(tmp_path / "p.parquet", "parquet", ["english", "german"], [("a", "b")])
    for kwargs, message in [
        ({}, "cannot find a source column (tried en, source); the columns are: english, german; "
         "pass --source-column"),
        ({"source_column": "english", "target_column": "de"},
         "no target column 'de'; the columns are: english, german"),
        ({"source_column": "english", "target_column": "english"},
         "column 'english' cannot be both the source and the target"),
    ]:  # fmt: skip
        with raises(f"{path}: {message}"):
            load_parallel(path, source_lang="en", target_lang="de", on_bad_rows="skip", **kwargs)
    nulls = str(tmp_path / "n.parquet")
    pq.write_table(pa.table({"en": ["a", None, "c"], "de": ["x", "y", None]}), nulls)
    with raises(f"{nulls}:row 2: field 'en' is null"):
        load_parallel(nulls, source_lang="en", target_lang="de")
    with caplog.at_level(logging.WARNING):
        data = load_parallel(nulls, source_lang="en", target_lang="de", on_bad_rows="skip")
    assert (data.sources, data.skipped_bad_rows) == (["a"], 2)
    assert caplog.messages == [
        f"skipped 2 bad rows of {nulls} (rows 2, 3): null source, null target"
    ]
    # Two line files: the error names the file with the empty line; a line blank on both
    # sides is a paragraph break, not a pair; more than five bad rows end with "...".
    src = write_file(tmp_path / "a.en", "one\n\n" + "x\n" * 6 + "\nlast\n")
    tgt = write_file(tmp_path / "a.de", "eins\n\n" + " \n" * 6 + "leer\nletzte\n")
    files = dict(source_file=src, target_file=tgt, source_lang="en", target_lang="de")
    with raises(f"{tgt}:3: empty target sentence; expected one, aligned with line 3 of {src}"):
        load_parallel(**files)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        data = load_parallel(**files, on_bad_rows="skip")
    assert data.sources == ["one", "last"] and data.skipped_bad_rows == 7
    assert caplog.messages == [
        f"skipped 7 bad rows of {src} + {tgt} (lines 3, 4, 5, 6, 7, ...): empty target, "
        "empty source"
    ]
    everything_bad = write_file(tmp_path / "bad.csv", "en,de\n,x\n")
    with raises(f"{everything_bad}: no sentence pairs found (split 'train') (skipped 1 bad row "
                f"of {everything_bad} (line 2): empty source)"):  # fmt: skip
        load_parallel(everything_bad, source_lang="en", target_lang="de", on_bad_rows="skip")
    with raises("--on-bad-rows: expected one of error, skip; received: 'drop'"):
        load_parallel(everything_bad, source_lang="en", target_lang="de", on_bad_rows="drop")


# --- captioning --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flickr_rows(tmp_path_factory) -> list[tuple[str, str]]:
    """``(image, caption)`` rows of 4 real Flickr8k dev images, 2 captions each; the
    images are copied to the folder ``IMAGES`` (set here)."""
    global IMAGES
    IMAGES = str(tmp_path_factory.mktemp("images"))
    names, captions = flickr_images(IMAGES, 4)
    return [(image, caption) for image, refs in zip(names, captions) for caption in refs[:2]]


@pytest.mark.parametrize("format", ["csv", "tsv", "jsonl", "parquet"])
def test_caption_records_round_trip(tmp_path, flickr_rows, format):
    path = write_records(tmp_path / f"c.{format}", format, ["image", "caption"], flickr_rows)
    data = load_captions(path, image_dir=IMAGES)
    ids = list(dict.fromkeys(image for image, _ in flickr_rows))
    assert data.ids == ids and data.images.description == IMAGES
    assert data.captions == [[c for i, c in flickr_rows if i == image] for image in ids]
    assert data.skipped_bad_rows is None
    # Other column names, and the format given for a file whose extension says nothing.
    path = write_records(
        tmp_path / "c.data", format, ["text", "file"], [(c, i) for i, c in flickr_rows]
    )
    data = load_captions(
        path, image_dir=IMAGES, format=format, image_column="file", caption_column="text",
        max_examples=2, on_bad_rows="skip",
    )  # fmt: skip
    assert data.ids == ids[:2] and data.captions[1] == [c for i, c in flickr_rows if i == ids[1]]
    assert data.skipped_bad_rows == 0


# (file name, content, error message after "<path>", skip summary after "<path> (")
CAPTION_BAD = [
    (
        "c.csv",
        "image,caption\n{0},A dog .\n,no image\n{0}, \n{1},A cat .\n",
        ":3: empty image name",
        "lines 3, 4): empty image, empty caption",
    ),
    (
        "c.tsv",
        "image\tcaption\n{0}\tA dog .\n{0}\tone\ttoo many\n{1}\tA cat .\n",
        ":3: expected 2 tab-separated fields (image, caption), got 3",
        "line 3): wrong number of fields",
    ),
    (
        "c.jsonl",
        '{{"image": "{0}", "caption": "A dog ."}}\n{{"image": "{0}", "caption":\n'
        '{{"image": "{1}", "caption": "A cat ."}}\n{{"image": "{0}", "caption": null}}\n',
        ":2: invalid JSON: Expecting value (column 50)",
        "lines 2, 4): invalid JSON, null caption",
    ),
    (
        "u.csv",
        "image,caption\n{0},A dog .\n{1},caf\udce9\n{1},A cat .\n",
        ":3: not valid UTF-8 (byte 0xe9 at offset 77); expected UTF-8 text",
        "line 3): not valid UTF-8",
    ),
    (
        "m.csv",
        "image,caption\n{0},A dog .\nnope.jpg,one\n{1},A cat .\nnope.jpg,two\n",
        ":3: image file nope.jpg not found in {images}",
        "lines 3, 5): image not found",
    ),
]


@pytest.mark.parametrize("name, content, message, summary", CAPTION_BAD)
def test_caption_bad_rows_error_and_skip(
    tmp_path, caplog, flickr_rows, name, content, message, summary
):
    first, second = flickr_rows[0][0], flickr_rows[2][0]
    text = content.format(first, second).encode("utf-8", "surrogateescape")
    path = write_file(tmp_path / name, text)
    with raises(path + message.format(images=IMAGES)):
        load_captions(path, image_dir=IMAGES)
    with caplog.at_level(logging.WARNING):
        data = load_captions(path, image_dir=IMAGES, on_bad_rows="skip")
    count = len(summary.split(")")[0].split(","))
    rows = "row" if count == 1 else "rows"
    assert caplog.messages == [f"skipped {count} bad {rows} of {path} ({summary}"]
    assert data.skipped_bad_rows == count
    assert data.ids == [first, second] and data.captions == [["A dog ."], ["A cat ."]]


def test_caption_missing_columns_npz_and_flickr8k_token_file(tmp_path, caplog, flickr_rows):
    path = write_records(tmp_path / "c.jsonl", "jsonl", ["file", "text"], flickr_rows)
    with raises(f"{path}: cannot find an image column (tried image); the columns are: file, text; "
                "pass --image-column"):  # fmt: skip
        load_captions(path, image_dir=IMAGES, on_bad_rows="skip")
    with raises(f"{path}:1: no caption column 'caption'; the columns are: file, text"):
        load_captions(path, image_dir=IMAGES, image_column="file", caption_column="caption")
    # Feature vectors: a caption row whose vector is missing is a bad row.
    np.savez(tmp_path / "f.npz", a=np.zeros(4), b=np.ones(4))
    write_file(tmp_path / "f.csv", "image,caption\na,one\nzz,two\nb,three\n")
    with raises(f"{tmp_path / 'f.csv'}:3: no feature vector 'zz' in {tmp_path / 'f.npz'}"):
        load_captions(str(tmp_path / "f.npz"))
    with caplog.at_level(logging.WARNING):
        data = load_captions(str(tmp_path / "f.npz"), on_bad_rows="skip")
    assert data.ids == ["a", "b"] and data.skipped_bad_rows == 1
    np.testing.assert_array_equal(data.features, [np.zeros(4), np.ones(4)])
    # The Flickr8k layout: malformed token lines are bad rows too.
    folder = tmp_path / "flickr"
    os.makedirs(folder / "images")
    write_file(folder / "images" / flickr_rows[0][0], b"\xff\xd8 not decoded here")
    tokens = f"{flickr_rows[0][0]}#0\tA dog .\nno tab\n{flickr_rows[0][0]}#1\t \n"
    write_file(folder / "Flickr8k.token.txt", tokens)
    write_file(folder / "Flickr_8k.trainImages.txt", flickr_rows[0][0] + "\n")
    token_file = str(folder / "Flickr8k.token.txt")
    with raises(f"{token_file}:2: expected '<image>#<n><TAB><caption>', found no tab"):
        load_captions(str(folder))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        data = load_captions(str(folder), on_bad_rows="skip")
    assert data.captions == [["A dog ."]] and data.skipped_bad_rows == 2
    assert caplog.messages == [
        f"skipped 2 bad rows of {token_file} (lines 2, 3): no tab, empty caption"
    ]
    with raises(f"--image-column applies to CSV, TSV, JSONL and Parquet caption files; received it "
                f"with the Flickr8k folder {folder}"):  # fmt: skip
        load_captions(str(folder), image_column="file")


# --- the CLI ------------------------------------------------------------------------------


def test_cli_train_bad_rows_fail_before_training(tmp_path, caplog, anki_pairs, flickr_rows):
    """Data is read before anything is trained or written: these runs end at once."""
    from click.testing import CliRunner

    rows = list(anki_pairs[:8])
    rows.insert(2, ("A man without a translation .", ""))  # line 4 (after the header)
    path = write_records(tmp_path / "pairs.csv", "csv", ["english", "spanish"], rows)
    outputs = ["--export-dir", str(tmp_path / "export"), "--run-dir", str(tmp_path / "run")]
    columns = ["--source-column", "english", "--target-column", "spanish"]
    langs = ["--source-lang", "en", "--target-lang", "es"]

    def train(*args):
        return CliRunner().invoke(cli, ["train", *args, *outputs], catch_exceptions=False)

    result = train("translation", "--data", path, *langs)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {path}: cannot find a source column (tried en, source); the columns are: "
        "english, spanish; pass --source-column\n",
    )
    result = train("translation", "--data", path, *langs, *columns)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {path}:4: field 'spanish' is empty (empty target sentence)\n",
    )
    # With skip the bad row is counted and warned about; here the run then stops on a config
    # error (before any training), which keeps this test cheap.
    with caplog.at_level(logging.WARNING):
        result = train(
            "translation", "--data", path, *langs, *columns, "--on-bad-rows", "skip",
            "--set", "validation_data=val",
        )  # fmt: skip
    assert result.exit_code == 2 and "config field 'validation_data' names a split" in result.stderr
    assert caplog.messages == [f"skipped 1 bad row of {path} (line 4): empty target"]
    assert not os.path.exists(tmp_path / "run") and not os.path.exists(tmp_path / "export")
    # Captioning: the same options, every row bad.
    bad = write_records(tmp_path / "c.jsonl", "jsonl", ["file", "text"], [("nope.jpg", "A dog .")])
    caption_columns = ["--image-column", "file", "--caption-column", "text"]
    result = train("captioning", "--data", bad, "--image-dir", IMAGES, *caption_columns)
    assert result.stderr == f"error: {bad}:1: image file nope.jpg not found in {IMAGES}\n"
    result = train(
        "captioning", "--data", bad, "--image-dir", IMAGES, *caption_columns,
        "--on-bad-rows", "skip",
    )  # fmt: skip
    assert result.stderr == (
        f"error: {bad}: no images in the file; expected rows of image and caption (skipped 1 "
        f"bad row of {bad} (line 1): image not found)\n"
    )


def test_recipes_record_the_skipped_count_and_pass_options_on(tmp_path, anki_pairs, flickr_rows):
    from tasks import get_recipe

    rows = list(anki_pairs)
    rows[5] = ("", "Vacío.")  # line 6 (JSONL has no header)
    path = write_records(tmp_path / "pairs.jsonl", "jsonl", ["en", "es"], rows)
    recipe = get_recipe("translation")
    config = recipe.make_config(
        data=path, source_lang="en", target_lang="es", on_bad_rows="skip", vocabulary_size=100
    )
    data = recipe.load_data(config)
    assert len(data) == 29 and data.skipped_bad_rows == 1
    metadata = recipe.prepare(config, data, str(tmp_path)).metadata
    assert metadata["data"]["skipped_bad_rows"] == 1 and metadata["data"]["examples"] == 29
    # evaluate passes the options on: the data is read (and fails here) before the export.
    languages = {"source_lang": "en", "target_lang": "es"}
    with raises(f"{path}:6: field 'en' is empty (empty source sentence)"):
        recipe.evaluate_export(str(tmp_path / "no-export"), languages, data=path, format="jsonl")
    with raises(f"{path}: no target column 'spanish'; the columns are: en, es"):
        recipe.evaluate_export(
            str(tmp_path / "no-export"), languages, data=path, target_column="spanish",
            on_bad_rows="skip",
        )  # fmt: skip
    captions = write_records(tmp_path / "c.tsv", "tsv", ["image", "caption"], [("a.jpg", " ")])
    with raises(f"{captions}:2: empty caption"):
        get_recipe("captioning").evaluate_export(
            str(tmp_path / "no-export"), {}, data=captions, image_dir=IMAGES
        )


def test_jsonl_whose_first_object_lacks_a_column(tmp_path, caplog):
    """JSONL objects carry their own keys: a first object without a column is one bad row."""
    from seqtasks.data.classification import load_text_classification

    def jsonl(name, rows):
        return write_file(tmp_path / name, "".join(json.dumps(r) + "\n" for r in rows))

    pairs = jsonl("p.jsonl", [{"en": "Hi."}, {"en": "A dog.", "de": "Ein Hund."}])
    texts = jsonl("t.jsonl", [{"text": "x"}, {"text": "good", "label": "a"}, {"text": "b", "label": "b"}])  # fmt: skip
    folder = tmp_path / "photos"
    names, _ = flickr_images(folder, 1)
    captions = jsonl("photos/c.jsonl", [{"image": names[0]}, {"image": names[0], "caption": "a dog"}])  # fmt: skip

    with caplog.at_level(logging.WARNING):
        data = load_parallel(pairs, source_lang="en", target_lang="de", on_bad_rows="skip")
        assert (data.sources, data.targets, data.skipped_bad_rows) == (["A dog."], ["Ein Hund."], 1)
        data = load_text_classification(texts, on_bad_rows="skip")
        assert (data.texts, data.labels, data.skipped_bad_rows) == (["good", "b"], ["a", "b"], 1)
        data = load_captions(captions, on_bad_rows="skip")
        assert (data.ids, data.captions, data.skipped_bad_rows) == (names, [["a dog"]], 1)
    assert f"skipped 1 bad row of {pairs} (line 1): missing field" in caplog.text

    with raises(f"{pairs}:1: cannot find a target column (tried de, target); the columns are: en; pass --target-column"):  # fmt: skip
        load_parallel(pairs, source_lang="en", target_lang="de")
    with raises(f"{texts}:1: cannot find a label column (tried label, labels, sentiment, class, target); the columns are: text; pass --label-column"):  # fmt: skip
        load_text_classification(texts)
    with raises(f"{captions}:1: cannot find a caption column (tried caption); the columns are: image; pass --caption-column"):  # fmt: skip
        load_captions(captions)

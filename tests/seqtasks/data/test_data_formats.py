"""Parquet data and --on-bad-rows: real SST-2 rows converted in the test, planted bad rows."""

import json
import logging
import os

import pytest

from cli import cli
from conftest import SST2_TRAIN, TINY, write_file
from seqtasks.data.classification import load_text_classification
from seqtasks.errors import DataError
from seqtasks.export import read_metadata

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

TINY_SETS = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]


def run(*args):
    from click.testing import CliRunner

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def sst2_rows(n: int, skip: int = 0) -> list[tuple[str, str]]:
    """``(sentence, label)`` of real SST-2 training rows ``skip+1 .. skip+n``."""
    with open(SST2_TRAIN, encoding="utf-8") as f:
        lines = f.read().splitlines()[1 + skip : 1 + skip + n]
    return [tuple(line.split("\t")) for line in lines]


def write_parquet(path, columns: dict) -> str:
    pq.write_table(pa.table(columns), str(path))
    return str(path)


@pytest.fixture(scope="module")
def sst2_parquet(tmp_path_factory):
    """The first 200 SST-2 training rows as Parquet, integer labels."""
    rows = sst2_rows(200)
    return write_parquet(
        tmp_path_factory.mktemp("pq") / "reviews.parquet",
        {"sentence": [t for t, _ in rows], "label": [int(y) for _, y in rows]},
    )


def planted_tsv(path) -> str:
    """Real SST-2 rows with 3 bad ones planted at lines 4, 9 and 17."""
    lines = ["sentence\tlabel"] + [f"{t}\t{y}" for t, y in sst2_rows(60)]
    lines.insert(3, "a row with\tone field too\tmany")  # line 4
    lines.insert(8, "   \t1")  # line 9: empty text
    lines.insert(16, "an unlabelled sentence\t")  # line 17: empty label
    return write_file(path, "\n".join(lines) + "\n")


def test_parquet_real_sample_matches_tsv(sst2_parquet):
    data = load_text_classification(sst2_parquet)
    rows = sst2_rows(200)
    assert data.texts == [t for t, _ in rows]
    assert data.labels == [y for _, y in rows]
    assert data.label_set() == ["0", "1"] and data.skipped_bad_rows is None
    assert (
        load_text_classification(sst2_parquet, format="parquet", max_examples=5).texts
        == (data.texts[:5])
    )


def test_parquet_string_labels_and_chosen_columns(tmp_path):
    path = write_parquet(
        tmp_path / "t.pq",
        {
            "id": [1, 2, 3],
            "body": ["reset password", "refund", "crash"],
            "queue": ["it", "b", "it"],
        },
    )
    data = load_text_classification(path, text_column="body", label_column="queue")
    assert data.texts == ["reset password", "refund", "crash"] and data.labels == ["it", "b", "it"]


@pytest.mark.parametrize(
    "columns, kwargs, message",
    [
        (
            {"body": ["a", "b"], "stars": [1, 0]},
            {},
            "p.parquet: cannot find a text column (tried text, sentence, review, content); "
            "the columns are: body, stars; pass --text-column",
        ),
        (
            {"body": ["a", "b"], "stars": [1, 0]},
            {"text_column": "body", "label_column": "queue"},
            "p.parquet: no label column 'queue'; the columns are: body, stars",
        ),
        (
            {"text": ["a", "b", "c"], "label": [1, None, 0]},
            {},
            "p.parquet:row 2: field 'label' is null",
        ),
        (
            {"text": ["a", None], "label": ["x", "y"]},
            {},
            "p.parquet:row 2: field 'text' is null",
        ),
        (
            {"text": ["a", "b", "  "], "label": ["x", "y", "x"]},
            {},
            "p.parquet:row 3: field 'text' is empty",
        ),
        (
            {"text": ["a", "b"], "label": ["x", ""]},
            {},
            "p.parquet:row 2: field 'label' is empty",
        ),
        ({"text": pa.array([], pa.string()), "label": pa.array([], pa.int64())}, {}, "no examples"),
    ],
)
def test_parquet_errors(tmp_path, columns, kwargs, message):
    path = write_parquet(tmp_path / "p.parquet", columns)
    with pytest.raises(DataError) as e:
        load_text_classification(path, **kwargs)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_not_parquet(tmp_path):
    path = write_file(tmp_path / "fake.parquet", "sentence\tlabel\na\t1\n")
    with pytest.raises(DataError, match=r"fake.parquet: not a readable Parquet file: "):
        load_text_classification(path)


def test_parquet_skip_nulls(tmp_path, caplog):
    path = write_parquet(
        tmp_path / "p.parquet", {"text": ["a", None, "c", "d"], "label": [1, 0, None, 0]}
    )
    with caplog.at_level(logging.WARNING):
        data = load_text_classification(path, on_bad_rows="skip")
    assert data.texts == ["a", "d"] and data.skipped_bad_rows == 2
    assert f"skipped 2 bad rows of {path} (rows 2, 3): null text, null label" in caplog.messages


def test_skip_tsv_with_planted_bad_rows(tmp_path, caplog):
    path = planted_tsv(tmp_path / "reviews.tsv")
    with pytest.raises(DataError, match=r"reviews.tsv:4: expected 2 tab-separated fields"):
        load_text_classification(path)  # default: error, exactly as before
    with caplog.at_level(logging.WARNING):
        data = load_text_classification(path, on_bad_rows="skip")
    assert len(data) == 60 and data.skipped_bad_rows == 3
    assert data.texts == [t for t, _ in sst2_rows(60)]
    assert caplog.messages == [
        f"skipped 3 bad rows of {path} (lines 4, 9, 17): "
        "wrong number of fields, empty text, empty label"
    ]


def test_skip_lists_the_first_five_and_handles_every_reason(tmp_path, caplog):
    jsonl = write_file(
        tmp_path / "d.jsonl",
        b'{"text": "ok", "label": 1}\n'
        b'{"text": "caf\xe9", "label": 0}\n'  # 2: bad UTF-8
        b"[1, 2]\n"  # 3: not an object
        b'{"text": "x", \n'  # 4: invalid JSON
        b'{"text": "y"}\n'  # 5: missing label
        b'{"text": "z", "label": null}\n'  # 6: null label
        b'{"text": "", "label": 1}\n'  # 7: empty text
        b'{"text": "fine", "label": 0}\n',
    )
    with caplog.at_level(logging.WARNING):
        data = load_text_classification(jsonl, on_bad_rows="skip")
    assert data.texts == ["ok", "fine"] and data.skipped_bad_rows == 6
    assert caplog.messages == [
        f"skipped 6 bad rows of {jsonl} (lines 2, 3, 4, 5, 6, ...): not valid UTF-8, "
        "not a JSON object, invalid JSON, missing label, null label, empty text"
    ]
    csv = write_file(tmp_path / "d.csv", b'text,label\nok,1\n"caf\xe9\nau lait",0\nfine,0\nx\n')
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        data = load_text_classification(csv, on_bad_rows="skip")
    assert data.texts == ["ok", "fine"] and data.skipped_bad_rows == 2
    assert caplog.messages == [
        f"skipped 2 bad rows of {csv} (lines 3, 6): not valid UTF-8, wrong number of fields"
    ]
    with pytest.raises(DataError, match=r"d.csv:3: not valid UTF-8 \(byte 0xe9"):
        load_text_classification(csv)
    header = write_file(tmp_path / "h.tsv", b"sentenc\xe9\tlabel\na\t1\n")
    with pytest.raises(DataError, match=r"h.tsv:1: not valid UTF-8 in the header"):
        load_text_classification(header, on_bad_rows="skip")
    everything_bad = write_file(tmp_path / "bad.tsv", "sentence\tlabel\n \t1\n")
    with pytest.raises(
        DataError,
        match=r"bad.tsv: no examples found \(skipped 1 bad row of .*bad.tsv \(line 2\): empty text\)",
    ):
        load_text_classification(everything_bad, on_bad_rows="skip")
    with pytest.raises(DataError, match="--on-bad-rows: expected one of error, skip"):
        load_text_classification(everything_bad, on_bad_rows="ignore")


def test_cli_parquet_train_and_evaluate(tmp_path, sst2_parquet):
    export_dir = str(tmp_path / "export")
    result = run(
        "train",
        "sentiment",
        "--data",
        sst2_parquet,
        "--seed",
        "1",
        "--export-dir",
        export_dir,
        "--run-dir",
        str(tmp_path / "run"),
        "--json",
        *TINY_SETS,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert 0 <= summary["metrics"]["val_accuracy"] <= 1
    metadata = read_metadata(summary["export"])
    assert metadata["labels"] == ["0", "1"] and metadata["data"]["examples"] == 200
    assert "skipped_bad_rows" not in metadata["data"]

    rows = sst2_rows(40, skip=1000)
    held_out = write_parquet(
        tmp_path / "held_out.parquet",
        {"text": [t for t, _ in rows], "label": [int(y) for _, y in rows]},
    )
    result = run("evaluate", export_dir, "--data", held_out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["examples"] == 40 and 0 <= report["accuracy"] <= 1
    assert "skipped_bad_rows" not in report

    nulls = write_parquet(tmp_path / "nulls.parquet", {"text": ["a", "b"], "label": [1, None]})
    result = run("evaluate", export_dir, "--data", nulls)
    assert result.exit_code == 2
    assert result.stderr == f"error: {nulls}:row 2: field 'label' is null\n"


def test_cli_on_bad_rows_skip_and_error(tmp_path, caplog):
    data = planted_tsv(tmp_path / "reviews.tsv")
    outputs = ["--export-dir", str(tmp_path / "export"), "--run-dir", str(tmp_path / "run")]
    result = run("train", "sentiment", "--data", data, *outputs, *TINY_SETS)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {data}:4: expected 2 tab-separated fields (sentence, label), got 3\n"
    )
    assert not os.path.exists(tmp_path / "run")

    with caplog.at_level(logging.WARNING):
        result = run(
            "train", "sentiment", "--data", data, "--on-bad-rows", "skip", "--json", *outputs,
            *TINY_SETS,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    warning = (
        f"skipped 3 bad rows of {data} (lines 4, 9, 17): "
        "wrong number of fields, empty text, empty label"
    )
    assert warning in caplog.messages
    summary = json.loads(result.stdout)
    assert read_metadata(summary["export"])["data"]["skipped_bad_rows"] == 3
    with open(tmp_path / "run" / "config.json", encoding="utf-8") as f:
        run_record = json.load(f)
    assert run_record["data"]["skipped_bad_rows"] == 3
    assert run_record["config"]["on_bad_rows"] == "skip"

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        result = run(
            "evaluate", str(tmp_path / "export"), "--data", data, "--on-bad-rows", "skip", "--json"
        )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["examples"] == 60 and report["skipped_bad_rows"] == 3
    assert warning in caplog.messages
    result = run("evaluate", str(tmp_path / "export"), "--data", data, "--on-bad-rows", "drop")
    assert result.exit_code == 2 and "'drop' is not one of 'error', 'skip'" in result.output

import json
import os
import tarfile

import numpy as np
import pytest

from conftest import IMDB_TAR, SST2_DEV, write_file
from seqtasks.data.classification import load_text_classification, sort_labels
from seqtasks.data.pipeline import bucket_boundaries, shuffle_each_epoch, split_indices
from seqtasks.errors import DataError


def test_sst2_tsv_real_file():
    data = load_text_classification(SST2_DEV)
    assert len(data) == 872
    assert data.label_set() == ["0", "1"]
    assert data.labels.count("1") == 444
    assert data.texts[0].startswith("it 's a charming and often affecting journey")


def test_imdb_archive_is_balanced_round_robin():
    data = load_text_classification(IMDB_TAR, max_examples=6)
    assert data.labels == ["neg", "pos"] * 3
    assert all(len(t) > 20 for t in data.texts)


def test_label_folders(tmp_path):
    for label, texts in {"pos": ["good", "great", "fine"], "neg": ["bad"], "unsup": ["x"]}.items():
        os.makedirs(tmp_path / "train" / label)
        for i, text in enumerate(texts):
            write_file(tmp_path / "train" / label / f"{i}.txt", text)
    data = load_text_classification(str(tmp_path))
    assert list(zip(data.labels, data.texts)) == [
        ("neg", "bad"),
        ("pos", "good"),
        ("pos", "great"),
        ("pos", "fine"),
    ]
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "train", arcname="aclImdb/train")
    assert load_text_classification(str(archive)).texts == data.texts


def test_csv_and_jsonl_with_columns(tmp_path):
    csv_path = write_file(
        tmp_path / "d.csv", 'id,body,stars\n1,"Great, really",5\n2,"Bad\nvery bad",1\n'
    )
    data = load_text_classification(csv_path, text_column="body", label_column="stars")
    assert data.texts == ["Great, really", "Bad\nvery bad"] and data.labels == ["5", "1"]
    rows = [{"message": "reset password", "queue": "it"}, {"message": "refund", "queue": 3}]
    jsonl = write_file(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    data = load_text_classification(jsonl, text_column="message", label_column="queue")
    assert data.labels == ["it", "3"]


def test_sort_labels_numeric():
    assert sort_labels(["10", "2", "1"]) == ["1", "2", "10"]
    assert sort_labels(["pos", "neg"]) == ["neg", "pos"]


@pytest.mark.parametrize(
    "name, content, kwargs, message",
    [
        (
            "bad.tsv",
            "sentence\tlabel\ngood\t1\nbad\t0\textra\n",
            {},
            "bad.tsv:3: expected 2 tab-separated fields (sentence, label), got 3",
        ),
        (
            "bad.csv",
            'text,label\n"a,1\n',
            {},
            "bad.csv:2: malformed CSV (record starting here): unexpected end of data",
        ),
        (
            "bad.jsonl",
            '{"text": "a", "label": 1}\n{"text": "b", \n',
            {},
            "bad.jsonl:2: invalid JSON",
        ),
        (
            "nolabel.jsonl",
            '{"text": "a", "label": 1}\n{"text": "b"}\n',
            {},
            "nolabel.jsonl:2: missing field 'label'",
        ),
        (
            "cols.csv",
            "body,stars\nhi,1\n",
            {},
            "cols.csv: cannot find a text column (tried text, sentence, review, content); the columns are: body, stars",
        ),
        (
            "cols2.csv",
            "body,stars\nhi,1\n",
            {"text_column": "message"},
            "cols2.csv: no text column 'message'; the columns are: body, stars",
        ),
        ("empty.tsv", "sentence\tlabel\n", {}, "empty.tsv: no examples found"),
        (
            "emptytext.tsv",
            "sentence\tlabel\nok\t1\n \t0\n",
            {},
            "emptytext.tsv:3: field 'sentence' is empty",
        ),
        (
            "one.tsv",
            "sentence\tlabel\na\t1\nb\t1\n",
            {},
            "one.tsv: found 1 distinct label (1); a classifier needs at least 2",
        ),
        ("data.txt", "x", {}, "cannot tell the data format from the extension '.txt'"),
    ],
)
def test_bad_input_is_reported_with_location(tmp_path, name, content, kwargs, message):
    path = write_file(tmp_path / name, content)
    with pytest.raises(DataError) as e:
        load_text_classification(path, **kwargs)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_non_utf8_reports_line(tmp_path):
    path = write_file(
        tmp_path / "latin1.tsv", "sentence\tlabel\nok\t1\ncaf\xe9\t0\n".encode("latin-1")
    )
    with pytest.raises(DataError, match=r"latin1.tsv:3: not valid UTF-8 \(byte 0xe9"):
        load_text_classification(path)


def test_missing_path_and_unreadable_archive(tmp_path):
    with pytest.raises(DataError, match="nope.tsv: no such file or directory"):
        load_text_classification(str(tmp_path / "nope.tsv"))
    broken = write_file(tmp_path / "broken.tar.gz", b"not a tar")
    with pytest.raises(DataError, match="not a readable tar archive") as e:
        load_text_classification(broken)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="no label folders"):
        load_text_classification(str(tmp_path))


def test_tfds_reader_with_mocked_dataset():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        data = load_text_classification("tfds:imdb_reviews")
    assert len(data) == 12
    assert set(data.labels) <= {"neg", "pos"}
    assert all(isinstance(t, str) for t in data.texts)


def test_tfds_unknown_name_is_a_data_error():
    with pytest.raises(DataError, match="tfds:no_such_dataset_xyz: cannot load split 'train'"):
        load_text_classification("tfds:no_such_dataset_xyz")


def test_split_indices_seeded_and_disjoint():
    train, val = split_indices(100, 0.1, seed=3)
    assert len(train) == 90 and len(val) == 10
    assert not set(train) & set(val)
    np.testing.assert_array_equal(val, split_indices(100, 0.1, seed=3)[1])
    assert not np.array_equal(val, split_indices(100, 0.1, seed=4)[1])


@pytest.mark.parametrize("seed", [0, 7])
def test_each_epoch_is_a_seeded_permutation_also_for_seed_0(seed):
    import tensorflow as tf

    from seqtasks.data.pipeline import data_epoch
    from seqtasks.training import seed_everything

    def order(epoch):
        seed_everything(seed)
        data_epoch().assign(epoch)
        ds = shuffle_each_epoch(tf.data.Dataset.range(50), 50, seed)
        return [int(x) for x in ds]

    try:
        first = order(0)
        assert sorted(first) == list(range(50)) and first != list(range(50))
        assert order(0) == first and order(1) != first
    finally:
        data_epoch().assign(0)


def test_bucket_boundaries():
    assert bucket_boundaries(64) == [8, 10, 13, 17, 22, 28, 35, 44, 55, 64]
    assert len(bucket_boundaries(1000)) == 22
    assert bucket_boundaries(1000)[-3:] == [660, 825, 1000]
    assert bucket_boundaries(400, smallest=16, ratio=2) == [16, 32, 64, 128, 256, 400]
    assert bucket_boundaries(10) == [8, 10]
    assert bucket_boundaries(8) == [8]
    with pytest.raises(ValueError, match="`ratio` must be > 1"):
        bucket_boundaries(10, ratio=1.0)


def test_token_batches_pad_sst2_to_fine_buckets(tmp_path):
    """SST-2 dev sentences: batches padded to bucket boundaries, < 15% padding in all."""
    from seqtasks.data.pipeline import token_batches
    from seqtasks.text import WordVectorizer, build_vocabulary, write_vocabulary

    data = load_text_classification(SST2_DEV)
    vocabulary = write_vocabulary(build_vocabulary(data.texts, 5000), str(tmp_path / "v.txt"))
    vectorizer = WordVectorizer(vocabulary, 100)
    batches = token_batches(
        data.texts, np.zeros(len(data)), vectorizer, batch_size=32, shuffle=False, seed=0
    )
    boundaries = bucket_boundaries(100)
    real = padded = examples = 0
    for ids, _ in batches:
        ids = ids.numpy()
        lengths = (ids != 0).sum(axis=1)  # every row is in the bucket (previous, boundary]
        assert ids.shape[1] in boundaries
        assert lengths.max() > ([0] + boundaries)[boundaries.index(ids.shape[1])]
        real, padded, examples = real + lengths.sum(), padded + ids.size, examples + len(ids)
    assert examples == 872
    assert 1 - real / padded < 0.15  # 0.099; 0.31 with the former powers of two from 16


@pytest.mark.parametrize(
    "name, content, line",
    [
        ("latin1.csv", "text,label\nok,1\ncaf\xe9,0\n", 3),
        ("latin1.jsonl", '{"text": "ok", "label": 1}\n{"text": "caf\xe9", "label": 0}\n', 2),
    ],
)
def test_non_utf8_in_csv_and_jsonl(tmp_path, name, content, line):
    path = write_file(tmp_path / name, content.encode("latin-1"))
    with pytest.raises(DataError, match=rf"{name}:{line}: not valid UTF-8 \(byte 0xe9"):
        load_text_classification(path)


def test_label_folder_errors(tmp_path):
    (tmp_path / "pos").mkdir()
    (tmp_path / "neg").mkdir()
    write_file(tmp_path / "pos" / "a.txt", "fine")
    write_file(tmp_path / "neg" / "b.txt", b"caf\xe9")
    with pytest.raises(DataError, match=r"neg/b.txt:1: not valid UTF-8"):
        load_text_classification(str(tmp_path))
    os.remove(tmp_path / "neg" / "b.txt")
    os.symlink(tmp_path / "missing.txt", tmp_path / "neg" / "b.txt")  # broken link: skipped
    with pytest.raises(DataError, match="found 1 distinct label"):
        load_text_classification(str(tmp_path))
    with pytest.raises(DataError, match="no split folder 'test'"):
        load_text_classification(str(tmp_path), split="test")
    write_file(tmp_path / "neg" / "c.txt", "  \n")
    with pytest.raises(
        DataError, match=r"neg/c.txt: empty text \(expected one example per .txt file\)"
    ):
        load_text_classification(str(tmp_path))
    with pytest.raises(DataError, match="no split folder 'test' in the archive"):
        load_text_classification(IMDB_TAR, split="test")


def test_unknown_format_and_label_column(tmp_path):
    path = write_file(tmp_path / "d.tsv", "sentence\tlabel\na\t1\nb\t0\n")
    with pytest.raises(DataError, match="--split 'test' applies to label folders"):
        load_text_classification(path, split="test")
    with pytest.raises(DataError, match="column 'label' cannot be both the text and the label"):
        load_text_classification(path, text_column="label")
    with pytest.raises(
        DataError, match="--format: expected one of tsv, csv, jsonl, parquet; received: 'xml'"
    ):
        load_text_classification(path, format="xml")
    with pytest.raises(
        DataError, match="no label column 'stars'; the columns are: sentence, label"
    ):
        load_text_classification(path, label_column="stars")

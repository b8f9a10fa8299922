"""Validation carved by group: IMDB's movies (urls_*.txt), a records file's group column."""

import dataclasses
import logging
import os
import tarfile

import numpy as np
import pytest

from conftest import IMDB_TAR, write_file
from seqtasks.data.classification import load_text_classification
from seqtasks.data.label_folders import url_group
from seqtasks.data.pipeline import split_indices
from seqtasks.errors import ConfigError, DataError

GROUPS = ["a", "a", "b", "b", "b", "c", "d", "d", "e", "f", "f", "f", "g", "h", "h", "i"]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_grouped_split_holds_out_whole_groups(seed):
    train, val = split_indices(len(GROUPS), 0.25, seed, groups=GROUPS)
    held = {GROUPS[i] for i in val}
    assert held and not held & {GROUPS[i] for i in train}
    assert sorted(np.concatenate([train, val])) == list(range(len(GROUPS)))
    assert list(train) == sorted(train) and list(val) == sorted(val)
    # At least the asked share (4 of 16), and short of it before the last group taken.
    assert 4 <= len(val) < 4 + 3
    np.testing.assert_array_equal(val, split_indices(len(GROUPS), 0.25, seed, GROUPS)[1])


def test_grouped_split_depends_on_the_seed_not_on_the_order_of_groups():
    carves = {tuple(split_indices(len(GROUPS), 0.25, s, GROUPS)[1]) for s in range(6)}
    assert len(carves) > 1
    # The same groups listed in another order hold out the same groups.
    order = np.random.default_rng(5).permutation(len(GROUPS))
    shuffled = [GROUPS[i] for i in order]
    _, val = split_indices(len(GROUPS), 0.25, 3, shuffled)
    _, val_ref = split_indices(len(GROUPS), 0.25, 3, GROUPS)
    assert {shuffled[i] for i in val} == {GROUPS[i] for i in val_ref}


def test_grouped_split_edge_cases():
    # Never every group in validation; fewer than two groups: a random carve by example.
    train, val = split_indices(3, 0.5, 0, groups=["x", "x", "y"])
    assert len(train) and len(val)
    np.testing.assert_array_equal(
        split_indices(5, 0.2, 0, groups=["x"] * 5)[1], split_indices(5, 0.2, 0)[1]
    )
    with pytest.raises(ValueError, match="must have n=4 items"):
        split_indices(4, 0.5, 0, groups=["x"])


def test_url_group_is_the_title_id():
    assert url_group("http://www.imdb.com/title/tt0453418/usercomments") == "tt0453418"
    assert url_group("  speaker-7\n") == "speaker-7"


def test_imdb_archive_groups_reviews_by_movie():
    data = load_text_classification(IMDB_TAR, max_examples=4)
    # Round-robin: neg/0_3.txt, pos/0_9.txt, neg/10000_4.txt, pos/10000_8.txt; their lines
    # in urls_neg.txt / urls_pos.txt (0 and 10000) give the movies.
    assert data.groups[:2] == ["tt0064354", "tt0453418"]
    assert all(g.startswith("tt") for g in data.groups)


def _write_imdb_like(root, urls: bool = True):
    reviews = {
        "pos": ["fine film", "great", "loved it"],
        "neg": ["dull", "awful plot", "bad"],
    }
    movies = {"pos": ["tt1", "tt2", "tt1"], "neg": ["tt3", "tt1", "tt3"]}
    for label, texts in reviews.items():
        os.makedirs(root / "train" / label)
        for i, text in enumerate(texts):
            write_file(root / "train" / label / f"{i}_7.txt", text)
        if urls:
            lines = [f"http://www.imdb.com/title/{m}/usercomments" for m in movies[label]]
            write_file(root / "train" / f"urls_{label}.txt", "\n".join(lines) + "\n")


def test_folder_and_archive_groups_agree(tmp_path):
    _write_imdb_like(tmp_path)
    data = load_text_classification(str(tmp_path))
    assert list(zip(data.labels, data.texts, data.groups)) == [
        ("neg", "dull", "tt3"),
        ("pos", "fine film", "tt1"),
        ("neg", "awful plot", "tt1"),
        ("pos", "great", "tt2"),
        ("neg", "bad", "tt3"),
        ("pos", "loved it", "tt1"),
    ]
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "train", arcname="aclImdb/train")
    from_archive = load_text_classification(str(archive))
    assert from_archive.groups == data.groups and from_archive.texts == data.texts


def test_no_urls_files_no_groups(tmp_path):
    _write_imdb_like(tmp_path, urls=False)
    assert load_text_classification(str(tmp_path)).groups is None


def test_records_group_column(tmp_path):
    path = write_file(
        tmp_path / "d.csv",
        "text,label,movie\ngood,pos,m1\nbad,neg,m2\nok,pos,\nmeh,neg,m1\n",
    )
    with pytest.raises(DataError, match=r"d\.csv:4: .*field 'movie' is empty"):
        load_text_classification(path, group_column="movie")
    data = load_text_classification(path, group_column="movie", on_bad_rows="skip")
    assert data.texts == ["good", "bad", "meh"] and data.groups == ["m1", "m2", "m1"]
    assert load_text_classification(path, on_bad_rows="skip").groups is None
    with pytest.raises(DataError, match="no group column 'film'; the columns are: text"):
        load_text_classification(path, group_column="film")
    with pytest.raises(DataError, match="cannot be both the group and the label"):
        load_text_classification(path, group_column="label")
    with pytest.raises(ConfigError, match="'group_column': .*applies to CSV"):
        load_text_classification(IMDB_TAR, group_column="movie")


def test_sentiment_carve_is_grouped_unless_switched_off(tmp_path, caplog):
    from tasks.sentiment import SentimentConfig, validation_carve

    data = load_text_classification(IMDB_TAR, max_examples=400)
    config = SentimentConfig(data=IMDB_TAR, validation_split=0.2)
    with caplog.at_level(logging.INFO, logger="tasks.sentiment"):
        train, val = validation_carve(data, config)
    assert not {data.groups[i] for i in val} & {data.groups[i] for i in train}
    assert 80 <= len(val) < 80 + 30  # an IMDB movie has at most 30 reviews
    assert "held-out groups" in caplog.text
    random = validation_carve(data, dataclasses.replace(config, grouped_validation=False))
    np.testing.assert_array_equal(random[1], split_indices(400, 0.2, config.seed)[1])
    # The random carve shares movies between the splits (why the grouped one exists).
    assert {data.groups[i] for i in random[1]} & {data.groups[i] for i in random[0]}

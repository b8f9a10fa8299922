import gzip
import os
import zipfile

import pytest

from conftest import SHARED_DATA, write_file
from seqtasks.data.parallel import load_parallel
from seqtasks.errors import DataError

MULTI30K = os.path.join(SHARED_DATA, "multi30k")
ANKI = os.path.join(SHARED_DATA, "anki", "spa-eng.zip")


def test_multi30k_folder_real_files():
    data = load_parallel(MULTI30K, source_lang="en", target_lang="de", split="val")
    assert len(data) == 1014 and data.skipped_empty == 0
    assert data.sources[0].startswith("A group of men are loading cotton onto a truck")
    assert data.targets[0].startswith("Eine Gruppe von Männern lädt Baumwolle auf einen Lastwagen")
    reverse = load_parallel(
        MULTI30K, source_lang="de", target_lang="en", split="val", max_examples=3
    )
    assert reverse.sources == data.targets[:3] and reverse.targets == data.sources[:3]


def test_anki_zip_real_file():
    data = load_parallel(ANKI, source_lang="en", target_lang="es", max_examples=4)
    assert list(zip(data.sources, data.targets)) == [
        ("Go.", "Ve."),
        ("Go.", "Vete."),
        ("Go.", "Vaya."),
        ("Go.", "Váyase."),
    ]
    reverse = load_parallel(ANKI, source_lang="es", target_lang="en", reverse=True, max_examples=1)
    assert (reverse.sources, reverse.targets) == (["Ve."], ["Go."])


def test_explicit_files_pair_file_and_empty_pair_policy(tmp_path):
    src = write_file(tmp_path / "a.en", "a dog .\n\nthe end\n")
    with gzip.open(tmp_path / "a.de.gz", "wt", encoding="utf-8") as f:
        f.write("ein Hund .\nleer\ndas Ende\n")
    files = dict(source_file=src, target_file=str(tmp_path / "a.de.gz"))
    with pytest.raises(DataError) as e:  # an empty side is a bad row: an error by default
        load_parallel(**files, source_lang="en", target_lang="de")
    assert str(e.value) == (
        f"{src}:2: empty source sentence; expected one, aligned with line 2 of {tmp_path}/a.de.gz"
    )
    data = load_parallel(**files, source_lang="en", target_lang="de", on_bad_rows="skip")
    assert data.sources == ["a dog .", "the end"] and data.targets == ["ein Hund .", "das Ende"]
    assert data.skipped_bad_rows == 1 and data.skipped_empty == 0
    pairs = write_file(tmp_path / "p.tsv", "hello\thola\tCC-BY attribution\nbye\tadiós\n")
    data = load_parallel(pairs, source_lang="en", target_lang="es")
    assert data.targets == ["hola", "adiós"]


def test_tfds_translation_with_mocked_dataset():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
        data = load_parallel("tfds:ted_hrlr_translate/pt_to_en", source_lang="pt", target_lang="en")
        with pytest.raises(DataError, match="no language 'de'; the dataset has: "):
            load_parallel("tfds:ted_hrlr_translate/pt_to_en", source_lang="pt", target_lang="de")
    assert len(data) + data.skipped_empty == 5
    assert all(isinstance(s, str) for s in data.sources + data.targets)


def test_bad_parallel_input(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    write_file(folder / "train.en", "one\ntwo\nthree\n")
    write_file(folder / "train.de", "eins\nzwei\n")
    write_file(folder / "val.en", "x\n")
    write_file(folder / "val.de", b"caf\xe9\n")
    write_file(folder / "empty.en", "\n")
    write_file(folder / "empty.de", "\n")
    cases = [
        (
            dict(path=str(folder)),
            f"line counts differ: {folder}/train.en has 3 lines, {folder}/train.de has 2",
        ),
        (
            dict(path=str(folder), target_lang="fr"),
            "no train.fr[.gz] for language 'fr'; split 'train' has: de, en",
        ),
        (dict(path=str(folder), split="test"), "no files for split 'test'"),
        (dict(path=str(folder), split="val"), "val.de:1: not valid UTF-8 (byte 0xe9"),
        (dict(path=str(folder), split="empty"), "no sentence pairs found (split 'empty')"),
        (dict(path=str(folder), target_lang="english"), "--target-lang: expected a language code"),
        (dict(path=str(folder), target_lang="en"), "--source-lang and --target-lang are both 'en'"),
        (dict(path=str(tmp_path / "nope")), "nope: no such file or directory"),
        (
            dict(path=write_file(tmp_path / "p.tsv", "hello\thola\nbye adiós\n")),
            "p.tsv:2: expected source<TAB>target, found no tab",
        ),
        (dict(source_file=str(folder / "train.en")), "--source-file and --target-file go together"),
    ]
    for kwargs, message in cases:
        kwargs = {"source_lang": "en", "target_lang": "de", **kwargs}
        with pytest.raises(DataError) as e:
            load_parallel(**kwargs)
        assert message in str(e.value), (kwargs, str(e.value))
        assert "\n" not in str(e.value)


def test_zip_without_a_pair_file(tmp_path):
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("spa-eng/_about.txt", "about")
        archive.writestr("spa-eng/readme.md", "hi")
    with pytest.raises(
        DataError, match="expected exactly one .tsv/.txt pair file in the zip .*found: none"
    ):
        load_parallel(str(path), source_lang="en", target_lang="es")
    broken = write_file(tmp_path / "broken.zip", b"not a zip")
    with pytest.raises(DataError, match="broken.zip: not a readable zip archive"):
        load_parallel(broken, source_lang="en", target_lang="es")

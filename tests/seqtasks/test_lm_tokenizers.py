"""The language-model tokenizers: char (code points, bytes), word, WordPiece."""

import collections
import os
import shutil

import pytest
import tensorflow as tf

from conftest import SHARED_DATA
from seqtasks.lm_tokenizers import learn_tokenizer, load_tokenizer
from seqtasks.text import RESERVED_TOKENS, read_vocabulary

SHAKESPEARE = os.path.join(SHARED_DATA, "tinyshakespeare", "train.txt")
NON_ASCII = "Zoë führt — ok ✓"
SENTENCES = [
    "Whither, sir? I know't well.",
    "Nay (quoth he), 'tis so: go!",
    "First Citizen: we are accounted poor citizens; the patricians good.",
]
KINDS = [("char", "codepoint"), ("char", "byte"), ("word", "codepoint"), ("wordpiece", "codepoint")]


@pytest.fixture(scope="module")
def sample():
    with open(SHAKESPEARE, encoding="utf-8") as f:
        return f.read(20_000)


@pytest.fixture(scope="module")
def lines(sample):
    return sample.splitlines(keepends=True)  # "\n" is a character of the vocabulary


@pytest.fixture(scope="module")
def tokenizers(lines, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm_tokenizers")
    texts = lines + SENTENCES + [NON_ASCII]
    return {
        (kind, unit): learn_tokenizer(
            kind, str(folder / f"{kind}-{unit}.txt"), texts, vocabulary_size=size, char_unit=unit
        )
        for (kind, unit), size in zip(KINDS, [400, 400, 2000, 400])
    }


def test_char_vocabulary_of_the_sample(sample, lines, tmp_path):
    tokenizer = learn_tokenizer("char", str(tmp_path / "v.txt"), lines, vocabulary_size=1000)
    counts = collections.Counter(sample)
    assert tokenizer.kind == "char" and tokenizer.vocabulary_size == 4 + len(counts)
    vocabulary = read_vocabulary(tokenizer.vocabulary_file)
    assert vocabulary[:4] == list(RESERVED_TOKENS)
    # descending frequency, ties by code point; one decimal code point per line
    expected = sorted(counts, key=lambda c: (-counts[c], ord(c)))
    assert [chr(int(line)) for line in vocabulary[4:]] == expected
    ids = tokenizer(tf.constant([expected[0] + expected[1] + "✓"])).to_list()
    assert ids == [[4, 5, 1]]  # unseen character -> [UNK]
    assert (
        tokenizer.detokenize(tf.constant([[4, 1, 0]])).numpy()[0].decode() == expected[0] + "\ufffd"
    )


def test_char_vocabulary_of_tiny_shakespeare_cap_and_min_frequency(lines, tmp_path):
    with open(SHAKESPEARE, encoding="utf-8") as f:
        text = f.read()
    full = learn_tokenizer("char", str(tmp_path / "full.txt"), [text], vocabulary_size=10_000)
    assert full.vocabulary_size == 65 + 4
    capped = learn_tokenizer("char", str(tmp_path / "cap.txt"), lines, vocabulary_size=10)
    assert capped.vocabulary_size == 10
    rare = learn_tokenizer(
        "char", str(tmp_path / "r.txt"), ["aaab", "bc"], vocabulary_size=99, min_frequency=2
    )
    assert read_vocabulary(rare.vocabulary_file)[4:] == [str(ord("a")), str(ord("b"))]


@pytest.mark.parametrize("unit", ["codepoint", "byte"])
def test_char_round_trip(tokenizers, lines, unit):
    tokenizer = tokenizers["char", unit]
    texts = lines[:200] + [NON_ASCII, ""]
    ids = tokenizer(tf.constant(texts))
    assert ids.dtype == tf.int32 and ids.shape.rank == 2
    assert [t.decode() for t in tokenizer.detokenize(ids).numpy()] == texts
    assert int(tf.reduce_min(ids.flat_values)) >= 4  # no [UNK] and no [START]/[END] added
    assert int(tf.reduce_max(ids.flat_values)) < tokenizer.vocabulary_size
    if unit == "byte":
        assert tokenizer.vocabulary_size == 260
        assert ids[-2].numpy().tolist() == [b + 4 for b in NON_ASCII.encode()]
        # an invalid UTF-8 byte sequence and [UNK] become U+FFFD
        text = tokenizer.detokenize(tf.constant([[4 + 0xC3, 4 + ord("a"), 1]])).numpy()[0]
        assert text.decode() == "\ufffda\ufffd"


def test_char_lowercase(lines, tmp_path):
    tokenizer = learn_tokenizer(
        "char", str(tmp_path / "v.txt"), lines, vocabulary_size=999, lowercase=True
    )
    vocabulary = read_vocabulary(tokenizer.vocabulary_file)[4:]
    assert str(ord("a")) in vocabulary and str(ord("A")) not in vocabulary
    assert tokenizer.detokenize(tokenizer(["First CITIZEN"])).numpy()[0] == b"first citizen"


def test_word_tokens_and_round_trip(tokenizers):
    tokenizer = tokenizers["word", "codepoint"]
    vocabulary = read_vocabulary(tokenizer.vocabulary_file)
    ids = tokenizer(tf.constant(["Whither, sir?"])).to_list()[0]
    assert [vocabulary[i] for i in ids] == ["Whither", ",", "sir", "?"]  # case kept
    detokenized = tokenizer.detokenize(tokenizer(tf.constant(SENTENCES))).numpy()
    assert [t.decode() for t in detokenized] == SENTENCES
    # documented normalisation: whitespace runs -> one space; unknown words -> "[UNK]"
    text = tokenizer.detokenize(tokenizer(["Whither,\n  sir  Zyzzyva?"])).numpy()[0]
    assert text == b"Whither, sir [UNK]?"


def test_word_lowercase(lines, tmp_path):
    tokenizer = learn_tokenizer(
        "word", str(tmp_path / "v.txt"), lines, vocabulary_size=999, lowercase=True
    )
    assert "first" in read_vocabulary(tokenizer.vocabulary_file)
    assert tokenizer.detokenize(tokenizer(["First Citizen!"])).numpy()[0] == b"first citizen!"


def test_wordpiece_round_trip(tokenizers):
    tokenizer = tokenizers["wordpiece", "codepoint"]
    assert tokenizer.kind == "wordpiece" and 100 < tokenizer.vocabulary_size <= 400
    long_text = " ".join(SENTENCES * 30)  # longer than any sequence_length: not truncated
    ids = tokenizer(tf.constant([long_text] + SENTENCES))
    assert int(ids.row_lengths()[0]) > 300
    assert [t.decode() for t in tokenizer.detokenize(ids).numpy()] == [long_text] + SENTENCES


@pytest.mark.parametrize("kind, unit", KINDS)
def test_existing_vocabulary_file_is_reused(tokenizers, lines, kind, unit):
    first = tokenizers[kind, unit]  # learned by the fixture, which wrote the file
    path = first.vocabulary_file
    assert sorted(os.listdir(os.path.dirname(path))) == sorted(  # no temporary file left
        f"{k}-{u}.txt" for k, u in KINDS
    )
    with open(path, encoding="utf-8") as f:
        written = f.read()
    other = ["Something else entirely ✓ äöü"] * 50
    second = learn_tokenizer(kind, path, other, vocabulary_size=50, char_unit=unit)
    with open(path, encoding="utf-8") as f:
        assert f.read() == written
    probe = tf.constant(lines[300:310] + other[:1])
    assert second.vocabulary_size == first.vocabulary_size
    assert second(probe).to_list() == first(probe).to_list()


@pytest.mark.parametrize("kind, unit", KINDS)
def test_inside_tf_data(tokenizers, lines, kind, unit):
    tokenizer = tokenizers[kind, unit]
    texts = lines[:10]
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(4).map(tokenizer)
    rows = [row for batch in dataset for row in batch.to_list()]
    assert rows == tokenizer(tf.constant(texts)).to_list()


@pytest.mark.parametrize("kind, unit", KINDS)
def test_detokenize_stops_at_end_and_drops_pad_and_start(tokenizers, kind, unit):
    tokenizer = tokenizers[kind, unit]
    ids = tokenizer(tf.constant(["Whither, sir?", "go"])).to_list()
    width = len(ids[0]) + len(ids[1]) + 2
    rows = [[2, *ids[0], 3, *ids[1]], [2, *ids[1], 0, 3, 5]]  # [END] then more, [PAD] inside
    dense = [row + [0] * (width - len(row)) for row in rows]
    expected = [b"Whither, sir?", b"go"]
    assert tokenizer.detokenize(tf.constant(dense)).numpy().tolist() == expected
    ragged = tf.ragged.constant([[2, *ids[0], 3, *ids[1]], [0, 2, *ids[1]]], dtype=tf.int64)
    assert tokenizer.detokenize(ragged).numpy().tolist() == expected


def test_count_units():
    from seqtasks.data.lm_pipeline import count_units

    texts = ["Zoë führt", "a  b\n", ""]
    assert count_units(texts) == {"characters": 9 + 5, "words": 2 + 2}


def test_bad_arguments(tmp_path, tokenizers):
    with pytest.raises(ValueError, match="char, word, wordpiece"):
        learn_tokenizer("bpe", str(tmp_path / "v.txt"), ["a"], vocabulary_size=100)
    with pytest.raises(ValueError, match="char, word, wordpiece"):
        load_tokenizer("chars", str(tmp_path / "v.txt"))
    with pytest.raises(ValueError, match="vocabulary_size"):
        learn_tokenizer("char", str(tmp_path / "v.txt"), ["a"], vocabulary_size=4)
    with pytest.raises(ValueError, match="codepoint, byte"):
        learn_tokenizer("char", str(tmp_path / "v.txt"), ["a"], vocabulary_size=9, char_unit="x")
    with pytest.raises(ValueError, match="byte vocabulary"):
        load_tokenizer("char", tokenizers["char", "codepoint"].vocabulary_file, char_unit="byte")
    with pytest.raises(ValueError, match="code point"):
        load_tokenizer("char", tokenizers["word", "codepoint"].vocabulary_file)
    assert not os.path.exists(tmp_path / "v.txt")


def test_tokenizers_in_a_savedmodel(tokenizers, tmp_path):
    module = tf.Module()
    names = [f"{kind}_{unit}" for kind, unit in KINDS]
    for name, (kind, unit) in zip(names, KINDS):
        setattr(module, name, tokenizers[kind, unit])
    # The word vocabulary is a TextFileInitializer's file: it must become an asset.
    copy = shutil.copy(tokenizers["word", "codepoint"].vocabulary_file, tmp_path / "words.txt")
    module.word_codepoint = load_tokenizer("word", str(copy))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def run(text):
        outputs = {}
        for name in names:
            tokenizer = getattr(module, name)
            ids = tokenizer(text)
            outputs[name] = (ids.to_tensor(), tokenizer.detokenize(ids))
        return outputs

    module.run = run
    texts = tf.constant(["Whither, sir? I know't.", "First Citizen:\nwe are\n", NON_ASCII, ""])
    expected = run(texts)
    tf.saved_model.save(module, str(tmp_path / "m"))
    os.remove(copy)  # the export must not need the original file
    assert os.listdir(tmp_path / "m" / "assets") == ["words.txt"]
    served = tf.saved_model.load(str(tmp_path / "m")).run(texts)
    for name in names:
        for got, want in zip(served[name], expected[name]):
            assert got.numpy().tolist() == want.numpy().tolist(), name
    assert served["char_codepoint"][1].numpy().tolist() == texts.numpy().tolist()
    assert served["char_byte"][1].numpy().tolist() == texts.numpy().tolist()


@pytest.mark.parametrize("kind", ["word", "wordpiece", "char"])
def test_a_continuation_reads_after_its_prompt(tokenizers, kind):
    """The export's continuation text, glued to its prompt, reads as the two detokenized
    together: a new word gets its space, punctuation and contractions attach, characters
    concatenate (LanguageModelGenerator.continuation_text)."""
    from types import SimpleNamespace

    from seqtasks.lm_generation import LanguageModelGenerator

    tokenizer = tokenizers[(kind, "codepoint")]
    cases = [("Whither,", " sir?"), ("I know", "'t well."), ("", "Nay"), ("go", "!")]
    prompt_ids = [[2, *ids] for ids in tokenizer(tf.constant([p for p, _ in cases])).to_list()]
    continuations = [ids + [3] for ids in tokenizer(tf.constant([c for _, c in cases])).to_list()]
    expected = [p + c for p, c in cases]
    if kind == "wordpiece":  # a ## piece joins the prompt's last word
        word = next(
            ids for ids in tokenizer(tf.constant(SENTENCES[2].split())).to_list() if len(ids) > 1
        )
        first, rest = tokenizer.detokenize(tf.ragged.constant([word[:1], word])).numpy()
        cases.append((first.decode(), rest.decode()[len(first) :]))
        prompt_ids.append([2, *word[:1]])
        continuations.append([*word[1:], 3])
        expected.append(rest.decode())
    text = LanguageModelGenerator.continuation_text(
        SimpleNamespace(tokenizer=tokenizer),
        tf.ragged.constant(prompt_ids).to_tensor(0),
        tf.ragged.constant(continuations).to_tensor(0),
    )
    glued = [p + t.decode("utf-8") for (p, _), t in zip(cases, text.numpy())]
    assert glued == expected

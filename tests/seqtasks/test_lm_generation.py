"""The language-model recipe's exportable generator: scoring, row-wise seeded sampling,
serving with a prompt, and the SavedModel in a fresh process."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_fresh_python
from seqtasks.data.language_modeling import document_windows
from seqtasks.decoding import DecodingOptions, decode
from seqtasks.lm_generation import LanguageModelGenerator
from seqtasks.models.language_models import RNNLanguageModel, TransformerLanguageModel
from seqtasks.tokens import END_ID, PAD_ID, START_ID

CONTEXT = 16


class ByteTokenizer(tf.Module):
    """Test tokenizer: one token per character (code point + 4; ASCII texts here)."""

    vocabulary_size = 260

    def __call__(self, text):
        return tf.strings.unicode_decode(text, "UTF-8") + 4

    def detokenize(self, ids):
        ids = tf.cast(ids, tf.int32)
        before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=1), 0)
        keep = before_end & (ids >= 4)
        return tf.strings.unicode_encode(tf.ragged.boolean_mask(ids - 4, keep), "UTF-8")


def ids_of(text):
    return [ord(c) + 4 for c in text]


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    rnn = RNNLanguageModel(vocabulary_size=260, embedding_dim=16, hidden_dim=16, num_layers=1)
    transformer = TransformerLanguageModel(
        260, sequence_length=CONTEXT, hidden_dim=16, intermediate_dim=32, num_heads=2,
        num_layers=1,
    )  # fmt: skip
    for model in (rnn, transformer):
        model({"decoder_token_ids": np.ones((1, 3), "int32")})
    return {"rnn": rnn, "transformer": transformer}


def make(models, kind, mode="documents", max_length=8, no_repeat_ngram_size=0, **options):
    return LanguageModelGenerator(
        models[kind], ByteTokenizer(), DecodingOptions(**{"strategy": "greedy", **options}),
        max_length=max_length, sequence_length=CONTEXT, mode=mode,
        no_repeat_ngram_size=no_repeat_ngram_size,
    )  # fmt: skip


def log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    top = logits.max(-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))


def reference(model, inputs, targets):
    """Sum of log p(target) over non-[PAD] targets of windows (NumPy, one pass)."""
    inputs, targets = np.asarray(inputs, np.int32), np.asarray(targets)
    lp = log_softmax(model({"decoder_token_ids": inputs}))
    picked = np.take_along_axis(lp, targets[..., None], -1)[..., 0]
    return float(np.sum(np.where(targets != PAD_ID, picked, 0.0)))


def whole_text(text, mode):
    seq = [START_ID, *ids_of(text)] + ([END_ID] if mode == "documents" else [])
    return [seq[:-1]], [seq[1:]]


@pytest.mark.parametrize("kind", ["rnn", "transformer"])
@pytest.mark.parametrize("mode", ["documents", "stream"])
def test_score_is_the_full_pass_log_likelihood_with_or_without_padding(models, kind, mode):
    generator = make(models, kind, mode)
    texts = ["to be", "or not to be!"]  # both fit one window of the Transformer
    together = generator.score(tf.constant(texts))
    for i, text in enumerate(texts):
        alone = generator.score(tf.constant([text]))
        expected = reference(models[kind], *whole_text(text, mode))
        count = len(text) + (mode == "documents")
        for out, row in ((alone, 0), (together, i)):
            assert out["log_likelihood"].numpy()[row] == pytest.approx(expected, abs=1e-3)
            assert out["tokens"].numpy()[row] == count
            assert out["perplexity"].numpy()[row] == pytest.approx(
                np.exp(-expected / count), rel=1e-4
            )


def test_an_rnn_scores_a_long_text_in_one_pass(models):
    text = "the rain in spain stays mainly in the plain"
    out = make(models, "rnn", "stream").score(tf.constant([text, "x"]))
    assert out["tokens"].numpy().tolist() == [len(text), 1]
    expected = reference(models["rnn"], *whole_text(text, "stream"))
    assert out["log_likelihood"].numpy()[0] == pytest.approx(expected, abs=1e-3)


@pytest.mark.filterwarnings("ignore:You are using a softmax")  # keras: a 1-token window
def test_a_transformer_scores_a_long_text_by_training_windows(models):
    text, model = "the rain in spain stays mainly in the plain", models["transformer"]
    documents = make(models, "transformer", "documents").score(tf.constant(["ab", text]))
    x, y = document_windows([ids_of(text)], CONTEXT)  # 44 targets: windows of 16, 16, 12
    assert documents["tokens"].numpy()[1] == len(text) + 1 == int(np.sum(y != PAD_ID))
    expected = reference(model, x, y)
    assert documents["log_likelihood"].numpy()[1] == pytest.approx(expected, abs=1e-3)
    # Stream: windows of 16 targets, each read from [START] and the window's first 15.
    stream = make(models, "transformer", "stream").score(tf.constant([text, "ab"]))
    tokens = ids_of(text)
    chunks = [tokens[s : s + CONTEXT] for s in range(0, len(tokens), CONTEXT)]
    total = sum(reference(model, [[START_ID, *c[:-1]]], [c]) for c in chunks)
    assert stream["tokens"].numpy()[0] == len(text)
    assert stream["log_likelihood"].numpy()[0] == pytest.approx(total, abs=1e-3)
    # An empty text: [END] alone in documents mode, nothing in stream mode.
    empty = make(models, "transformer", "stream").score(tf.constant(["", "ab"]))
    assert empty["tokens"].numpy()[0] == 0 and empty["log_likelihood"].numpy()[0] == 0.0
    assert empty["perplexity"].numpy()[0] == 1.0
    empty = make(models, "transformer", "documents").score(tf.constant([""]))
    end_only = reference(model, [[START_ID]], [[END_ID]])
    assert empty["tokens"].numpy()[0] == 1
    assert empty["log_likelihood"].numpy()[0] == pytest.approx(end_only, abs=1e-4)


def call_generate(generator, rows):
    """rows: (prompt, max_length, temperature, top_k, top_p, seed) tuples."""
    columns = list(zip(*rows)) or [[]] * 6
    dtypes = [tf.string, tf.int32, tf.float32, tf.int32, tf.float32, tf.int64]
    out = generator.generate_function(*(tf.constant(c, d) for c, d in zip(columns, dtypes)))
    return {k: v.numpy() for k, v in out.items()}


@pytest.fixture(scope="module")
def rnn_generator(models):
    return make(models, "rnn", "documents", max_length=10)


def test_sampling_is_reproducible_row_by_row_whatever_the_batch(rnn_generator):
    request = ("once upon", 6, 1.0, 0, 1.0, 42)
    alone = call_generate(rnn_generator, [request])
    batch = call_generate(
        rnn_generator,
        [("a", 3, 0.7, 5, 0.9, 1), request, ("a longer prompt here", 0, 1.5, 0, 0.5, 7)],
    )
    assert batch["text"][1] == alone["text"][0] and batch["tokens"][1] == alone["tokens"][0]
    np.testing.assert_allclose(batch["score"][1], alone["score"][0], atol=1e-5)
    n = alone["tokens"][0]
    np.testing.assert_allclose(
        batch["token_log_probs"][1, :n], alone["token_log_probs"][0, :n], atol=1e-5
    )
    # Per-row max_length (0: the generator's 10), and a few other seeds all differ.
    assert batch["tokens"].tolist()[0] <= 3 and alone["tokens"][0] <= 6
    assert 1 <= batch["tokens"][2] <= 10
    others = call_generate(rnn_generator, [("once upon", 6, 1.0, 0, 1.0, s) for s in (1, 2, 3)])
    assert len({alone["text"][0], *others["text"]}) == 4


def test_top_k_one_is_greedy_and_top_k_two_keeps_the_two_most_probable(rnn_generator, models):
    model, prompts = models["rnn"], ["hello", "a", ""]
    out = call_generate(
        rnn_generator,
        [(p, 10, 1.0, 1, 1.0, 3) for p in prompts] + [(p, 10, 1.0, 2, 1.0, 5) for p in prompts],
    )
    prompt_ids = rnn_generator.prompt_ids(tf.constant(prompts)).numpy()
    greedy, _ = decode(
        model, None, DecodingOptions(strategy="greedy"), prompt_ids.shape[1] + 10,
        prompt=prompt_ids,
    )  # fmt: skip
    greedy = np.asarray(greedy)
    for row, prompt in enumerate(prompts):
        start = len(prompt) + 1
        expected = rnn_generator.tokenizer.detokenize(greedy[row : row + 1, start : start + 10])
        assert out["text"][row] == expected.numpy()[0]
    # Top-2 rows: recompute every step's distribution from the sampled sequence.
    for row, prompt in enumerate(prompts, start=3):
        n = out["tokens"][row]
        generated = ids_of(out["text"][row].decode("utf-8"))
        sequence = [START_ID, *ids_of(prompt), *generated] + [END_ID] * (n - len(generated))
        logits = np.array(model({"decoder_token_ids": np.array([sequence[:-1]])}))[0]
        logits[:, [PAD_ID, START_ID]] = -1e9
        for step in range(n):
            position = len(prompt) + step
            at = logits[position].copy()
            token = sequence[position + 1]
            expected_log_prob = log_softmax(at)[token]
            assert out["token_log_probs"][row, step] == pytest.approx(expected_log_prob, abs=1e-4)
            if step == 0:
                at[END_ID] = -1e9  # min_length 1
            assert token in np.argsort(-at)[:2]
        assert out["score"][row] == pytest.approx(np.mean(out["token_log_probs"][row, :n]))


def test_serve_returns_the_continuation_and_agrees_with_generate(rnn_generator, models):
    prompts = ["hello there", "a", ""]
    served = rnn_generator.serving_function(tf.constant(prompts))  # greedy, through decode()
    greedy = call_generate(rnn_generator, [(p, 0, 0.0, 0, 1.0, 0) for p in prompts])
    assert served["text"].numpy().tolist() == greedy["text"].tolist()
    np.testing.assert_allclose(served["score"].numpy(), greedy["score"], atol=1e-4)
    assert all(len(t) > 0 for t in served["text"].numpy())  # min_length 1: never empty
    # The continuation only: the prompt's ids are not in the text.
    prompt_ids = rnn_generator.prompt_ids(tf.constant(prompts)).numpy()
    ids, _ = decode(models["rnn"], None, DecodingOptions(strategy="greedy"), 12 + 10,
                    prompt=prompt_ids[:1])  # fmt: skip
    continuation = rnn_generator.tokenizer.detokenize(np.asarray(ids)[:, 12:])
    assert served["text"].numpy()[0] == continuation.numpy()[0]
    # Sampling and beam search through serve.
    sampled = make(models, "rnn", max_length=5, strategy="sample", top_k=3, seed=9)
    out = sampled.serving_function(tf.constant(prompts))
    same = call_generate(sampled, [(p, 5, 1.0, 3, 1.0, 9) for p in prompts])
    assert out["text"].numpy().tolist() == same["text"].tolist()
    beam = make(models, "rnn", max_length=5, strategy="beam", beam_size=2)
    texts, scores = beam.generate_all(prompts, batch_size=2)
    # Each row cut at its own 5 new tokens (the empty prompt's row had a longer buffer).
    assert len(texts) == 3 and all(1 <= len(t) <= 5 for t in texts) and max(scores) < 0
    # An empty batch gives empty outputs (the model never runs on zero rows).
    none = tf.constant([], tf.string)
    assert rnn_generator.serving_function(none)["text"].shape == (0,)
    assert rnn_generator.score_function(none)["perplexity"].shape == (0,)
    empty = call_generate(rnn_generator, [])
    assert empty["text"].shape == (0,) and empty["token_log_probs"].shape == (0, 0)


def test_a_prompt_longer_than_the_transformer_context_keeps_its_last_tokens(models):
    generator = make(models, "transformer", max_length=8)
    prompt = "it was the best of times, it was the worst of times"
    assert generator.prompt_limit == CONTEXT - 2
    ids = generator.prompt_ids(tf.constant([prompt, ""])).numpy()
    assert ids.tolist() == [
        [START_ID, *ids_of(prompt[-(CONTEXT - 2) :])],
        [START_ID] + [PAD_ID] * (CONTEXT - 2),
    ]
    tail = prompt[-(CONTEXT - 2) :]
    rows = [(prompt, 8, 0.0, 0, 1.0, 1), (tail, 8, 0.0, 0, 1.0, 1), ("", 8, 1.0, 0, 1.0, 1)]
    out = call_generate(generator, rows)
    assert out["text"][0] == out["text"][1] and len(out["text"][0].decode()) == 1  # context full
    assert out["tokens"].tolist()[:2] == [1, 1] and 1 <= out["tokens"][2] <= 8


FRESH = """
import json, sys
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
args = json.loads(sys.argv[2])
out = {}
out["serve"] = loaded.signatures["serving_default"](prompt=tf.constant(args["prompts"]))
out["generate"] = loaded.signatures["generate"](
    prompt=tf.constant(args["prompts"]), max_length=tf.constant([4, 6, 0], tf.int32),
    temperature=tf.constant([1.0, 0.5, 2.0]), top_k=tf.constant([0, 3, 0], tf.int32),
    top_p=tf.constant([1.0, 1.0, 0.8]), seed=tf.constant([1, 2, 3], tf.int64))
out["score"] = loaded.signatures["score"](text=tf.constant(args["texts"]))
print(json.dumps({name: {k: v.numpy().tolist() for k, v in o.items()} for name, o in out.items()},
                 default=lambda b: b.decode("latin-1")))
"""


@pytest.mark.filterwarnings("ignore:You are using a softmax")
def test_the_export_loads_in_a_fresh_process_and_matches(models, tmp_path):
    from seqtasks.export import save_serving_archive

    generator = make(models, "transformer", "stream", max_length=6, strategy="sample", seed=4)
    spec = [tf.TensorSpec([None], tf.string, name="prompt")]
    prompts = ["to be or", "", "x" * 40]
    texts = ["to be or not to be, that is the question", "", "ab"]
    expected = {
        "serve": generator.serving_function(tf.constant(prompts)),
        "generate": generator.generate_function(
            tf.constant(prompts),
            tf.constant([4, 6, 0]),
            tf.constant([1.0, 0.5, 2.0]),
            tf.constant([0, 3, 0]),
            tf.constant([1.0, 1.0, 0.8]),
            tf.constant([1, 2, 3], tf.int64),
        ),
        "score": generator.score_function(tf.constant(texts)),
    }
    # Saved after the in-memory calls, whose traced graphs the export reuses.
    path = str(tmp_path / "lm")
    save_serving_archive(path, [generator], generator.serving_function, spec,
                         extra_endpoints=generator.signatures())  # fmt: skip
    loaded = run_fresh_python(
        FRESH, path, json.dumps({"prompts": prompts, "texts": texts}), cwd=tmp_path
    )
    for name, outputs in expected.items():
        for key, value in outputs.items():
            value = value.numpy()
            if value.dtype == object:
                assert loaded[name][key] == [t.decode("latin-1") for t in value], (name, key)
            else:
                np.testing.assert_allclose(loaded[name][key], value, atol=1e-4, err_msg=name + key)
    assert loaded["score"]["tokens"] == [len(texts[0]), 0, 2]


def _ngrams(ids, n):
    return [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]


@pytest.mark.parametrize("size", [1, 2, 3])
def test_no_repeat_ngram_blocking_never_emits_a_repeated_ngram(models, size):
    """An untrained model repeats itself under greedy decoding; with blocking, no n-gram of
    the prompt and its continuation occurs twice, and sampling obeys it too."""
    plain = make(models, "rnn", max_length=30, min_length=30)
    out = plain.generate_function(
        tf.constant(["abab"]), tf.constant([30]), tf.constant([0.0]), tf.constant([0]),
        tf.constant([1.0]), tf.constant([0], tf.int64),
    )  # fmt: skip
    ids = ids_of("abab") + [
        int(t) for t in np.asarray(tf.strings.unicode_decode(out["text"], "UTF-8")[0]) + 4
    ]
    assert len(set(_ngrams(ids, size))) < len(_ngrams(ids, size))  # it repeats without blocking
    for temperature in (0.0, 1.0):
        blocked = make(models, "rnn", max_length=30, min_length=30, no_repeat_ngram_size=size)
        out = blocked.generate_function(
            tf.constant(["abcd"]), tf.constant([30]), tf.constant([temperature]),
            tf.constant([0]), tf.constant([1.0]), tf.constant([7], tf.int64),
        )  # fmt: skip
        text = out["text"].numpy()[0].decode("utf-8")
        ids = ids_of("abcd" + text)
        assert len(text) == min(30, 256 - 4) and len(set(_ngrams(ids, size))) == len(ids) - size + 1
    with pytest.raises(ValueError, match="not beam search"):
        make(models, "rnn", strategy="beam", no_repeat_ngram_size=2)

"""Sampled softmax (seqtasks.sampled_softmax): the corrected logits, the proposal, the
loss and metric that read them, the language models' training output, and the recipe."""

import math
import os

import numpy as np
import pytest

from conftest import SHARED_DATA, assert_one_line_error, write_file


def _log_q(ids, vocabulary_size):
    ids = np.asarray(ids, np.float64)
    return np.log((np.log(ids + 2) - np.log(ids + 1)) / math.log(vocabulary_size + 1))


def test_sampled_logits_are_the_corrected_rows_and_accidental_hits_are_masked():
    from seqtasks.sampled_softmax import ACCIDENTAL_HIT_LOGIT, sampled_logits

    rng = np.random.default_rng(0)
    V, W, K = 50, 8, 6
    hidden = rng.normal(size=(2, 3, W)).astype("float32")
    kernel = rng.normal(size=(V, W)).astype("float32")
    bias = rng.normal(size=(V,)).astype("float32")
    targets = np.array([[4, 7, 9], [0, 4, 30]], "int32")
    sampled = np.array([3, 4, 11, 29, 4, 48], "int32")  # 4 is the target at (0, 0), (1, 1)
    log_expected = (_log_q(sampled, V) + math.log(K)).astype("float32")
    out = np.asarray(sampled_logits(hidden, targets, kernel, bias, sampled, log_expected))
    assert out.shape == (2, 3, 1 + K)
    full = hidden @ kernel.T + bias  # (2, 3, V)
    want_true = np.take_along_axis(full, targets[..., None], -1)[..., 0]
    want_true -= _log_q(targets, V) + math.log(K)
    np.testing.assert_allclose(out[..., 0], want_true, rtol=1e-5, atol=1e-5)
    want = full[..., sampled] - log_expected
    hits = targets[..., None] == sampled
    assert hits.sum() == 4
    np.testing.assert_allclose(out[..., 1:][~hits], want[~hits], rtol=1e-5, atol=1e-5)
    assert np.all(out[..., 1:][hits] == ACCIDENTAL_HIT_LOGIT)


def test_every_class_sampled_once_without_correction_is_the_full_softmax_loss():
    """With the whole vocabulary as the sample and no correction, column 0 plus the
    unmasked columns are exactly the full logits: the sampled loss is the full loss."""
    from keras import ops

    from seqtasks.losses import MaskedCrossEntropy
    from seqtasks.sampled_softmax import sampled_logits

    rng = np.random.default_rng(1)
    V, W = 20, 4
    hidden = rng.normal(size=(2, 5, W)).astype("float32")
    kernel = rng.normal(size=(V, W)).astype("float32")
    bias = rng.normal(size=(V,)).astype("float32")
    targets = rng.integers(1, V, size=(2, 5)).astype("int32")
    targets[1, 3:] = 0  # padding
    logits = sampled_logits(
        hidden, targets, kernel, bias, np.arange(V, dtype="int32"), np.zeros(V, "float32")
    )
    # Column 0 was corrected by log(V * Q(target)): undo it to compare losses exactly.
    logits = np.array(logits)
    logits[..., 0] += _log_q(targets, V) + math.log(V)
    sampled = MaskedCrossEntropy(num_sampled=V)  # width 1 + V: read as sampled logits
    full = MaskedCrossEntropy()
    got = float(sampled(targets, logits))
    want = float(full(targets, ops.convert_to_tensor(hidden @ kernel.T + bias)))
    assert got == pytest.approx(want, abs=1e-5)


def test_the_log_uniform_proposal_draws_ids_in_range_with_zipf_frequencies():
    import keras

    from seqtasks.sampled_softmax import log_uniform_candidates

    V, K = 1000, 50_000
    ids, log_expected = log_uniform_candidates(K, V, seed=keras.random.SeedGenerator(3))
    ids, log_expected = np.asarray(ids), np.asarray(log_expected)
    assert ids.dtype == np.int32 and ids.min() >= 0 and ids.max() < V
    np.testing.assert_allclose(log_expected, _log_q(ids, V) + math.log(K), rtol=1e-5, atol=1e-5)
    for k in (0, 1, 10):  # P(0) = log 2 / log 1001 = 10.0%; binomial sd ~0.13 points
        assert np.mean(ids == k) == pytest.approx(np.exp(_log_q(k, V)), abs=0.006)


def test_the_loss_and_accuracy_read_sampled_and_full_logits():
    from seqtasks.losses import MaskedCrossEntropy, token_accuracy

    targets = np.array([[5, 2, 0]], "int32")
    sampled = np.array([[[3.0, 1.0, 0.0], [0.0, 2.0, 0.0], [9.0, 0.0, 0.0]]], "float32")
    loss = MaskedCrossEntropy(num_sampled=2)
    log_z = np.log(np.exp(sampled).sum(-1))
    want = np.mean([log_z[0, 0] - 3.0, log_z[0, 1] - 0.0])  # class 0; padding left out
    assert float(loss(targets, sampled)) == pytest.approx(want, abs=1e-5)
    assert float(token_accuracy(2)(targets, sampled)) == pytest.approx(0.5)
    full = np.zeros((1, 3, 8), "float32")
    full[0, 0, 5] = full[0, 1, 7] = 4.0
    assert float(token_accuracy(2)(targets, full)) == pytest.approx(0.5)
    assert token_accuracy(2).__name__ == "masked_accuracy"
    with pytest.raises(ValueError, match="label smoothing is not defined for sampled softmax"):
        MaskedCrossEntropy(0.1, num_sampled=2)


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_language_models_give_sampled_logits_only_when_training_with_targets(kind):
    from seqtasks.models.language_models import RNNLanguageModel, TransformerLanguageModel

    V, K = 40, 7
    if kind == "lstm":
        model = RNNLanguageModel(V, 8, 8, tie_embeddings=True, num_sampled=K)
    else:
        model = TransformerLanguageModel(V, 6, 8, 16, 2, 1, num_sampled=K)
    ids = np.array([[1, 5, 6, 0], [1, 9, 9, 9]], "int32")
    targets = np.array([[5, 6, 0, 0], [9, 9, 9, 2]], "int32")
    full = model({"decoder_token_ids": ids})
    assert tuple(full.shape) == (2, 4, V)
    assert tuple(model({"decoder_token_ids": ids, "target_ids": targets}).shape) == (2, 4, V)
    training = model({"decoder_token_ids": ids, "target_ids": targets}, training=True)
    assert tuple(training.shape) == (2, 4, 1 + K)
    assert model.get_config()["num_sampled"] == K
    rebuilt = type(model).from_config(model.get_config())
    assert rebuilt.num_sampled == K
    with pytest.raises(ValueError, match="num_sampled must be 0"):
        RNNLanguageModel(V, 8, 8, num_sampled=V - 1)


WORDS = os.path.join(SHARED_DATA, "tinyshakespeare", "train.txt")


def _word_text(path, characters=60_000):
    with open(WORDS, encoding="utf-8") as f:
        return write_file(path, f.read(characters))


def test_a_word_model_trained_with_sampled_softmax_lowers_the_full_validation_nll(tmp_path):
    """Two epochs of sampled softmax (32 of ~900 words) on 60,000 characters of tiny
    Shakespeare: the full-softmax validation NLL falls well below the untrained model's
    (log V, the uniform guess) and the export scores with the full softmax."""
    from seqtasks.export import read_metadata
    from seqtasks.training import train
    from tasks import get_recipe

    recipe = get_recipe("language-model")
    text = _word_text(tmp_path / "text.txt")
    config = recipe.make_config(
        data=text,
        tokenizer="word",
        vocabulary_size=1000,
        sampled_softmax=32,
        hidden_dim=32,
        embedding_dim=32,
        sequence_length=32,
        batch_size=32,
        epochs=2,
        learning_rate=0.01,
        export_dir=str(tmp_path / "export"),
        run_dir=str(tmp_path / "run"),
    )
    result = train(recipe, config, verbose=0)
    vocabulary = result.prepared.info.tokenizer.vocabulary_size
    assert vocabulary > 500  # words seen twice in 60,000 characters
    assert result.metrics["val_nll"] < math.log(vocabulary) - 1.0, result.metrics
    tail = write_file(tmp_path / "tail.txt", open(text, encoding="utf-8").read()[-6_000:])
    report = recipe.evaluate_export(
        result.export_path, read_metadata(result.export_path), data=tail
    )
    assert report["nll"] < math.log(vocabulary) - 1.0, report


@pytest.mark.parametrize(
    "sets, phrases",
    [
        (["sampled_softmax=10", "label_smoothing=0.1"], ["'sampled_softmax'", "label smoothing"]),
        (["sampled_softmax=999", "vocabulary_size=1000"], ["'sampled_softmax'", "1000"]),
        (["sampled_softmax=500", "tokenizer=char"], ["'sampled_softmax'", "learned", "tokens"]),
    ],
)
def test_impossible_sampled_softmax_settings_are_one_error_line(tmp_path, sets, phrases):
    from click.testing import CliRunner

    import cli

    data = _word_text(tmp_path / "text.txt", 5_000)
    args = ["train", "language-model", "--data", data, "--epochs", "1"]
    args += ["--export-dir", str(tmp_path / "export"), "--run-dir", str(tmp_path / "run")]
    for item in sets:
        args += ["--set", item]
    result = CliRunner().invoke(cli.cli, args)
    assert_one_line_error(result, *phrases)
    assert not os.path.exists(tmp_path / "export")

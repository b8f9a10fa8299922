"""The translation recipe: training, in-graph decoding, export round trip, overfitting 20 pairs."""

import gzip
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import SHARED_DATA, TINY_TRANSLATION, run_fresh_python, stop_at_loss, write_file
from seqtasks.data.parallel import ParallelData, load_parallel
from seqtasks.decoding import DecodingOptions
from seqtasks.text import END_ID, PAD_ID

MULTI30K = os.path.join(SHARED_DATA, "multi30k")


def test_training_reports_bleu_perplexity_and_exports(translation):
    metrics = translation.metrics
    assert metrics["epochs_run"] == 1
    assert 1.0 < metrics["val_perplexity"] < 300 * 1.5  # at most about uniform over 300
    assert metrics["val_perplexity"] == pytest.approx(np.exp(metrics["val_nll"]), rel=1e-6)
    assert 0.0 <= metrics["val_bleu"] <= 100.0 and 0.0 <= metrics["val_chrf"] <= 100.0
    assert metrics["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert metrics["decoding"]["strategy"] == "beam" and metrics["decoding"]["beam_size"] == 2
    with open(os.path.join(translation.export_path, "assets.extra", "metadata.json")) as f:
        metadata = json.load(f)
    assert metadata["task"] == "translation" and metadata["task_type"] == "many-to-many"
    assert (metadata["source_lang"], metadata["target_lang"]) == ("en", "de")
    assert metadata["data"]["examples"] == 200
    assert metadata["data"]["train_examples"] + metadata["data"]["dropped_too_long"] == 180
    for name in ("model.keras", "source_vocabulary.txt", "target_vocabulary.txt"):
        assert os.path.isfile(os.path.join(translation.export_path, "assets.extra", name))


def test_batches_follow_the_teacher_forcing_layout(translation):
    inputs, targets = next(iter(translation.prepared.train))
    source, decoder = inputs["encoder_token_ids"].numpy(), inputs["decoder_token_ids"].numpy()
    targets = targets.numpy()
    assert source.dtype == np.int32 and decoder.shape == targets.shape
    assert (decoder[:, 0] == 2).all()  # [START]
    np.testing.assert_array_equal(decoder[:, 1:], targets[:, :-1])  # shifted by one
    # Right padding only: once a row hits [PAD] it stays padded.
    for row in source:
        real = np.flatnonzero(row != PAD_ID)
        assert real.size == 0 or real[-1] == real.size - 1
    assert (np.sum(targets == END_ID, axis=1) == 1).all()


FRESH_PROCESS = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the WordPiece ops the graph uses
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = {}
for name, batch in json.loads(sys.argv[2]).items():
    result = fn(text=tf.constant(batch))
    out[name] = {
        "translation": [t.decode("utf-8") for t in result["translation"].numpy()],
        "score": result["score"].numpy().tolist(),
    }
print(json.dumps(out))
"""


def test_the_export_saves_the_translator_evaluation_decoded_with(translation):
    model, translator = translation.prepared.built["translator"]
    assert model is translation.model
    # Traced by evaluation; the export saves that concrete function, not tracing it again.
    assert translator.serving_function.experimental_get_tracing_count() == 1


def test_export_in_a_fresh_process_matches_the_in_memory_model(translation, tmp_path):
    from seqtasks.generation import Generator, TextSource

    batches = {
        "one": ["A man is riding a bicycle down the street."],
        "five": [
            "Two dogs play in the snow.",
            "",
            "A woman in a red dress is singing.",
            "   ",
            "Children are playing soccer on a field near a big old church.",
        ],
    }
    loaded = run_fresh_python(
        FRESH_PROCESS, translation.export_path, json.dumps(batches), cwd=tmp_path
    )
    info = translation.prepared.info
    translator = Generator(
        translation.model,
        info.target_tokenizer,
        DecodingOptions(beam_size=2),
        TINY_TRANSLATION["sequence_length"],
        TextSource(info.source_tokenizer),
        "translation",
    )
    for name, batch in batches.items():
        expected = translator.serving_function(tf.constant(batch))
        translations = [t.decode("utf-8") for t in expected["translation"].numpy()]
        assert loaded[name]["translation"] == translations
        np.testing.assert_allclose(loaded[name]["score"], expected["score"].numpy(), atol=1e-5)
    five = loaded["five"]
    assert five["translation"][1] == five["translation"][3] == ""
    assert five["score"][1] == five["score"][3] == 0.0
    assert all(s < 0 for i, s in enumerate(five["score"]) if i not in (1, 3))


def test_evaluate_export_scores_a_split(translation):
    from seqtasks.export import read_metadata
    from tasks import get_recipe

    recipe = get_recipe("translation")
    metadata = read_metadata(translation.export_path)
    report = recipe.evaluate_export(
        translation.export_path, metadata, data=MULTI30K, split="val", max_examples=20
    )
    assert report["segments"] == 20 and report["split"] == "val"
    assert 0.0 <= report["bleu"] <= 100.0
    assert 1.0 < report["perplexity"] < 1000.0
    assert report["bleu_signature"].startswith("nrefs:1")
    text = recipe.format_report(report)
    assert "BLEU" in text and "chrF" in text and "perplexity" in text


def test_over_long_pairs_are_dropped_from_training_and_counted():
    from seqtasks.data.teacher_forcing import pair_batches
    from seqtasks.subword import SubwordTokenizer, learn_vocabulary
    from seqtasks.text import write_vocabulary
    from tasks import get_recipe

    pairs = ParallelData(["a b", "a b a b a b a b"], ["c d", "c d"], "test")
    config = get_recipe("translation").make_config(sequence_length=5, batch_size=4)
    path = write_vocabulary(learn_vocabulary(["a b c d"], 20), "/tmp/seqtasks-test-vocab.txt")
    tokenizer = SubwordTokenizer(path, 5)
    dataset, dropped = pair_batches(pairs, tokenizer, tokenizer, config, shuffle=False)
    assert dropped == 1
    batches = list(dataset)
    assert len(batches) == 1 and batches[0][1].shape[0] == 1


def _twenty_pairs():
    """20 short real pairs, and the whole val split (to learn vocabularies from)."""
    data = load_parallel(MULTI30K, source_lang="en", target_lang="de", split="val")
    sources = [s for s in data.sources if len(s) < 60][:20]
    targets = [data.targets[data.sources.index(s)] for s in sources]
    return ParallelData(sources, targets, "val"), data


# Trained until the epoch's loss is below this, under a cap of epochs (20 steps each) of
# over three times what seeds 1-4 needed on an Intel Xeon 2-core machine: the Transformer
# 6-10 epochs (all 20 pairs exact from loss 0.1), the rnn-attention model 20-35 (exact from
# loss 0.08). The former fixed budget (15 and 30 epochs) left the latter no margin.
TRANSLATION_OVERFIT_LOSS = 0.03
TRANSLATION_OVERFIT_EPOCHS = {"transformer": 35, "rnn-attention": 110}


@pytest.mark.parametrize("model", ["transformer", "rnn-attention"])
def test_a_model_that_overfits_20_pairs_reproduces_them_greedy_and_beam(tmp_path, model):
    from seqtasks.data.teacher_forcing import pair_batches
    from seqtasks.generation import Generator, TextSource
    from seqtasks.models.seq2seq import build_seq2seq
    from seqtasks.subword import SubwordTokenizer, learn_vocabulary
    from seqtasks.text import write_vocabulary
    from tasks import get_recipe

    keras.utils.set_random_seed(1)
    pairs, val = _twenty_pairs()
    recipe = get_recipe("translation")
    config = recipe.make_config(
        model=model,
        sequence_length=32,
        hidden_dim=32,
        intermediate_dim=64,
        embedding_dim=32,
        num_heads=2,
        num_layers=1,
        dropout=0.0,
        label_smoothing=0.0,
        batch_size=20,
        learning_rate=1e-2,
        warmup_steps=20,
    )
    tokenizers = []
    for name, texts in (("src", val.sources), ("tgt", val.targets)):
        path = write_vocabulary(learn_vocabulary(texts, 1000), str(tmp_path / f"{name}.txt"))
        tokenizers.append(SubwordTokenizer(path, 32))
    dataset, dropped = pair_batches(pairs, *tokenizers, config, shuffle=True)
    assert dropped == 0
    net = build_seq2seq(config, tokenizers[0].vocabulary_size, tokenizers[1].vocabulary_size)
    recipe.compile_model(net, config)
    stop = stop_at_loss(TRANSLATION_OVERFIT_LOSS)
    cap = TRANSLATION_OVERFIT_EPOCHS[model]
    net.fit(
        dataset.repeat(), steps_per_epoch=20, epochs=cap, verbose=0, shuffle=False, callbacks=[stop]
    )
    assert stop.reached, stop.describe()
    expected = tokenizers[1].detokenize(tokenizers[1].with_boundaries(tf.constant(pairs.targets)))
    expected = [t.decode("utf-8") for t in expected.numpy()]
    for options in (DecodingOptions(strategy="greedy"), DecodingOptions(beam_size=3)):
        translator = Generator(net, tokenizers[1], options, 32, TextSource(tokenizers[0]), "out")
        assert translator.generate_all(pairs.sources)[0] == expected, options.strategy


def test_bad_pair_data_names_the_file(tmp_path):
    from seqtasks.errors import DataError

    folder = tmp_path / "corpus"
    folder.mkdir()
    with gzip.open(folder / "train.en.gz", "wt", encoding="utf-8") as f:
        f.write("one\ntwo\n")
    write_file(folder / "train.de", "eins\n")
    with pytest.raises(DataError, match=r"train.en.gz has 2 lines, .*train.de has 1"):
        load_parallel(str(folder), source_lang="en", target_lang="de")


def test_shared_or_separate_vocabularies(tmp_path):
    from tasks import get_recipe

    recipe = get_recipe("translation")
    _, pairs = _twenty_pairs()
    for shared, files in (
        (True, ["vocabulary.shared.txt"]),
        (False, ["vocabulary.de.txt", "vocabulary.en.txt"]),
    ):
        run_dir = tmp_path / str(shared)
        run_dir.mkdir()
        config = recipe.make_config(shared_vocabulary=shared, vocabulary_size=2000)
        source, target = recipe._learn_tokenizers(config, pairs, str(run_dir))
        assert sorted(os.listdir(run_dir)) == files
        assert (source is target) == shared
        assert source.vocabulary[:4] == ["[PAD]", "[UNK]", "[START]", "[END]"]
        # German words are in a shared vocabulary, not in the English one.
        assert ("Mann" in source.vocabulary) == shared
        assert ("Mann" in target.vocabulary) and ("man" in source.vocabulary)


def test_a_sampling_export_saves_its_seed_state_and_samples(translation, tmp_path):
    from seqtasks.export import save_serving_archive
    from seqtasks.generation import Generator, TextSource

    info = translation.prepared.info
    options = DecodingOptions(strategy="sample", top_k=10**6, temperature=0.8, seed=3)
    source = TextSource(info.source_tokenizer)
    translator = Generator(
        translation.model, info.target_tokenizer, options, 24, source, "translation"
    )
    assert translator.sampler.k == info.target_tokenizer.vocabulary_size  # top_k capped
    spec = [tf.TensorSpec([None], tf.string, name="text")]
    save_serving_archive(str(tmp_path / "sampled"), [translator], translator.serving_function, spec)
    serve = tf.saved_model.load(str(tmp_path / "sampled")).signatures["serving_default"]
    out = serve(text=tf.constant(["Two dogs play in the snow.", ""]))
    assert out["translation"].shape == (2,) and out["translation"].numpy()[1] == b""
    assert out["score"].numpy()[0] < 0


def test_plot_attention_of_a_transformer_matches_its_export(translation, tmp_path):
    from seqtasks.export import read_metadata
    from tasks import get_recipe

    recipe = get_recipe("translation")
    metadata = read_metadata(translation.export_path)
    sentence = "Two dogs play in the snow."
    output = str(tmp_path / "plot.png")
    info = recipe.plot_attention(translation.export_path, metadata, sentence, output)
    assert os.path.getsize(output) > 1000
    assert "".join(info["source_tokens"][:2]).replace("##", "") == "Twodog"
    served = recipe.predict(translation.export_path, metadata, [sentence])[0]
    assert info["translation"] == served["translation"]
    assert info["score"] == pytest.approx(served["score"], abs=1e-4)


def test_default_depth_is_per_architecture():
    from seqtasks.models.seq2seq import build_seq2seq
    from tasks import get_recipe

    recipe = get_recipe("translation")
    transformer = build_seq2seq(recipe.make_config(model="transformer"), 50, 50)
    rnn = build_seq2seq(recipe.make_config(model="rnn-attention"), 50, 50)
    assert len(transformer.encoder_layers) == len(transformer.decoder_layers) == 3
    assert len(rnn.encoder_layers) == 1
    deep = build_seq2seq(recipe.make_config(model="rnn-attention", num_layers=2), 50, 50)
    assert len(deep.encoder_layers) == 2


def test_a_short_run_trains_with_a_warmup_capped_to_its_length(translation):
    # 1 epoch of a few batches: the default 1,000-step warm-up would keep the rate under
    # steps/1000 of its peak for the whole run; the driver hands the run's size to
    # compile_model, which caps the warm-up at 10% of the run's steps.
    optimizer = translation.model.optimizer
    steps, peak = int(optimizer.iterations.numpy()), translation.config.learning_rate
    assert 0 < steps < 20
    assert translation.config.warmup_steps == 1000  # the default, not set by the test
    assert float(optimizer.learning_rate) > 0.1 * peak > steps / 1000 * peak


def test_a_beam_export_with_ngram_blocking_never_repeats_a_bigram(translation, tmp_path):
    """``no_repeat_ngram_size`` runs inside the SavedModel's beam search: the export gives
    the in-memory generator's translations, and no word bigram occurs twice in one."""
    from seqtasks.export import save_serving_archive
    from seqtasks.generation import Generator, TextSource

    info = translation.prepared.info
    options = DecodingOptions(strategy="beam", beam_size=3, no_repeat_ngram_size=2)
    source = TextSource(info.source_tokenizer)
    translator = Generator(
        translation.model, info.target_tokenizer, options, 24, source, "translation"
    )
    texts = ["Two dogs play in the snow.", "A man in a blue shirt is riding a bike.", ""]
    expected, _ = translator.generate_all(texts)
    spec = [tf.TensorSpec([None], tf.string, name="text")]
    save_serving_archive(str(tmp_path / "blocked"), [translator], translator.serving_function, spec)
    serve = tf.saved_model.load(str(tmp_path / "blocked")).signatures["serving_default"]
    got = [t.decode("utf-8") for t in serve(text=tf.constant(texts))["translation"].numpy()]
    assert got == expected and got[-1] == "" and got[0]
    for text in got:
        words = text.split()
        bigrams = list(zip(words, words[1:]))
        assert len(bigrams) == len(set(bigrams)), text

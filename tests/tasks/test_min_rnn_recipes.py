"""minGRU/minLSTM in the recipes: a bidirectional sentiment export, a language-model
export (residual blocks, cached-step generation) and an rnn-attention translator
(``cell=mingru``, beam search in the graph) give in a fresh TensorFlow-only process what
the in-memory models give, and `train sentiment --init-from` starts from a minGRU
language model."""

import json

import numpy as np
import tensorflow as tf
from test_language_model import TINY_LM, assert_fresh_export_matches, shakespeare_head
from test_sentiment_recipe import FRESH_PROCESS
from test_translation import FRESH_PROCESS as TRANSLATE_IN_A_FRESH_PROCESS
from test_translation import MULTI30K

from conftest import SST2_TRAIN, TINY, TINY_TRANSLATION, head_lines, run_fresh_python


def test_a_bidirectional_mingru_classifier_serves_in_a_fresh_process(tmp_path, sst2_sample):
    from seqtasks.export import read_metadata
    from seqtasks.training import train
    from tasks import get_recipe

    recipe = get_recipe("sentiment")
    config = recipe.make_config(
        data=sst2_sample, model="bimingru", export_dir=str(tmp_path / "export"),
        run_dir=str(tmp_path / "run"), **TINY,
    )  # fmt: skip
    result = train(recipe, config, verbose=0)
    assert read_metadata(result.export_path)["model"] == "bimingru"
    texts = ["a gorgeous , witty , seductive movie .", "", "unwatchable " * 300]
    vectorizer = result.prepared.info.vectorizer
    expected = result.model.predict_on_batch(vectorizer.pad(vectorizer(tf.constant(texts))))
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    served = run_fresh_python(
        FRESH_PROCESS, result.export_path, tmp_path / "texts.json", cwd=tmp_path
    )
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)


def test_a_minlstm_language_model_scores_and_generates_in_a_fresh_process(tmp_path):
    from seqtasks.training import train
    from tasks import get_recipe

    recipe = get_recipe("language-model")
    config = recipe.make_config(
        data=shakespeare_head(tmp_path / "shakespeare.txt", 12_000), model="minlstm",
        residual_blocks=True, conv_kernel_size=3, export_dir=str(tmp_path / "export"),
        run_dir=str(tmp_path / "run"), **TINY_LM,
    )  # fmt: skip
    result = train(recipe, config, verbose=0)
    assert result.model.rnn_layers[0].__class__.__name__ == "MinRNNBlock"
    assert result.model.convolution.kernel_size == 3  # generation caches its window
    assert np.isfinite(result.metrics["val_nll"]) and result.metrics["val_nll"] < np.log(70)
    texts = ["KING HENRY:\nWhat say you?", "", "a" * 70]
    assert_fresh_export_matches(recipe, config, result, texts, tmp_path)


def test_a_mingru_rnn_attention_translator_serves_in_a_fresh_process(tmp_path):
    from seqtasks.decoding import DecodingOptions
    from seqtasks.generation import Generator, TextSource
    from seqtasks.models.min_rnn import MinGRU
    from seqtasks.training import train
    from tasks import get_recipe

    recipe = get_recipe("translation")
    config = recipe.make_config(
        data=MULTI30K, model="rnn-attention", cell="mingru",
        export_dir=str(tmp_path / "export"), run_dir=str(tmp_path / "run"),
        **TINY_TRANSLATION,
    )  # fmt: skip
    result = train(recipe, config, verbose=0)
    decoder = result.model.decoder
    assert isinstance(decoder.decoder_rnn, MinGRU) and decoder.num_states == 1
    assert isinstance(result.model.encoder.encoder_layers[0].forward_layer, MinGRU)
    assert 1.0 < result.metrics["val_perplexity"] < 300 * 1.5  # at most about uniform
    batch = ["Two dogs play in the snow.", "", "A woman in a red dress is singing."]
    served = run_fresh_python(
        TRANSLATE_IN_A_FRESH_PROCESS, result.export_path, json.dumps({"b": batch}), cwd=tmp_path
    )["b"]
    info = result.prepared.info
    expected = Generator(
        result.model, info.target_tokenizer, DecodingOptions(beam_size=2),
        TINY_TRANSLATION["sequence_length"], TextSource(info.source_tokenizer), "translation",
    ).serving_function(tf.constant(batch))  # fmt: skip
    assert served["translation"] == [t.decode() for t in expected["translation"].numpy()]
    np.testing.assert_allclose(served["score"], expected["score"].numpy(), atol=1e-5)
    assert served["translation"][1] == "" and served["score"][1] == 0.0


def test_the_classifier_starts_from_a_mingru_language_model(tmp_path):
    from seqtasks.lm_transfer import load_language_model
    from seqtasks.training import train
    from tasks import get_recipe
    from tasks.sentiment_config import resolve_init_from

    data = head_lines(SST2_TRAIN, 201, str(tmp_path / "sst2.tsv"))
    lm_recipe = get_recipe("language-model")
    lm_config = lm_recipe.make_config(
        data=data, text_column="sentence", model="mingru", tokenizer="word",
        vocabulary_size=300, embedding_dim=12, hidden_dim=12, num_layers=2, sequence_length=16,
        conv_kernel_size=2, epochs=1, batch_size=32, max_length=5, export_dir=str(tmp_path / "lm"),
        run_dir=str(tmp_path / "lm-run"),
    )  # fmt: skip
    train(lm_recipe, lm_config, verbose=0)
    recipe = get_recipe("sentiment")
    config = resolve_init_from(
        recipe.make_config(data=data, init_from=str(tmp_path / "lm"), pooling="concat"), False
    )
    assert config.model == "mingru"
    prepared = recipe.prepare(config, recipe.load_data(config), str(tmp_path / "run"))
    model = recipe.build_model(config, prepared)
    lm = load_language_model(str(tmp_path / "lm")).model
    pairs = [("embedding_convolution", lm.convolution)]
    pairs += [(f"mingru_{i}", lm.rnn_layers[i]) for i in range(2)]
    for name, layer in pairs:
        weights = model.get_layer(name).get_weights()
        assert len(weights) == len(layer.get_weights()) > 0
        for a, b in zip(weights, layer.get_weights()):
            np.testing.assert_array_equal(a, b)

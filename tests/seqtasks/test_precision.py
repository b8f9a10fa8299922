"""Speed settings: mixed_precision (float16 compute, float32 outputs and export), jit_compile."""

import logging

import keras
import numpy as np
import tensorflow as tf

from conftest import TINY
from seqtasks.models.classifier import build_text_classifier
from seqtasks.precision import follow_global_policy, precision_policy
from seqtasks.training import train
from tasks import get_recipe

NO_GPU_WARNING = (
    "mixed_precision=true but no GPU is visible: float16 is emulated on CPUs and "
    "trains slower than float32 (leave mixed_precision off on CPU)"
)


def test_mixed_precision_trains_and_exports_float32(tmp_path, sst2_sample, caplog):
    recipe = get_recipe("sentiment")
    config = recipe.make_config(
        data=sst2_sample,
        export_dir=str(tmp_path / "export"),
        run_dir=str(tmp_path / "run"),
        mixed_precision="true",
        **{**TINY, "model": "lstm", "max_examples": 40, "batch_size": 64},  # one batch
    )
    with caplog.at_level(logging.WARNING, logger="seqtasks.precision"):
        result = train(recipe, config, verbose=0)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    if not tf.config.list_physical_devices("GPU"):
        assert [r.getMessage() for r in caplog.records if "mixed_precision" in r.getMessage()] == [
            NO_GPU_WARNING
        ]
    model = result.model
    assert model.dtype_policy.name == "mixed_float16"
    assert model.get_layer("embedding").compute_dtype == "float16"
    assert model.get_layer("embedding").variable_dtype == "float32"
    assert model.get_layer("probabilities").compute_dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.isfinite(result.metrics["val_loss"])

    serve = tf.saved_model.load(result.export_path).signatures["serving_default"]
    assert serve.structured_input_signature[1]["text"].dtype == tf.string
    out = serve(text=tf.constant(["a gorgeous , witty movie .", "", "dull and tedious"]))
    probabilities = out["probabilities"]
    assert probabilities.dtype == tf.float32 and probabilities.shape == (3, 2)
    assert np.isfinite(probabilities.numpy()).all()
    np.testing.assert_allclose(probabilities.numpy().sum(axis=-1), 1.0, atol=1e-5)


def test_follow_global_policy_converts_a_loaded_model_but_its_outputs():
    model = build_text_classifier(
        num_classes=2, vocabulary_size=10, sequence_length=8, embedding_dim=4, hidden_dim=2
    )
    with precision_policy(False):
        assert follow_global_policy(model).get_layer("embedding").compute_dtype == "float32"
    with precision_policy(True):
        follow_global_policy(model)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert model.dtype_policy.name == "mixed_float16"
    assert model.get_layer("bilstm_0").forward_layer.cell.compute_dtype == "float16"
    assert model.get_layer("probabilities").compute_dtype == "float32"
    out = model.predict_on_batch(np.array([[3, 4, 0, 0]], "int32"))
    assert out.dtype == np.float32 and np.isfinite(out).all()
    follow_global_policy(model)  # back to float32 outside the block
    assert model.get_layer("embedding").compute_dtype == "float32"


def test_jit_compile_field_reaches_compile(caplog):
    from tensorflow.python.framework import config as tf_config

    from seqtasks.training import seed_everything

    recipe = get_recipe("sentiment")
    model = build_text_classifier(
        num_classes=2, vocabulary_size=10, sequence_length=8, embedding_dim=4, hidden_dim=2
    )
    try:
        seed_everything(0, deterministic=False)
        assert not tf_config.is_op_determinism_enabled()
        assert [r.getMessage() for r in caplog.records if "jit_compile" in r.getMessage()] == [
            "config field 'jit_compile'=true turns TensorFlow's op determinism off "
            "(Keras runs no XLA under it): runs are not bit-for-bit reproducible"
        ]
        cases = [("true", True), ("false", False)]
        if not tf.config.list_physical_devices("GPU"):
            cases.append(("auto", False))  # Keras: no XLA on CPU-only machines
        for value, expected in cases:
            recipe.compile_model(model, recipe.make_config(jit_compile=value))
            assert model.jit_compile is expected, value
    finally:
        seed_everything(0)
    assert tf_config.is_op_determinism_enabled()
    recipe.compile_model(model, recipe.make_config(jit_compile="true"))
    assert model.jit_compile is False  # Keras drops XLA under op determinism


def test_transformer_decoding_cache_keeps_its_dtype_under_mixed_precision():
    """Beam search's while_loop needs decode_step to return the cache in init_cache's dtypes."""
    from seqtasks.models.seq2seq import TransformerSeq2Seq

    with precision_policy(True):
        model = TransformerSeq2Seq(20, 30, 8, hidden_dim=8, intermediate_dim=8, num_layers=2)
    source = np.array([[5, 6, 0]], "int32")
    model({"encoder_token_ids": source, "decoder_token_ids": source})
    cache = model.init_cache(source, 8)
    assert len(cache) == 1 + 4 + 4  # the encoder mask, then keys and values per block
    logits, new_cache = model.decode_step(np.array([[2]], "int32"), cache, 0)
    assert logits.dtype == "float32" and np.isfinite(np.asarray(logits)).all()
    assert [c.dtype for c in new_cache] == [c.dtype for c in cache]
    assert [tuple(c.shape) for c in new_cache] == [tuple(c.shape) for c in cache]
    assert cache[-1].dtype == "float16"  # the self-attention cache


def test_transformer_language_model_cache_keeps_its_dtype_under_mixed_precision():
    from seqtasks.models.language_models import TransformerLanguageModel

    with precision_policy(True):
        model = TransformerLanguageModel(20, 8, hidden_dim=8, intermediate_dim=8, num_layers=2)
    tokens = np.array([[2, 5, 6]], "int32")
    model({"decoder_token_ids": tokens})
    cache = model.init_cache(None, 8, batch_size=1)
    assert [tuple(c.shape) for c in cache] == [(1, 4, 8, 2)] * 4  # (B, heads, positions, Dh)
    logits, new_cache = model.decode_step(tokens[:, :1], cache, 0)
    assert logits.dtype == "float32" and np.isfinite(np.asarray(logits)).all()
    assert [c.dtype for c in new_cache] == [c.dtype for c in cache] == ["float16"] * 4

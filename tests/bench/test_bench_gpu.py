"""bench/gpu/: its FLOP counts, its re-batching, and seqtasks' model code importing without TF."""

import ast
import importlib.util
import os

import numpy as np
import pytest

from conftest import ROOT
from seqtasks.models.classifier import build_text_classifier
from seqtasks.models.seq2seq import TransformerSeq2Seq


@pytest.fixture(scope="module")
def train_jax():
    """bench/gpu/train_jax.py as a module (its module level imports nothing but the stdlib)."""
    path = os.path.join(ROOT, "bench", "gpu", "train_jax.py")
    spec = importlib.util.spec_from_file_location("train_jax", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def module_level_imports(name: str, seen: set[str] | None = None) -> set[str]:
    """Top-level package names imported when ``name`` (a seqtasks module) is imported,
    following seqtasks' own modules; imports inside functions are left out."""
    seen = set() if seen is None else seen
    seen.add(name)
    path = os.path.join(ROOT, *name.split(".")) + ".py"
    if not os.path.isfile(path):
        path = os.path.join(ROOT, *name.split("."), "__init__.py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    found, pending = set(), list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            pending.extend(ast.iter_child_nodes(node))
            continue
        for module in modules:
            found.add(module.split(".")[0])
            parts = module.split(".")
            for i in range(1, len(parts) + 1):  # seqtasks.models.x imports seqtasks/__init__...
                parent = ".".join(parts[:i])
                if parts[0] == "seqtasks" and parent not in seen:
                    found |= module_level_imports(parent, seen)
    return found


def test_model_builders_and_losses_import_without_tensorflow():
    # What bench/gpu/train_jax.py imports on the GPU machine, which has no TensorFlow.
    for name in (
        "seqtasks.models.classifier",
        "seqtasks.models.seq2seq",
        "seqtasks.models.captioning",
        "seqtasks.losses",
        "seqtasks.io",
    ):
        assert "tensorflow" not in module_level_imports(name), name
    # The check sees an import of TensorFlow when there is one.
    assert "tensorflow" in module_level_imports("seqtasks.text")


def kernel_weights(model, leave_out=()) -> int:
    """Sizes of the weights used in matrix products (no embeddings, biases, norms)."""
    return sum(
        int(np.prod(w.shape))
        for w in model.weights
        if w.path.endswith("kernel") and not w.path.startswith(leave_out)
    )


def test_training_flops_of_one_token_are_six_per_matrix_weight(train_jax):
    # One token, one example: 2 FLOPs per multiply-add, x3 for training; the
    # Transformer adds its attention term 4 * d per layer and attention (3 of them).
    model = build_text_classifier(
        num_classes=2, vocabulary_size=50, sequence_length=8, embedding_dim=6, hidden_dim=5,
        num_layers=2, kind="bilstm",
    )  # fmt: skip
    description = {
        "builder": {
            "name": "build_text_classifier",
            "kwargs": {"kind": "bilstm", "num_layers": 2, "embedding_dim": 6, "hidden_dim": 5},
        }
    }
    one = {"token_ids": np.array([[7, 0, 0]])}
    weights = kernel_weights(model, leave_out=("probabilities",))
    assert weights == 2 * 4 * (6 + 5) * 5 + 2 * 4 * (10 + 5) * 5
    assert train_jax.training_flops(description, one, padded=False) == 6 * weights
    assert train_jax.training_flops(description, one, padded=True) == 3 * 6 * weights

    kwargs = {"hidden_dim": 8, "intermediate_dim": 12, "num_heads": 2, "num_layers": 2}
    model = TransformerSeq2Seq(30, 40, sequence_length=8, **kwargs)
    model(
        {
            "encoder_token_ids": np.ones((1, 2), "int32"),
            "decoder_token_ids": np.ones((1, 2), "int32"),
        }
    )
    description = {"builder": {"name": "TransformerSeq2Seq", "args": [30, 40], "kwargs": kwargs}}
    one = {"encoder_token_ids": np.array([[5, 0]]), "decoder_token_ids": np.array([[2, 0]])}
    attention = 3 * 2 * 4 * 8  # encoder self, decoder self and cross, per layer
    expected = 3 * (2 * kernel_weights(model) + attention)
    assert train_jax.training_flops(description, one, padded=False) == expected
    # Padded 2 x 2: every matrix product twice, each attention term 4 times.
    assert train_jax.training_flops(description, one, padded=True) == 3 * (
        4 * kernel_weights(model) + 4 * attention
    )
    description["builder"]["name"] = "RNNAttentionSeq2Seq"
    assert train_jax.training_flops(description, one, padded=False) is None


def test_rebatch_cuts_each_bucket_and_drops_its_partial_batch(train_jax):
    def batch(length, rows, first):
        ids = np.arange(first, first + rows)[:, None] * np.ones((1, length), int)
        return {"token_ids": ids}, np.arange(first, first + rows)

    batches = [batch(16, 3, 0), batch(32, 3, 3), batch(16, 3, 6), batch(32, 2, 9)]
    out = train_jax.rebatch(batches, 4)
    assert [(x["token_ids"].shape, y.tolist()) for x, y in out] == [
        ((4, 16), [0, 1, 2, 6]),
        ((4, 32), [3, 4, 5, 9]),
    ]  # rows 7, 8 (length 16) and 10 (length 32) make no full batch
    assert train_jax.rebatch(batches, 7) == []


def test_device_peak_by_jax_device_kind(train_jax):
    assert train_jax.device_peak("NVIDIA H100 80GB HBM3", "bfloat16") == (
        "H100 SXM bfloat16",
        989.4,
    )
    assert train_jax.device_peak("NVIDIA H100 PCIe", "float32") == ("H100 PCIe tf32", 378.0)
    assert train_jax.device_peak("NVIDIA H200", "float16") == ("H200 float16", 989.4)
    assert train_jax.device_peak("NVIDIA A100-SXM4-80GB", "float32") == ("A100 tf32", 156.0)
    assert train_jax.device_peak("cpu", "float32") is None

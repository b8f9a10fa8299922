"""Shared fixtures: small real samples from ../shared/data and tiny model settings."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
IMDB_TAR = os.path.join(SHARED_DATA, "imdb", "aclImdb_v1_train.tar.gz")
SST2_TRAIN = os.path.join(SHARED_DATA, "sst2", "train.tsv")
SST2_DEV = os.path.join(SHARED_DATA, "sst2", "dev.tsv")

# Small enough for a 2-core CPU: every recipe trains in a few seconds.
TINY = {
    "vocabulary_size": 300,
    "min_frequency": 1,
    "sequence_length": 24,
    "embedding_dim": 8,
    "hidden_dim": 4,
    "num_heads": 2,
    "intermediate_dim": 8,
    "epochs": 1,
    "batch_size": 32,
}


# Translation: small enough that the recipe trains in seconds.
TINY_TRANSLATION = {
    "vocabulary_size": 300,
    "sequence_length": 24,
    "hidden_dim": 16,
    "intermediate_dim": 16,
    "embedding_dim": 16,
    "num_heads": 2,
    "num_layers": 1,
    "epochs": 1,
    "batch_size": 32,
    "beam_size": 2,
    "max_examples": 200,
}


def head_lines(path: str, n: int, destination: str) -> str:
    """Copy the first ``n`` lines of ``path`` (a real dataset) to ``destination``."""
    with open(path, encoding="utf-8") as f:
        lines = [next(f) for _ in range(n)]
    with open(destination, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return destination


def write_file(path, content) -> str:
    """Write ``content`` (str as UTF-8, or bytes as they are) to ``path``; return it as str."""
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(path, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
        f.write(content)
    return str(path)


@pytest.fixture(scope="session")
def sst2_sample(tmp_path_factory) -> str:
    """The header and first 240 rows of the real SST-2 training file."""
    return head_lines(SST2_TRAIN, 241, str(tmp_path_factory.mktemp("data") / "sst2_sample.tsv"))


@pytest.fixture(scope="session")
def trained(tmp_path_factory, sst2_sample):
    """A tiny bilstm sentiment model trained and exported once for the session."""
    from seqtasks.training import train
    from tasks import get_recipe

    root = tmp_path_factory.mktemp("trained")
    recipe = get_recipe("sentiment")
    config = recipe.make_config(
        data=sst2_sample,
        export_dir=str(root / "export"),
        run_dir=str(root / "run"),
        **TINY,
    )
    result = train(recipe, config, verbose=0)
    return result

"""Named settings of a recipe (``cli.py train RECIPE --preset NAME``), importable without
TensorFlow.

A preset is a set of ``--set`` values that reproduces a published configuration; flags and
``--set`` given with it override its values. Each preset says where it comes from and
what differs from the source.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "translation": {
        "wu2021-multi30k": {
            "description": "The small Multi30k Transformer of Wu et al. 2021 (41.0 BLEU on "
            "test_2016_flickr, lower-cased tokenized): 4+4 layers of width 128, a joint "
            "subword vocabulary of 10k (WordPiece here, BPE there) with all embeddings tied, "
            "dropout 0.3, label smoothing 0.1, Adam (0.9, 0.98) with inverse-square-root "
            "decay from a 5e-3 peak after 2,000 warm-up steps (set explicitly: never capped), "
            "the last 10 epochs averaged, beam 5.",
            "settings": {
                "model": "transformer",
                "num_layers": 4,
                "hidden_dim": 128,
                "intermediate_dim": 512,
                "num_heads": 4,
                "shared_vocabulary": True,
                "tie_embeddings": True,
                "vocabulary_size": 10000,
                "dropout": 0.3,
                "label_smoothing": 0.1,
                "learning_rate": 5e-3,
                "warmup_steps": 2000,
                "average_last": 10,
                "patience": 10,
                "beam_size": 5,
            },
        },
        "multi30k-cpu-90min": {
            "description": "The recipe's Transformer (3+3 blocks of width 256) with one shared "
            "WordPiece vocabulary, all embeddings tied and the last 5 epochs averaged: 38.86 "
            "sacreBLEU (cased, 13a) and 62.52 chrF on Multi30k test_2016_flickr after 90 "
            "minutes of training on a 2-core CPU (bench/README.md); selected on val only.",
            "settings": {
                "model": "transformer",
                "shared_vocabulary": True,
                "tie_embeddings": True,
                "average_last": 5,
            },
        },
    },
    "captioning": {
        "flickr8k-224px": {
            "description": "Show, Attend and Tell (Xu et al. 2015) with its doubly stochastic "
            "attention penalty (lambda 1) and gating scalar on the context (sec. 4.2.1) on "
            "MobileNetV2 features of 224 px input (a 7x7 grid), the 3 epochs ending at the best "
            "by validation loss averaged, beam 5 with length penalty 0.6 and no repeated bigram "
            "(chosen on the validation images carved from train): 18.19, 19.54 and 18.68 "
            "BLEU-4, 0.432, 0.459 and 0.454 CIDEr-D on Flickr8k dev for three seeds, after "
            "17-24 minutes of training on a 2-core CPU (bench/README.md).",
            "settings": {
                "model": "attention",
                "image_size": 224,
                "attention_penalty": 1.0,
                "attention_gate": True,
                "average_last": 3,
                "beam_size": 5,
                "length_penalty": 0.6,
                "no_repeat_ngram_size": 2,
            },
        },
    },
    "language-model": {
        "mingru-conv": {
            "description": "Three 512-unit minGRU layers (Feng et al. 2024, sec. 3) after a "
            "causal convolution over the last 4 tokens' embeddings (the short convolution "
            "before the Mamba block's scan, Gu & Dao 2023, sec. 3.4), dropout 0.1: on tiny "
            "Shakespeare (characters) within 3% of the LSTM default's validation NLL at "
            "equal training time for its first five or six epochs, at 1.27-1.32x its "
            "characters per second on a 2-core CPU, then 4.3% behind after 15 "
            "(bench/README.md).",
            "settings": {
                "model": "mingru",
                "num_layers": 3,
                "conv_kernel_size": 4,
                "dropout": 0.1,
            },
        },
    },
}


def presets(recipe: str) -> dict[str, dict[str, Any]]:
    """The presets of ``recipe`` (name -> ``{"description", "settings"}``); empty if none."""
    return PRESETS.get(recipe, {})


def with_preset(recipe: str, name: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` on top of preset ``name``'s settings (``name`` None: ``overrides``).

    Raises:
        ConfigError: ``name`` is not a preset of ``recipe``.
    """
    from seqtasks.errors import ConfigError

    if name is None:
        return dict(overrides)
    known = presets(recipe)
    if name not in known:
        choices = ", ".join(sorted(known)) or "none"
        raise ConfigError(f"--preset {name!r}: the {recipe} recipe's presets are: {choices}")
    return {**known[name]["settings"], **overrides}

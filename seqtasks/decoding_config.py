"""The decoding config fields of a generating recipe, importable without Keras.

:class:`DecodingConfig` and ``STRATEGIES`` are re-exported by :mod:`seqtasks.decoding`
(which decodes with ``keras.ops``); the recipes' configs inherit the fields from here so
``cli.py`` can check ``--set decoding=...`` before TensorFlow is imported.
"""

from __future__ import annotations

import dataclasses

from seqtasks.choices import STRATEGIES
from seqtasks.config import option

__all__ = ["STRATEGIES", "DecodingConfig"]


@dataclasses.dataclass(frozen=True)
class DecodingConfig:
    """Config fields of a generating recipe (translation, captioning): how it decodes.

    Recipes' configs inherit these (``--set decoding=greedy``, ``--set
    beam_size=5``, ...); :meth:`DecodingOptions.from_config` turns them into
    options. The values are baked into the export.
    """

    decoding: str = option(
        "beam", "Decoding strategy of evaluation and export.", choices=STRATEGIES
    )
    beam_size: int = option(4, "Beam size (baked into the export).", min=1, max=64)
    length_penalty: float = option(
        0.6, "Beam search length penalty alpha (Wu et al. 2016); 0 = none.", min=0.0, max=5.0
    )
    temperature: float = option(1.0, "Sampling temperature.", above=0.0)
    top_k: int = option(0, "Sampling: only the k most probable tokens (0 = all).", min=0)
    top_p: float = option(1.0, "Sampling: nucleus probability mass (1 = all).", above=0.0, max=1.0)
    min_length: int = option(
        1,
        "Tokens generated before [END] may be emitted (baked into the export); 0 = none.",
        min=0,
    )
    no_repeat_ngram_size: int = option(
        0,
        "Never generate an n-gram of this many tokens twice in one output (every strategy, "
        "beam search included; baked into the export); 0 = off.",
        min=0,
    )

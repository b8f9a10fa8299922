"""Machine translation, the many-to-many recipe: a sentence in, its translation out.

Defaults train a small Transformer (3+3 blocks, d_model 256) on WordPiece
subwords learned from the training data, with label smoothing and a warm-up +
inverse-square-root learning-rate schedule; evaluation decodes with beam
search and scores with sacreBLEU. The export takes raw source strings and
returns translations: tokenization, beam search and detokenization all run
inside the SavedModel. The recipe is three modules: :mod:`~tasks.translation.config`
(the ``--set`` fields), :mod:`~tasks.translation.recipe` (data, vocabularies,
fine-tuning, model, metrics, export) and :mod:`~tasks.translation.serving` (predict,
evaluate and plot an export).

    python cli.py train translation --data ../shared/data/multi30k --source-lang en --target-lang de
    python cli.py predict saved_models/translation "A man is riding a bicycle down the street."
    python cli.py evaluate saved_models/translation --data ../shared/data/multi30k --split test_2016_flickr
"""

from tasks.translation.config import TranslationConfig, TranslationInfo
from tasks.translation.recipe import (
    FINETUNE_WARMUP_STEPS,
    TranslationRecipe,
    check_language_pair,
    export_language_pair,
)
from tasks.translation.serving import (
    VOCABULARY_FILES,
    TranslationServing,
    load_translator,
    make_translator,
    text_generator,
)

__all__ = [
    "FINETUNE_WARMUP_STEPS",
    "VOCABULARY_FILES",
    "TranslationConfig",
    "TranslationInfo",
    "TranslationRecipe",
    "TranslationServing",
    "check_language_pair",
    "export_language_pair",
    "load_translator",
    "make_translator",
    "text_generator",
]

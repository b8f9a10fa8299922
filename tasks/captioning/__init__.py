"""Image captioning, the one-to-many recipe: an image (or a feature vector) in, a sentence out.

Defaults: a frozen ImageNet MobileNetV2 turns each 160 px image into a 5x5 grid
of 1280-d features, computed once per dataset and cached on disk; an LSTM
decoder whose initial state comes from the mean feature attends over the grid
at every word (Show, Attend and Tell); captions are WordPiece subwords of
normalised (lower-case, no punctuation) text; evaluation decodes with beam
search and scores corpus BLEU-1..4 against all reference captions (sacreBLEU)
and CIDEr-D. The export takes encoded JPEG/PNG bytes and returns captions:
decoding, resizing, the CNN, beam search and detokenization all run inside
the SavedModel. The decoder classes and the decoding code are the
translation recipe's (:mod:`seqtasks.models.captioning`,
:mod:`seqtasks.decoding`). The recipe is three modules: :mod:`~tasks.captioning.config`
(the ``--set`` fields), :mod:`~tasks.captioning.recipe` (data, vocabulary, image
features, fine-tuning, model, metrics, export) and :mod:`~tasks.captioning.serving`
(predict, evaluate and plot an export).

    python cli.py train captioning --data ../shared/data/flickr8k
    python cli.py predict saved_models/captioning photo.jpg another.png
    python cli.py evaluate saved_models/captioning --data ../shared/data/flickr8k --split dev
"""

from seqtasks.data.captions import as_grid, caption_texts
from tasks.captioning.config import CaptioningConfig, CaptioningInfo
from tasks.captioning.recipe import CaptioningRecipe
from tasks.captioning.serving import (
    DECODER_FILE,
    IMAGE_ENCODER_FILE,
    VOCABULARY_FILE,
    CaptioningServing,
    caption_generator,
    feature_dtype,
    load_generator,
    make_generator,
)

__all__ = [
    "DECODER_FILE",
    "IMAGE_ENCODER_FILE",
    "VOCABULARY_FILE",
    "CaptioningConfig",
    "CaptioningInfo",
    "CaptioningRecipe",
    "CaptioningServing",
    "as_grid",
    "caption_generator",
    "caption_texts",
    "feature_dtype",
    "load_generator",
    "make_generator",
]

"""Image-captioning metrics: corpus BLEU-1..4 (sacreBLEU) and CIDEr-D (pycocoevalcap).

References:
    * BLEU: K. Papineni, S. Roukos, T. Ward, W.-J. Zhu, "BLEU: a Method for
      Automatic Evaluation of Machine Translation", ACL 2002. Computed with
      sacreBLEU (M. Post, "A Call for Clarity in Reporting BLEU Scores", WMT 2018).
    * CIDEr / CIDEr-D: R. Vedantam, C. L. Zitnick, D. Parikh, "CIDEr:
      Consensus-based Image Description Evaluation", CVPR 2015 (CIDEr-D, the
      variant used by the MS-COCO evaluation server: sections 3 and 4).

Both metrics see the same text: every hypothesis and every reference goes
through :func:`normalize_caption` first, and the result is split on spaces.
The scores are therefore comparable between runs of this toolkit; they are
close to, but not bit-identical with, figures from the official coco-caption
code, whose Java PTB tokenizer splits clitics ("man's" -> "man 's") where
:func:`normalize_caption` keeps them whole.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence

log = logging.getLogger(__name__)

# Characters read as an apostrophe (ASCII, right single quotation mark, modifier
# letter apostrophe); all are written as "'".
_APOSTROPHES = frozenset("'\u2019\u02bc")


def _is_word_char(ch: str) -> bool:
    """Letter, digit or combining mark (Unicode categories L*, N*, M*)."""
    return unicodedata.category(ch)[0] in "LNM"


def normalize_caption(text: str) -> str:
    """Normalize a caption for scoring (Karpathy / coco-caption style).

    Exactly, in this order:

    1. Unicode NFKC normalization (full-width letters, ligatures, "…" become
       their plain forms) and lower-casing (``str.lower``).
    2. Letters, digits and combining marks (Unicode categories L, N, M) are
       kept. ``'``, ``’`` (U+2019) and ``ʼ`` (U+02BC) become ``'`` and are kept
       only *inside* a word, i.e. with a letter/digit/mark on both sides
       ("man's", "don't"); a leading or trailing apostrophe (quotes such as
       ``'hello'``) is dropped.
    3. Every other character -- punctuation, symbols, underscores, any
       whitespace or control character -- becomes a space, so "t-shirt"
       becomes "t shirt" and "dog,cat" becomes "dog cat".
    4. Runs of spaces are collapsed to one; leading/trailing spaces removed.

    Example: ``"A man's T-shirt, (RED)!  "`` -> ``"a man's t shirt red"``.

    Args:
        text: a caption.

    Returns:
        The normalized caption: words separated by single spaces ("" if the
        caption has no letter or digit).
    """
    chars = [
        "'" if ch in _APOSTROPHES else ch if _is_word_char(ch) else " "
        for ch in unicodedata.normalize("NFKC", text).lower()
    ]
    last = len(chars) - 1
    for i, ch in enumerate(chars):
        if ch == "'" and not (
            0 < i < last and _is_word_char(chars[i - 1]) and _is_word_char(chars[i + 1])
        ):
            chars[i] = " "
    return " ".join("".join(chars).split())


def _cider_d(hypotheses: list[str], references: list[list[str]]) -> float | None:
    """CIDEr-D with pycocoevalcap's ``Cider`` (n=4, sigma=6); None if not installed."""
    try:
        from pycocoevalcap.cider.cider import Cider
    except ImportError:
        log.warning(
            "pycocoevalcap is not installed: CIDEr-D is left out (pip install -r requirements.txt)"
        )
        return None
    gts = {i: refs for i, refs in enumerate(references)}
    res = {i: [hyp] for i, hyp in enumerate(hypotheses)}
    score, _ = Cider().compute_score(gts, res)
    return float(score)


def caption_scores(
    hypotheses: list[str], references: list[list[str]], *, cider: bool = True
) -> dict:
    """Corpus BLEU-1..4 and CIDEr-D of generated captions against several references each.

    Every hypothesis and reference is first passed through
    :func:`normalize_caption` (lower-case, no punctuation, single spaces).
    References that are ``None`` or normalize to "" (blank cells of a CSV) are
    dropped; each image must keep at least one.

    **BLEU** (Papineni et al. 2002) is sacreBLEU's corpus BLEU,
    ``sacrebleu.metrics.BLEU(max_ngram_order=n, tokenize="none")`` for n = 1..4:
    the geometric mean of the clipped 1..n-gram precisions pooled over the
    corpus (each n-gram clipped to its largest count in any one reference of
    its image), times the brevity penalty computed from the reference length
    closest to each hypothesis' length. ``tokenize="none"`` because the text is
    already normalized and tokenized (split on spaces); sacreBLEU's default
    ``exp`` smoothing applies only when some n-gram order has no match in the
    whole corpus. The number of references may differ between images: the
    reference streams are padded with ``None``, which sacreBLEU ignores
    (``Metric._cache_references`` drops None; its signature then reads
    ``nrefs:var``). An empty string would not be ignored -- it would count as
    a reference of length 0 in the brevity penalty -- hence ``None``.

    **CIDEr-D** (Vedantam et al. 2015, sections 3-4) is coco-caption's "CIDEr"
    as packaged by ``pycocoevalcap`` (``pycocoevalcap.cider.cider.Cider``): TF-IDF
    weighted 1..4-gram cosine similarity with each reference, with the
    hypothesis' n-gram counts clipped to the reference's, a Gaussian length
    penalty (sigma = 6), averaged over n-gram orders and references, times 10;
    the corpus score is the mean over images. It is on coco's 0..10 scale
    (typically 0.4-0.6 for Flickr8k models; strong COCO models exceed 1). The IDF is
    computed from the references of *these* images, so scores depend on the
    evaluation set and a single image always scores 0 (every n-gram then has
    IDF log(1/1) = 0). coco-caption runs Stanford's PTB tokenizer (Java) first;
    here the normalized, space-separated captions are given directly, so no
    Java is needed.

    Args:
        hypotheses: one generated caption per image.
        references: ``references[i]`` lists the reference captions of image
            ``i`` (any number >= 1, may differ between images).
        cider: also compute CIDEr-D (needs ``pycocoevalcap``, pinned in
            requirements.txt; if it is not importable a warning is logged and
            ``"cider_d"`` is left out).

    Returns:
        ``{"bleu_1", "bleu_2", "bleu_3", "bleu_4"}`` (0-100 floats, unrounded),
        ``"bleu_signature"`` (sacreBLEU's signature of the BLEU-4 computation),
        ``"images"`` (int), ``"references_per_image"`` (``[min, max]`` after
        dropping blank references) and, when computed, ``"cider_d"`` (float,
        0-10 scale).

    Raises:
        ValueError: if there are no hypotheses, if ``hypotheses`` and
            ``references`` differ in length, or if an image has no (non-blank)
            reference.
        TypeError: if a hypothesis is not a string or ``references[i]`` is not
            a list/tuple of strings (e.g. a bare string).
    """
    from sacrebleu.metrics import BLEU

    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} reference lists: "
            "references[i] must hold the reference captions of hypothesis i"
        )
    if not hypotheses:
        raise ValueError("no hypotheses to score")
    hyps: list[str] = []
    refs: list[list[str]] = []
    for i, (hyp, item_refs) in enumerate(zip(hypotheses, references)):
        if not isinstance(hyp, str):
            raise TypeError(f"hypothesis {i} is {type(hyp).__name__}, not a string")
        if isinstance(item_refs, str) or not isinstance(item_refs, Sequence):
            raise TypeError(
                f"references[{i}] must be a list of reference captions, "
                f"got {type(item_refs).__name__}"
            )
        kept = []
        for j, ref in enumerate(item_refs):
            if ref is None:
                continue
            if not isinstance(ref, str):
                raise TypeError(f"references[{i}][{j}] is {type(ref).__name__}, not a string")
            ref = normalize_caption(ref)
            if ref:
                kept.append(ref)
        if not kept:
            raise ValueError(
                f"image {i} has no reference caption"
                + (" (all of its references are blank after normalization)" if item_refs else "")
            )
        hyps.append(normalize_caption(hyp))
        refs.append(kept)

    counts = [len(r) for r in refs]
    streams = [[item[k] if k < len(item) else None for item in refs] for k in range(max(counts))]
    result: dict = {}
    for n in range(1, 5):
        bleu = BLEU(max_ngram_order=n, tokenize="none")
        result[f"bleu_{n}"] = float(bleu.corpus_score(hyps, streams).score)
    result["bleu_signature"] = str(bleu.get_signature())
    result["images"] = len(hyps)
    result["references_per_image"] = [min(counts), max(counts)]
    if cider:
        score = _cider_d(hyps, refs)
        if score is not None:
            result["cider_d"] = score
    return result

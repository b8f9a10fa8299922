"""Captioning metrics: normalization, multi-reference BLEU-1..4 and CIDEr-D on hand-made cases."""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest
from sacrebleu.metrics import BLEU

from seqtasks.caption_metrics import caption_scores, normalize_caption

needs_pycocoevalcap = pytest.mark.skipif(
    importlib.util.find_spec("pycocoevalcap") is None,
    reason="pycocoevalcap (requirements.txt) is not installed",
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A man's T-shirt, (RED)!  ", "a man's t shirt red"),
        ("A dog runs on the grass .", "a dog runs on the grass"),
        ("  'Hello'   World\t\nagain ", "hello world again"),
        ("Don\u2019t stop", "don't stop"),
        ("rock \u2019n\u2019 roll", "rock n roll"),
        ("two_dogs & 3 cats", "two dogs 3 cats"),
        ("Caf\u00e9 \uff21\uff22", "caf\u00e9 ab"),  # NFKC: full-width letters
        ("dogs' toys", "dogs toys"),
        ("... !!", ""),
        ("", ""),
    ],
)
def test_normalize_caption(raw, expected):
    assert normalize_caption(raw) == expected


def test_identical_hypothesis_scores_100_for_every_order():
    refs = [["A dog runs on the grass.", "A brown dog is running outside."]]
    scores = caption_scores(["a dog runs on the grass"], refs, cider=False)
    for n in range(1, 5):
        assert scores[f"bleu_{n}"] == pytest.approx(100.0)
    assert "cider_d" not in scores
    assert scores["images"] == 1
    assert scores["references_per_image"] == [2, 2]
    assert scores["bleu_signature"].startswith("nrefs:2|")
    assert "tok:none" in scores["bleu_signature"]


def test_normalization_applies_to_hypotheses_and_references():
    scores = caption_scores(["A DOG, running -- on the GRASS!"], [["a dog running on the grass"]])
    assert scores["bleu_4"] == pytest.approx(100.0)


def test_partial_match_by_hand():
    # hyp: a dog runs on the grass / ref: a dog runs in the park (both 6 words, BP = 1)
    # matches: 1-grams 4/6, 2-grams 2/5, 3-grams 1/4, 4-grams 0/3
    scores = caption_scores(["a dog runs on the grass"], [["A dog runs in the park."]], cider=False)
    assert scores["bleu_1"] == pytest.approx(100 * 4 / 6)
    assert scores["bleu_2"] == pytest.approx(100 * math.sqrt(4 / 6 * 2 / 5))
    assert scores["bleu_3"] == pytest.approx(100 * (4 / 6 * 2 / 5 * 1 / 4) ** (1 / 3))
    # no 4-gram matches: sacreBLEU's default "exp" smoothing uses 1 / (2 * 3) for p4
    assert scores["bleu_4"] == pytest.approx(100 * (4 / 6 * 2 / 5 * 1 / 4 * 1 / 6) ** (1 / 4))
    # the same as sacreBLEU called directly on the normalized text
    direct = BLEU(tokenize="none").corpus_score(
        ["a dog runs on the grass"], [["a dog runs in the park"]]
    )
    assert scores["bleu_4"] == pytest.approx(direct.score)


def test_brevity_penalty_uses_closest_reference_length():
    hyp = ["a dog runs"]
    one = caption_scores(hyp, [["a dog runs in the park"]], cider=False)
    assert one["bleu_1"] == pytest.approx(100 * math.exp(1 - 6 / 3))
    two = caption_scores(hyp, [["a dog runs in the park", "the dog runs"]], cider=False)
    # every word is in some reference and the closest reference length is 3: BP 1
    assert two["bleu_1"] == pytest.approx(100.0)


def test_matching_any_one_of_several_references_scores_100():
    refs = [
        ["a cat sleeps on a sofa", "two men ride bicycles down a hill", "a bird sits on a wire"],
        ["a boy kicks a red ball", "children play football in a park", "a kid plays soccer"],
    ]
    scores = caption_scores(
        ["Two men ride bicycles down a hill.", "children play football in a park"],
        refs,
        cider=False,
    )
    for n in range(1, 5):
        assert scores[f"bleu_{n}"] == pytest.approx(100.0)


def test_variable_reference_counts():
    hyps = ["a dog runs on the grass", "two men ride bikes", "a girl in a red coat"]
    refs = [
        ["a dog runs in the park", "a brown dog is running", "the dog plays", "a dog on grass"],
        ["two men riding bicycles"],
        ["a girl wearing a red coat", "a child in red"],
    ]
    scores = caption_scores(hyps, refs, cider=False)
    assert scores["references_per_image"] == [1, 4]
    assert scores["bleu_signature"].startswith("nrefs:var|")
    # Repeating a reference changes nothing in BLEU, so padding every item to 4
    # references with copies of its last one must give the same scores.
    padded = [r + [r[-1]] * (4 - len(r)) for r in refs]
    same = caption_scores(hyps, padded, cider=False)
    assert same["bleu_signature"].startswith("nrefs:4|")
    for n in range(1, 5):
        assert scores[f"bleu_{n}"] == pytest.approx(same[f"bleu_{n}"])
    assert 0 < scores["bleu_4"] < 100


def test_blank_references_are_dropped_not_counted_as_length_zero():
    # With "" kept as a reference of length 0 sacreBLEU would pick it (tie on
    # distance 2, shorter wins) and apply no brevity penalty.
    scores = caption_scores(["x y"], [["x y z w", "", None, " ?! "]], cider=False)
    assert scores["references_per_image"] == [1, 1]
    assert scores["bleu_1"] == pytest.approx(100 * math.exp(1 - 4 / 2))


@pytest.mark.parametrize(
    ("hyps", "refs", "message"),
    [
        (["a dog"], [["a dog"], ["a cat"]], "1 hypotheses but 2 reference lists"),
        (["a dog", "a cat"], [["a dog"]], "2 hypotheses but 1 reference lists"),
        ([], [], "no hypotheses"),
        (["a dog", "a cat"], [["a dog"], []], "image 1 has no reference"),
        (["a dog"], [["", "..."]], "blank after normalization"),
    ],
)
def test_value_errors(hyps, refs, message):
    with pytest.raises(ValueError, match=message):
        caption_scores(hyps, refs)


def test_type_errors():
    with pytest.raises(TypeError, match="list of reference captions"):
        caption_scores(["a dog"], ["a dog runs"])
    with pytest.raises(TypeError, match="hypothesis 0"):
        caption_scores([None], [["a dog"]])


CIDER_REFS = [
    ["a dog runs on the grass", "a brown dog running in a field"],
    ["two men ride bicycles down a hill", "cyclists racing down a road"],
    ["a girl in a red coat stands in the snow", "a child wearing red in the snow"],
    ["a man surfs a big wave", "a surfer rides a wave in the ocean"],
]


@needs_pycocoevalcap
def test_cider_d_of_exact_single_references_is_10():
    # One reference per image, equal to the hypothesis: every n-gram cosine is
    # 1 and the length penalty is 1, so each image scores 10 (coco's x10 scale).
    hyps = [refs[0] for refs in CIDER_REFS]
    scores = caption_scores(hyps, [[h] for h in hyps])
    assert scores["cider_d"] == pytest.approx(10.0)


@needs_pycocoevalcap
def test_cider_d_orders_hypothesis_sets():
    exact = [refs[0] for refs in CIDER_REFS]
    close = ["a dog runs in a field", "two men ride down a road", "a girl in red", "a man surfs"]
    wrong = ["a man surfs", "a girl in red", "a dog runs", "two men ride bicycles"]
    s_exact = caption_scores(exact, CIDER_REFS)["cider_d"]
    s_close = caption_scores(close, CIDER_REFS)["cider_d"]
    s_wrong = caption_scores(wrong, CIDER_REFS)["cider_d"]
    assert s_exact > s_close > s_wrong >= 0
    assert 0 < s_exact <= 10
    # normalization happens before CIDEr-D too
    shouted = [h.upper() + " !" for h in exact]
    assert caption_scores(shouted, CIDER_REFS)["cider_d"] == pytest.approx(s_exact)


@needs_pycocoevalcap
def test_cider_d_of_a_single_image_is_zero():
    # CIDEr-D's IDF comes from the evaluation set: with one image every IDF is log(1) = 0.
    assert caption_scores(["a dog runs"], [["a dog runs"]])["cider_d"] == 0.0


def test_cider_d_left_out_when_pycocoevalcap_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocoevalcap.cider.cider", None)
    scores = caption_scores(["a dog runs"], [["a dog runs"]])
    assert "cider_d" not in scores
    assert scores["bleu_1"] == pytest.approx(100.0)

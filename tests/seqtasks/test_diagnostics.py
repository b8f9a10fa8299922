"""seqtasks.diagnostics: each sign of an undertrained model gives one warning line; a
healthy model gives none."""

import logging

from seqtasks.diagnostics import (
    ADVICE,
    empty_outputs,
    low_bleu,
    one_class,
    undertrained_warning,
    warn_if_undertrained,
)


def test_one_class_for_every_example():
    assert (
        one_class(["pos"] * 872, ["pos", "neg"] * 436) == "it predicts 'pos' for all 872 examples"
    )
    assert one_class([1] * 20) == "it predicts '1' for all 20 examples"
    assert (
        one_class([()] * 12, [("a",), ("b",)] * 6) == "it predicts 'no label' for all 12 examples"
    )
    assert one_class([("a", "b")] * 12) == "it predicts 'a, b' for all 12 examples"
    # Healthy, too few to tell, or a one-class dataset: nothing.
    assert one_class(["pos", "neg"] * 10) is None
    assert one_class(["pos"] * 9) is None
    assert one_class(["pos"] * 30, ["pos"] * 30) is None


def test_empty_generations_for_most_inputs():
    assert empty_outputs(["", " ", "ein Mann"]) == "2 of 3 outputs are empty"
    assert empty_outputs(["", "a", "b", ""]) is None  # half is not most
    # Empty inputs have empty outputs by design: they are not counted.
    assert empty_outputs(["", "", "Hund"], ["", " ", "dog"]) is None
    assert empty_outputs(["", "", "Hund"], ["a", "b", "dog"]) == "2 of 3 outputs are empty"
    assert empty_outputs([]) is None


def test_low_bleu():
    assert low_bleu(0.0) == "BLEU 0.00 is below 1"
    assert low_bleu(0.42, "BLEU-4") == "BLEU-4 0.42 is below 1"
    assert low_bleu(1.0) is None and low_bleu(27.3) is None and low_bleu(None) is None


def test_one_line_with_advice(caplog):
    assert undertrained_warning(None, None) is None
    line = undertrained_warning("50 of 50 outputs are empty", None, "BLEU 0.00 is below 1")
    assert line == (
        "the model looks undertrained: 50 of 50 outputs are empty; BLEU 0.00 is below 1; " + ADVICE
    )
    assert "\n" not in line and "--epochs" in line and "--max-examples" in line
    logger = logging.getLogger("tests.diagnostics")
    with caplog.at_level(logging.WARNING, logger="tests.diagnostics"):
        assert warn_if_undertrained(logger, low_bleu(30.0), one_class(["a", "b"] * 10)) is None
        assert caplog.records == []
        warn_if_undertrained(logger, one_class(["neg"] * 50, ["pos", "neg"] * 25))
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert (
        caplog.records[0]
        .getMessage()
        .startswith("the model looks undertrained: it predicts 'neg' for all 50 examples; train on")
    )

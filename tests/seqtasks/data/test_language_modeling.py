"""Stream and document windows for language models: every target once, shifted by one,
no validation window overlapping training text."""

import numpy as np
import pytest

from seqtasks.data.language_modeling import document_windows, stream_split, stream_windows
from seqtasks.tokens import END_ID, PAD_ID, START_ID


def test_stream_windows_shift_targets_by_one_and_drop_the_short_tail():
    stream = np.arange(10, 33)  # 23 tokens
    inputs, targets = stream_windows(stream, 5)
    assert inputs.shape == targets.shape == (4, 5) and inputs.dtype == np.int32
    assert targets.ravel().tolist() == list(range(10, 30))  # non-overlapping, each once
    assert inputs[:, 0].tolist() == [START_ID] * 4  # every window reads from [START]
    assert inputs[:, 1:].tolist() == targets[:, :-1].tolist()  # shifted by one
    assert stream_windows(np.arange(5), 5)[1].tolist() == [[0, 1, 2, 3, 4]]
    with pytest.raises(ValueError, match="shorter than one window"):
        stream_windows(np.arange(4), 5)
    padded_x, padded_y = stream_windows(stream, 5, pad_last=True)  # validation: all 23 scored
    assert padded_y.shape == (5, 5) and padded_y[4].tolist() == [30, 31, 32, PAD_ID, PAD_ID]
    assert padded_x[4].tolist() == [START_ID, 30, 31, 32, PAD_ID]


def test_the_validation_tail_shares_no_window_with_training():
    stream = np.arange(1000)
    train, validation = stream_split(stream, 0.1)
    assert len(validation) == 100 and train[-1] + 1 == validation[0]
    train_x, train_y = stream_windows(train, 16)
    val_x, val_y = stream_windows(validation, 16)
    assert set(train_x[:, 1:].ravel()) | set(train_y.ravel()) <= set(range(900))
    assert set(val_x[:, 1:].ravel()) | set(val_y.ravel()) <= set(range(900, 1000))
    assert stream_split(stream, 0.0)[1].size == 0
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        stream_split(stream, 1.0)


def test_documents_are_wrapped_and_every_target_appears_once():
    documents = [[7, 8, 9, 10, 11], [12], []]
    inputs, targets = document_windows(documents, 3)
    assert inputs.tolist() == [
        [START_ID, 7, 8],
        [9, 10, 11],
        [START_ID, 12, PAD_ID],
        [START_ID, PAD_ID, PAD_ID],
    ]
    assert targets.tolist() == [
        [7, 8, 9],
        [10, 11, END_ID],
        [12, END_ID, PAD_ID],
        [END_ID, PAD_ID, PAD_ID],
    ]
    real = targets[targets != PAD_ID].tolist()
    assert real == [7, 8, 9, 10, 11, END_ID, 12, END_ID, END_ID]  # n + 1 targets each
    empty_x, empty_y = document_windows([], 4)
    assert empty_x.shape == empty_y.shape == (0, 4)

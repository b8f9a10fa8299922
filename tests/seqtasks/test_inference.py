import numpy as np
import tensorflow as tf

from seqtasks.inference import call_in_batches


def test_call_in_batches_sorts_by_length_and_keeps_input_order():
    texts = ["ccc", "a", "eeeee", "", "bb", "dddd", "ff", "g"]
    calls = []

    def fn(text):
        calls.append([t.decode() for t in text.numpy()])
        padded = tf.reduce_max(tf.strings.length(text)) * tf.ones_like(text, tf.int32)
        return {"echo": text, "length": tf.strings.length(text), "padded": padded}

    out = call_in_batches(fn, "text", texts, batch_size=3, sort_key=len)
    assert calls == [["", "a", "g"], ["bb", "ff", "ccc"], ["dddd", "eeeee"]]
    assert [t.decode() for t in out["echo"]] == texts
    np.testing.assert_array_equal(out["length"], [3, 1, 5, 0, 2, 4, 2, 1])
    assert out["padded"].sum() == 1 * 3 + 3 * 3 + 5 * 2  # 22 steps; 31 in input order
    calls.clear()
    unsorted = call_in_batches(fn, "text", texts, batch_size=3)
    assert calls[0] == ["ccc", "a", "eeeee"] and unsorted["padded"].sum() == 31
    np.testing.assert_array_equal(unsorted["length"], out["length"])
    features = np.arange(12, dtype=np.float32).reshape(4, 3)  # arrays batch the same way
    doubled = call_in_batches(
        lambda x: {"y": x * 2}, "x", features, batch_size=3, sort_key=lambda row: -row[0]
    )
    np.testing.assert_array_equal(doubled["y"], features * 2)

#!/usr/bin/env python
"""Benchmark helper: score a captioning export on a Flickr8k split with another decoding.

Loads the export's Keras models and vocabulary (``assets.extra``) into the same
:class:`~seqtasks.generation.Generator` its serving signature was traced from (the
recipe's tests check that the two give the same captions), overrides the stored
decoding with ``--set key=value`` (``beam_size``, ``length_penalty``,
``no_repeat_ngram_size``), captions every image of ``--split`` and prints corpus
BLEU-1..4 and CIDEr-D against all references (as ``cli.py evaluate`` does):

    KERAS_HOME=../shared/keras_home python bench/redecode_captions.py EXPORT_VERSION_DIR \\
        --split dev --set length_penalty=0.6 --output result.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "flickr8k")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="an export version folder (…/captioning/N)")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--set", action="append", default=[], help="decoding KEY=VALUE")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    from seqtasks.caption_metrics import caption_scores
    from seqtasks.config import parse_assignments
    from seqtasks.data.captions import load_captions
    from seqtasks.export import read_metadata
    from tasks.captioning.serving import load_generator

    metadata = read_metadata(args.export)
    stored = metadata["decoding"]
    overrides = parse_assignments(args.set)
    unknown = sorted(set(overrides) - set(stored))
    if unknown:
        parser.error(f"not a decoding field: {', '.join(unknown)}; expected one of {sorted(stored)}")
    # Typed like the stored values (the assignments are strings).
    decoding = {**stored, **{k: type(stored[k])(v) for k, v in overrides.items()}}
    generator = load_generator(args.export, {**metadata, "decoding": decoding})
    refs = load_captions(DATA, split=args.split)
    captions, _ = generator.generate_all(refs.images.read_many(refs.ids), batch_size=32)
    report = caption_scores(captions, refs.captions)
    result = {
        "command": "python " + " ".join(sys.argv),
        "export": os.path.abspath(args.export),
        "split": args.split,
        "decoding": decoding,
        **{k: report[k] for k in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "cider_d")},
        "bleu_signature": report["bleu_signature"],
    }
    print(json.dumps(result, indent=2))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

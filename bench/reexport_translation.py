#!/usr/bin/env python
"""Re-export a translation export's weights with this checkout's decoding code (issue 20).

Loads the export's Keras model and vocabularies (``assets.extra``) with this checkout's
:func:`tasks.translation.serving.load_translator` and writes its ``serving_default``
(tokenize, decode as the export's metadata says, detokenize) as a new SavedModel, plus a
copy of ``assets.extra`` (metadata, Keras model, vocabularies), so ``bench/decoding_speed.py`` can time the same weights under
an older commit's export and this code's:

    python bench/reexport_translation.py /tmp/i20/export-head/1 /tmp/i20/export-reexport/1

Only ``serving_default`` is written (no ``score`` signature): this is a benchmark tool,
not a way to publish models. The output folder must not exist.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version_dir", help="an export's version folder (e.g. export/1)")
    parser.add_argument("output", help="the new version folder (must not exist)")
    args = parser.parse_args()
    if os.path.exists(args.output):
        sys.exit(f"error: {args.output} exists; choose a new folder")

    from seqtasks.export import read_metadata, save_serving_archive
    from tasks.translation.serving import load_translator

    generator = load_translator(args.version_dir, read_metadata(args.version_dir))
    tmp = args.output.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_serving_archive(tmp, [generator], generator.serving_function, [generator.spec()])
    shutil.copytree(
        os.path.join(args.version_dir, "assets.extra"), os.path.join(tmp, "assets.extra")
    )
    os.replace(tmp, args.output)
    print("wrote", args.output)


if __name__ == "__main__":
    main()

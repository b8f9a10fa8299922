"""Keep TensorFlow's native (C++/absl) log lines off the terminal.

TensorFlow 2.21 prints lines such as ``I0000 00:00:... port.cc:153] oneDNN
custom operations are on`` to file descriptor 2 before its logging is
configured, and ``TF_CPP_MIN_LOG_LEVEL`` does not silence them. For the CLI,
where an error must be exactly one line on stderr, :func:`filter_native_logs`
routes fd 2 through a pipe and drops lines in absl's format; every other line
(Python logging, warnings, error messages) passes through unchanged and in
order. Set ``SEQTASKS_NATIVE_LOGS=1`` to see everything.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# "I0000 00:00:1795219335.281573    9023 port.cc:153] ..." and absl's pre-init notice.
_ABSL_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} [\d:.]+ +\d+ [\w.\-]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)"
)


def filter_native_logs() -> None:
    """Drop absl-format lines written to fd 2 for the rest of the process.

    Call once, early, in a command-line entry point (not in library code or
    tests). A no-op when ``SEQTASKS_NATIVE_LOGS`` is set or fd 2 is unusable.
    """
    if os.environ.get("SEQTASKS_NATIVE_LOGS"):
        return
    try:
        real_stderr = os.dup(2)
    except OSError:
        return
    read_end, write_end = os.pipe()
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as source:
            for line in source:
                if not _ABSL_LINE.match(line):
                    os.write(real_stderr, line)

    thread = threading.Thread(target=pump, name="native-log-filter", daemon=True)
    thread.start()

    def restore() -> None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(real_stderr, 2)  # closes the pipe's last write end: the pump sees EOF
        thread.join(timeout=5)
        os.close(real_stderr)

    atexit.register(restore)

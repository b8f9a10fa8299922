"""The click commands of ``cli.py``, one module per command (or pair of related commands).

``cli.py`` only assembles them into the ``cli`` group and turns click's own errors into
one ``error:`` line; every command turns a :class:`~seqtasks.errors.UserError` into one
line on stderr and exit status 2.
"""

"""seqtasks: sequence-model recipes that train, export and serve with one command."""

__version__ = "0.1.0"

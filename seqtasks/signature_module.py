"""A ``tf.Module`` whose SavedModel keeps its weights and tables but not its functions.

Every export of seqtasks is served through its signatures
(``loaded.signatures["serving_default"]``, ``"score"``, ``"generate"``), and the
graphs behind them are already traced when the export is written: evaluation ran
them. Two walks over a module's children would trace its ``tf.function`` attributes
again:

- Keras's ``ExportArchive.write_out`` lists every tracked object's functions while it
  looks for lookup tables; for a function without an input signature this re-creates
  each concrete function it has (a tokenizer's, traced inside a ``tf.data`` map or
  inside the serving graph) in the current context, which traces it again;
- ``tf.saved_model.save`` on the module itself saves each function as a restorable
  one, in its own save context; the trace cache key of a ``tf.function`` includes
  the save's variable policy, so that traces the Python body again.

:class:`SignatureModule` leaves those attributes out of both walks (the way Keras leaves
out a model's ``train_function``): variables, lookup tables and assets are found as
before, and every function a signature calls is in the signature's graph. What is lost
is only ``loaded.<module>.<function>(...)`` on a reloaded SavedModel, which nothing uses.
"""

from __future__ import annotations

import tensorflow as tf


class SignatureModule(tf.Module):
    """``tf.Module`` whose ``tf.function`` attributes are not saved in a SavedModel.

    Instance attributes (``self.f = tf.function(...)``) and methods decorated with
    ``@tf.function`` are both hidden while a SavedModel walk (Keras's search for lookup
    tables, ``tf.saved_model.save``) lists the module's children, so neither traces them
    again; checkpoints are unchanged.
    """

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        if save_type != "savedmodel":
            return super()._trackable_children(save_type, **kwargs)
        state = self.__dict__
        names = {name for name in state if _is_function(state[name])}
        names |= {name for name in dir(type(self)) if _is_function(getattr(type(self), name, None))}
        saved = {name: state[name] for name in names if name in state}
        # AutoTrackable finds functions with dir() and getattr(): shadow each name with
        # None in the instance (a tf.function method is a non-data descriptor).
        for name in names:
            state[name] = None
        try:
            return super()._trackable_children(save_type, **kwargs)
        finally:
            for name in names:
                del state[name]
            state.update(saved)


def _is_function(value) -> bool:
    return isinstance(value, tf.types.experimental.GenericFunction)

"""A ``tf.Module`` whose SavedModel keeps its weights and tables but not its functions.

Every export of seqtasks is served through its signatures
(``loaded.signatures["serving_default"]``, ``"score"``, ``"generate"``), and the
graphs behind them are already traced when the export is written: evaluation ran
them. ``tf.saved_model.save`` would also save each ``tf.function`` attribute of
every tracked object as a restorable function; to do so it calls the function
again inside its own save context. The trace cache key of a ``tf.function``
includes the save's variable policy, so that call traces the Python body again —
for a beam-search decoder, seconds per export, the costliest part of writing it.

:class:`SignatureModule` leaves those attributes out of the SavedModel's object
graph (the way Keras leaves out a model's ``train_function``): variables, lookup
tables and assets are saved as before, and so is every function a signature
calls (a signature's graph holds the functions it calls). What is lost is only
``loaded.<module>.<function>(...)`` on a reloaded export, which nothing uses.
"""

from __future__ import annotations

import tensorflow as tf


class SignatureModule(tf.Module):
    """``tf.Module`` whose ``tf.function`` attributes are not saved in a SavedModel.

    Instance attributes (``self.f = tf.function(...)``) and methods decorated with
    ``@tf.function`` are both hidden while ``tf.saved_model.save`` lists the
    module's children, so it never traces them again; checkpoints are unchanged.
    """

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        if save_type != "savedmodel":
            return super()._trackable_children(save_type, **kwargs)
        state = self.__dict__
        saved = {name: state[name] for name in list(state) if _is_function(state[name])}
        shadowed = [
            name
            for name in dir(type(self))
            if name not in state and _is_function(getattr(type(self), name, None))
        ]
        # AutoTrackable finds functions with dir() and getattr(): drop the instance's
        # and shadow the class's (a tf.function method is a non-data descriptor).
        for name in saved:
            del state[name]
        for name in shadowed:
            state[name] = None
        try:
            return super()._trackable_children(save_type, **kwargs)
        finally:
            for name in shadowed:
                del state[name]
            state.update(saved)


def _is_function(value) -> bool:
    return isinstance(value, tf.types.experimental.GenericFunction)

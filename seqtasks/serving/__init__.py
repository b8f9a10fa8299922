"""``cli.py serve``: TensorFlow Serving's REST API for the exports under a folder.

``app`` (routes), ``models`` (registry, loading, polling), ``batching`` (server-side
batches), ``codec`` (the JSON request and response formats).
"""

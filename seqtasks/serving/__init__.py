"""``cli.py serve``: TensorFlow Serving's REST API for the exports under a folder.

``app`` (binding and running the server), ``routes`` (the app), ``api`` (request and
response models, error answers), ``docs`` (/docs and /redoc without a CDN), ``models``
(registry, loading, polling), ``batching`` (server-side batches), ``codec`` (the JSON
request and response formats).
"""

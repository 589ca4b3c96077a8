"""A local Clarifai-compatible v2 REST API (stdlib WSGI + SQLite), with fault injection."""

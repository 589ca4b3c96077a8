"""Parity with the real Clarifai API: a corpus of published real response bodies (see corpus.py)."""

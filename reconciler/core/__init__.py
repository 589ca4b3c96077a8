"""core: the vocabulary every other package speaks.

Owns the `State` types (one type for desired and live state), resource kinds and the ownership
marker, the error hierarchy, Clarifai's status codes, model types (which config a type takes,
which types train), the id rules, the exit codes, and the one atomic file writer. Imports nothing else of
reconciler: every other package may import it.
"""

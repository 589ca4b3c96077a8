"""api: everything that talks to the Clarifai v2 REST API.

Owns the httpx client (transport, retries, the rate limit, paging, error interpretation, PAT
masking), the per-kind codecs between `State` and JSON bodies, the live read of an app into a
`State`, and training-status knowledge. The only package that imports httpx. May import `core`
only (opening the embedded sandbox belongs to `commands`, which chooses the endpoint).
"""

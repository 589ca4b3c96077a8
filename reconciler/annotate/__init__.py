"""annotate: the auto-annotation analytics.

Owns the operator models' semantics (concept mapper, thresholders, annotation writers) run over
recorded predictions, `simulate`, `record` (predictions and labels files), `tune` and its
statistics, writing tuned thresholds back into a manifest, and the SVG charts. May import
`planning`, `api`, `manifest` and `core`; never `apply`.
"""

#!/usr/bin/env bash
# Install clarifai-reconciler on a runner: RECONCILER_SPEC (default: the git repository, pinned
# to a tag; it is not on PyPI). A job runs this before the step scripts.
set -euo pipefail
python3 -m pip install --quiet "${RECONCILER_SPEC:-clarifai-reconciler @ git+https://github.com/OWNER/clarifai-reconciler@v0.1.0}"

#!/usr/bin/env bash
# Nightly: has anyone changed the project's apps outside git?
#   drift.sh -> exit 0 clean, 2 drift (the report names every difference), 1 error
source "$(dirname "$0")/lib.sh"

reconciler drift "$@"

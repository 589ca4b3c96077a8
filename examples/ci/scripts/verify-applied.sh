#!/usr/bin/env bash
# After an apply-before-merge: the merged main must be exactly what is live.
#   BASE=<main before the merge> verify-applied.sh -> exit 0 when the apps it changed plan empty
source "$(dirname "$0")/lib.sh"

since=()
if [ -n "${BASE:-}" ] && [ -n "${BASE//0/}" ]; then
  since=(--changed-since "$BASE")
fi
set +e
reconciler plan --detailed-exitcode "${since[@]}"
code=$?
set -e
if [ "$code" = 2 ]; then
  die "main differs from the live apps after the apply-before-merge (someone changed the app, or the pull request was merged without its apply): plan and apply again"
fi
exit "$code"

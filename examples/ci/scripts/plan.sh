#!/usr/bin/env bash
# Pull / merge request: validate the project, plan the apps it changes and save them as a plan set.
#
#   BASE=origin/main plan.sh     -> $PLANS/ (one saved plan per app + index.json) and plan.md
#
# BASE: the target branch. Only the apps whose manifest, overlays or var files changed since the
# merge base of BASE and HEAD are planned (all of them when reconciler.yaml changed; all when
# BASE is empty). The merge base works with squash merges and needs the history: check out with
# fetch-depth 0. plan.md is one Markdown comment for the whole project, under the comment limit.
# Exit 0 when the plans were made (with or without changes), 1 when anything failed.
source "$(dirname "$0")/lib.sh"

since=()
if [ -n "${BASE:-}" ]; then
  # a merge request pipeline may not have fetched the target branch: fetch it (full history)
  if ! git rev-parse --verify --quiet "$BASE^{commit}" > /dev/null && [ "${BASE#origin/}" != "$BASE" ]; then
    git fetch --quiet origin "${BASE#origin/}:refs/remotes/$BASE"
  fi
  since=(--changed-since "$BASE")
fi

reconciler validate "${since[@]}"
set +e
reconciler plan --out "$PLANS" --markdown --detailed-exitcode "${since[@]}" > plan.md
code=$?
set -e
case $code in
  0) echo "plan: no changes" >&2 ;;
  2) echo "plan: changes to review (plan.md)" >&2 ;;
  *) echo "plan: failed (exit $code)" >&2; exit 1 ;;
esac

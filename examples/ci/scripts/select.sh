#!/usr/bin/env bash
# Which apps a job matrix runs, as a JSON list of {name, environment}:
#
#   select.sh                    -> the apps of the plan set in $PLANS that have changes
#   BASE=<ref> select.sh         -> (no plan set) the apps changed since BASE's merge base;
#                                   every app when BASE is empty or all zeros (a new branch)
#
# Printed on stdout; with GitHub Actions also `matrix=<json>` and `any=true|false` step outputs.
source "$(dirname "$0")/lib.sh"

if [ -f "$PLANS/index.json" ]; then
  apps=$(json '[{"name": a["name"], "environment": a["environment"]} for a in d["apps"] if not a["empty"]]' < "$PLANS/index.json")
else
  since=()
  if [ -n "${BASE:-}" ] && [ -n "${BASE//0/}" ]; then
    since=(--changed-since "$BASE")
  fi
  apps=$(reconciler show --json "${since[@]}" | json '[{"name": a["name"], "environment": a["environment"]} for a in d]')
fi
echo "$apps"
output matrix "$apps"
if [ "$apps" = "[]" ]; then output any false; else output any true; fi

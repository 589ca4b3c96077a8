#!/usr/bin/env bash
# Apply one app's reviewed plan from the plan set in $PLANS.
#
#   apply.sh NAME                -> events-NAME.jsonl (apply --json), and the exit code:
#     0  applied, or nothing to apply
#     1  failed or refused: a stale plan (the app or its files changed since the review: re-run
#        the plan), a plan set older than MAX_PLAN_AGE (default 72h), an API error
#     3  applied, some actions deferred: a model cannot train yet (label its inputs, apply again)
#
# APPLY_ARGS: more `reconciler apply` flags (e.g. a lock timeout), word-split.
source "$(dirname "$0")/lib.sh"

app=${1:?usage: apply.sh APP_NAME}
events="events-$app.jsonl"
set +e
# shellcheck disable=SC2086  # APPLY_ARGS is a list of flags
reconciler apply "$PLANS" --app "$app" --max-plan-age "${MAX_PLAN_AGE:-72h}" --json ${APPLY_ARGS:-} > "$events"
code=$?
set -e
result=$(tail -n 1 "$events" | json 'd.get("result", "failed")' 2>/dev/null || echo failed)
case $result in
  stale_plan) note="the app or its files changed since the plan was reviewed: re-run the plan" ;;
  deferred) note="applied; some actions wait for a model to train: label its inputs, then apply again" ;;
  *) note="" ;;
esac
echo "apply $app: $result (exit $code)${note:+; $note}" >&2
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  echo "**$app**: $result${note:+ — $note}" >> "$GITHUB_STEP_SUMMARY"
fi
exit "$code"

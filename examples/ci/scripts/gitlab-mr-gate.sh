#!/usr/bin/env bash
# Apply before merge (Atlantis-style) on GitLab: may this merge request be applied now? Refused
# (exit 1, one line) unless it is approved, GitLab calls it mergeable, and this pipeline runs on
# its current head (the plan job of this pipeline made the plans applied next).
source "$(dirname "$0")/lib.sh"

mr="${CI_API_V4_URL:?}/projects/${CI_PROJECT_ID:?}/merge_requests/${CI_MERGE_REQUEST_IID:?}"
approved=$(api GET "$mr/approvals" | json 'str(bool(d.get("approved"))).lower()')
[ "$approved" = true ] || die "merge request !$CI_MERGE_REQUEST_IID is not approved: applying before merge needs its approvals"
info=$(api GET "$mr")
status=$(echo "$info" | json 'd.get("detailed_merge_status") or "unknown"')
[ "$status" = mergeable ] || die "merge request !$CI_MERGE_REQUEST_IID is not mergeable ($status)"
head=$(echo "$info" | json 'd["sha"]')
[ "$head" = "${CI_COMMIT_SHA:?}" ] || die "merge request !$CI_MERGE_REQUEST_IID moved to $head since this pipeline's plan ($CI_COMMIT_SHA): re-run the plan"
echo "merge request !$CI_MERGE_REQUEST_IID may be applied at $head" >&2

#!/usr/bin/env bash
# On the default branch: find the plan set reviewed on the merge request this commit merged, and
# download it to $PLANS.
#
# The merge request is found by the commit (GET /projects/:id/repository/commits/:sha/merge_requests),
# which works for merge commits, squash merges and fast-forwards and after the source branch is
# deleted; then its newest successful pipeline, and that pipeline's `plan` job artifacts. `apply
# DIR` checks every plan against the merged files (sha256 of each input).
source "$(dirname "$0")/lib.sh"

api_base="${CI_API_V4_URL:?}/projects/${CI_PROJECT_ID:?}"
sha=${CI_COMMIT_SHA:?}
job=${PLAN_JOB:-plan}

mrs=$(api GET "$api_base/repository/commits/$sha/merge_requests")
iid=$(echo "$mrs" | json 'next((str(m["iid"]) for m in d if m.get("state") == "merged"), "")')
[ -n "$iid" ] || die "commit $sha merged no merge request: there is no reviewed plan to apply (change the default branch only through merge requests)"
pipelines=$(api GET "$api_base/merge_requests/$iid/pipelines")
pipeline=$(echo "$pipelines" | json 'next((str(p["id"]) for p in d if p.get("status") == "success"), "")')
[ -n "$pipeline" ] || die "merge request !$iid has no successful pipeline: nothing reviewed to apply"
jobs=$(api GET "$api_base/pipelines/$pipeline/jobs?scope[]=success")
job_id=$(echo "$jobs" | json "next((str(j['id']) for j in d if j['name'] == '$job'), '')")
[ -n "$job_id" ] || die "pipeline $pipeline of !$iid has no successful '$job' job"
tmp=$(mktemp -d)
download "$api_base/jobs/$job_id/artifacts" "$tmp/artifacts.zip"
unzip_to "$tmp/artifacts.zip" "$tmp/out"
[ -f "$tmp/out/plans/index.json" ] || die "job $job_id of !$iid kept no plan set (plans/index.json): expired? re-run the plan"
rm -rf "$PLANS"
mkdir -p "$(dirname "$PLANS")"
mv "$tmp/out/plans" "$PLANS"
rm -rf "$tmp"
echo "reviewed plan: !$iid, pipeline $pipeline, job $job_id" >&2

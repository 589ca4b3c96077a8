#!/usr/bin/env bash
# On a push to main: find the plan set that was reviewed on the pull request this commit merged,
# and download it to $PLANS.
#
#   GITHUB_SHA=<merge commit> WORKFLOW=clarifai-reconciler.yml github-reviewed-plan.sh
#
# The pull request is found by the commit (GET /repos/{repo}/commits/{sha}/pulls), which works for
# merge, squash and rebase merges and after the branch is deleted; its head sha names the
# plan run (the latest successful pull_request run of WORKFLOW at that sha) and its artifact
# (clarifai-plans-<head sha>). No git object of the pull request is needed. `apply DIR` then checks
# every plan against the merged files (sha256 of each input), so what is applied is what was
# reviewed. Step outputs: pr, head_sha, run_id.
source "$(dirname "$0")/lib.sh"

sha=${GITHUB_SHA:?}
workflow=${WORKFLOW:-clarifai-reconciler.yml}
base="${GITHUB_API_URL:-https://api.github.com}/repos/${GITHUB_REPOSITORY:?}"

prs=$(api GET "$base/commits/$sha/pulls")
pr=$(echo "$prs" | json 'next((str(p["number"]) for p in d if p.get("merged_at")), "")')
[ -n "$pr" ] || die "commit $sha merged no pull request: there is no reviewed plan to apply (change main only through pull requests)"
head=$(echo "$prs" | json "next(p['head']['sha'] for p in d if str(p['number']) == '$pr')")
runs=$(api GET "$base/actions/workflows/$workflow/runs?event=pull_request&head_sha=$head&status=success&per_page=1")
run_id=$(echo "$runs" | json 'str(d["workflow_runs"][0]["id"]) if d.get("workflow_runs") else ""')
[ -n "$run_id" ] || die "no successful plan run of $workflow for pull request #$pr at $head: nothing reviewed to apply"
artifacts=$(api GET "$base/actions/runs/$run_id/artifacts?name=clarifai-plans-$head")
url=$(echo "$artifacts" | json 'd["artifacts"][0]["archive_download_url"] if d.get("artifacts") else ""')
[ -n "$url" ] || die "run $run_id of pull request #$pr kept no artifact clarifai-plans-$head (expired? re-run the plan)"
tmp=$(mktemp -d)
download "$url" "$tmp/plans.zip"
rm -rf "$PLANS"
mkdir -p "$PLANS"
unzip_to "$tmp/plans.zip" "$PLANS"
rm -rf "$tmp"
[ -f "$PLANS/index.json" ] || die "the artifact of run $run_id holds no plan set (index.json)"
output pr "$pr"
output head_sha "$head"
output run_id "$run_id"

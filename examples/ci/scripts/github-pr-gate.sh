#!/usr/bin/env bash
# Apply before merge (Atlantis-style): may pull request PR be applied now? If so, download the plan
# set made for its current head to $PLANS.
#
#   PR=<number> COMMENTER=<login> github-pr-gate.sh
#
# Refused (exit 1, one line) unless: the commenter (or the actor of a manual run) has write,
# maintain or admin permission; the pull request is open and GitHub calls it mergeable and clean
# (required checks passed, no conflicts, up to date); its latest review of every reviewer has an
# approval and no "changes requested"; and a successful plan run exists for its exact head sha.
# Step outputs: head_sha (merge with exactly this head: github-merge.sh), run_id.
source "$(dirname "$0")/lib.sh"

pr=${PR:?PR: the pull request number}
who=${COMMENTER:-${GITHUB_ACTOR:?}}
workflow=${WORKFLOW:-clarifai-reconciler.yml}
base="${GITHUB_API_URL:-https://api.github.com}/repos/${GITHUB_REPOSITORY:?}"

permission=$(api GET "$base/collaborators/$who/permission" | json 'd.get("permission") or "none"')
case $permission in
  admin|maintain|write) ;;
  *) die "$who has $permission permission on ${GITHUB_REPOSITORY}: applying before merge needs write" ;;
esac
pull=$(api GET "$base/pulls/$pr")
state=$(echo "$pull" | json 'd["state"]')
[ "$state" = open ] || die "pull request #$pr is $state"
mergeable=$(echo "$pull" | json 'd.get("mergeable_state") or "unknown"')
[ "$mergeable" = clean ] || die "pull request #$pr is not ready to merge (mergeable_state: $mergeable): checks, conflicts or an out-of-date branch"
head=$(echo "$pull" | json 'd["head"]["sha"]')
reviews=$(api GET "$base/pulls/$pr/reviews?per_page=100")
decision=$(echo "$reviews" | json '
(lambda last: "changes requested" if "CHANGES_REQUESTED" in last.values() else ("approved" if "APPROVED" in last.values() else "not approved"))(
  {r["user"]["login"]: r["state"] for r in d if r["state"] in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED")})')
[ "$decision" = approved ] || die "pull request #$pr is $decision: applying before merge needs an approval"
runs=$(api GET "$base/actions/workflows/$workflow/runs?event=pull_request&head_sha=$head&status=success&per_page=1")
run_id=$(echo "$runs" | json 'str(d["workflow_runs"][0]["id"]) if d.get("workflow_runs") else ""')
[ -n "$run_id" ] || die "no successful plan run for the head of #$pr ($head): wait for it, or push to re-plan"
artifacts=$(api GET "$base/actions/runs/$run_id/artifacts?name=clarifai-plans-$head")
url=$(echo "$artifacts" | json 'd["artifacts"][0]["archive_download_url"] if d.get("artifacts") else ""')
[ -n "$url" ] || die "run $run_id kept no artifact clarifai-plans-$head"
tmp=$(mktemp -d)
download "$url" "$tmp/plans.zip"
rm -rf "$PLANS"
mkdir -p "$PLANS"
unzip_to "$tmp/plans.zip" "$PLANS"
rm -rf "$tmp"
[ -f "$PLANS/index.json" ] || die "the artifact of run $run_id holds no plan set (index.json)"
output head_sha "$head"
output run_id "$run_id"

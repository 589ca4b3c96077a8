#!/usr/bin/env bash
# Post FILE (plan.md) as the merge request's plan note, updating the previous one in place.
#   GITLAB_TOKEN=<token with api scope> gitlab-comment.sh plan.md   (in a merge request pipeline)
source "$(dirname "$0")/lib.sh"

file=${1:?usage: gitlab-comment.sh FILE}
base="${CI_API_V4_URL:?}/projects/${CI_PROJECT_ID:?}/merge_requests/${CI_MERGE_REQUEST_IID:?}/notes"
body=$(python3 -c '
import json, sys
print(json.dumps({"body": "<!-- clarifai-reconciler plan -->\n" + open(sys.argv[1], encoding="utf-8").read()}))
' "$file")
existing=$(api GET "$base?per_page=100&sort=asc" | json 'next((str(n["id"]) for n in d if n["body"].startswith("<!-- clarifai-reconciler plan -->")), "")')
if [ -n "$existing" ]; then
  api PUT "$base/$existing" "$body" > /dev/null
  echo "updated the plan note on !$CI_MERGE_REQUEST_IID" >&2
else
  api POST "$base" "$body" > /dev/null
  echo "noted the plan on !$CI_MERGE_REQUEST_IID" >&2
fi

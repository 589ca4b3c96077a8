#!/usr/bin/env bash
# Post FILE (plan.md) as the pull request's plan comment, updating the previous one in place.
#   PR=<number> GITHUB_TOKEN=... github-comment.sh plan.md
source "$(dirname "$0")/lib.sh"

file=${1:?usage: github-comment.sh FILE}
pr=${PR:?PR: the pull request number}
base="${GITHUB_API_URL:-https://api.github.com}/repos/${GITHUB_REPOSITORY:?}"
body=$(python3 -c '
import json, sys
print(json.dumps({"body": "<!-- clarifai-reconciler plan -->\n" + open(sys.argv[1], encoding="utf-8").read()}))
' "$file")
existing=""
for page in 1 2 3 4 5 6 7 8 9 10; do
  comments=$(api GET "$base/issues/$pr/comments?per_page=100&page=$page")
  existing=$(echo "$comments" | json 'next((str(c["id"]) for c in d if c["body"].startswith("<!-- clarifai-reconciler plan -->")), "")')
  if [ -n "$existing" ] || [ "$(echo "$comments" | json 'str(len(d))')" -lt 100 ]; then
    break
  fi
done
if [ -n "$existing" ]; then
  api PATCH "$base/issues/comments/$existing" "$body" > /dev/null
  echo "updated the plan comment on #$pr" >&2
else
  api POST "$base/issues/$pr/comments" "$body" > /dev/null
  echo "commented the plan on #$pr" >&2
fi

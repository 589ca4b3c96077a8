# shellcheck shell=bash
# Shared by the CI scripts (sourced, never run): strict mode, the reconciler command, JSON and
# forge-API helpers. Every step of the CI recipes is one of these scripts, so tests run them
# (tests/test_ci_recipes.py, against `reconciler sandbox serve` and a fake forge on loopback).
set -euo pipefail

# The command that runs clarifai-reconciler (tests: "python -m reconciler").
RECONCILER=${RECONCILER:-reconciler}
# Where the plan set of a pull / merge request lives (written by plan.sh, read by apply.sh).
PLANS=${PLANS:-plans}

reconciler() {
  # shellcheck disable=SC2086  # RECONCILER may be a command with arguments
  $RECONCILER "$@"
}

die() {
  echo "error: $*" >&2
  exit 1
}

# json EXPR: evaluate a Python expression over the JSON document on stdin (bound to `d`) and
# print the result (strings as they are, anything else as JSON). python3 is on every runner
# that runs reconciler; jq is not on every GitLab image.
json() {
  python3 -c '
import json, sys
d = json.load(sys.stdin)
r = eval(sys.argv[1], {"d": d, "json": json})
print(r if isinstance(r, str) else json.dumps(r))
' "$1"
}

# auth_headers URL: the forge's token header for URL: GitLab's (GITLAB_TOKEN, else the job's
# CI_JOB_TOKEN) under CI_API_V4_URL, else GitHub's (GITHUB_TOKEN).
auth_headers() {
  if [ -n "${CI_API_V4_URL:-}" ] && [ "${1#"$CI_API_V4_URL"}" != "$1" ]; then
    if [ -n "${GITLAB_TOKEN:-}" ]; then
      printf '%s\n' "PRIVATE-TOKEN: $GITLAB_TOKEN"
    elif [ -n "${CI_JOB_TOKEN:-}" ]; then
      printf '%s\n' "JOB-TOKEN: $CI_JOB_TOKEN"
    fi
  elif [ -n "${GITHUB_TOKEN:-}" ]; then
    printf '%s\n' "Authorization: Bearer $GITHUB_TOKEN" "Accept: application/vnd.github+json"
  fi
}

# api METHOD URL [BODY]: a forge API call (GitHub or GitLab), its JSON body on stdout; a
# non-2xx answer fails the step, naming the call and the status.
api() {
  local method=$1 url=$2 body=${3:-} out code header
  local -a auth=()
  while IFS= read -r header; do
    [ -n "$header" ] && auth+=(-H "$header")
  done < <(auth_headers "$url")
  out=$(mktemp)
  if [ -n "$body" ]; then
    code=$(curl -sS -L -o "$out" -w '%{http_code}' -X "$method" "${auth[@]}" -H "Content-Type: application/json" --data "$body" "$url") || code=000
  else
    code=$(curl -sS -L -o "$out" -w '%{http_code}' -X "$method" "${auth[@]}" "$url") || code=000
  fi
  if [ "${code:0:1}" != 2 ]; then
    echo "error: $method $url answered HTTP $code: $(head -c 300 "$out")" >&2
    rm -f "$out"
    return 1
  fi
  cat "$out"
  rm -f "$out"
}

# download URL FILE: a binary download (an artifact's zip), following redirects.
download() {
  local url=$1 file=$2 header
  local -a auth=()
  while IFS= read -r header; do
    [ -n "$header" ] && auth+=(-H "$header")
  done < <(auth_headers "$url")
  curl -sS -L --fail -o "$file" "${auth[@]}" "$url" || die "cannot download $url"
}

# unzip_to ZIP DIR: extract with Python (unzip is not on every image).
unzip_to() {
  python3 -m zipfile -e "$1" "$2"
}

# output NAME VALUE: a step output for GitHub Actions ($GITHUB_OUTPUT), and a line on stderr.
output() {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf '%s=%s\n' "$1" "$2" >> "$GITHUB_OUTPUT"
  fi
  printf '%s=%s\n' "$1" "$2" >&2
}

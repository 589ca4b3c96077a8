#!/usr/bin/env bash
# Apply before merge, last step on GitLab: squash-merge only if the head is still CI_COMMIT_SHA.
source "$(dirname "$0")/lib.sh"

mr="${CI_API_V4_URL:?}/projects/${CI_PROJECT_ID:?}/merge_requests/${CI_MERGE_REQUEST_IID:?}"
api PUT "$mr/merge?sha=${CI_COMMIT_SHA:?}&squash=true" > /dev/null \
  || die "merge request !$CI_MERGE_REQUEST_IID was applied but not merged (its head moved, or it is not mergeable): merge it by hand once its plan is empty"
echo "merged !$CI_MERGE_REQUEST_IID at $CI_COMMIT_SHA" >&2

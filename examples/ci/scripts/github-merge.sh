#!/usr/bin/env bash
# Apply before merge, last step: squash-merge pull request PR only if its head is still HEAD_SHA
# (the head whose plans were applied); GitHub refuses the merge (409) when it moved.
#   PR=<number> HEAD_SHA=<sha> github-merge.sh
source "$(dirname "$0")/lib.sh"

pr=${PR:?}
head=${HEAD_SHA:?}
base="${GITHUB_API_URL:-https://api.github.com}/repos/${GITHUB_REPOSITORY:?}"
api PUT "$base/pulls/$pr/merge" "{\"sha\": \"$head\", \"merge_method\": \"squash\"}" > /dev/null \
  || die "pull request #$pr was applied but not merged (its head moved, or it is not mergeable): merge it by hand once its plan is empty"
echo "merged #$pr at $head" >&2

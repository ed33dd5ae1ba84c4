#!/usr/bin/env bash
# The pipeline half of .github/workflows/pr-report.yml, in one place that tests/test_pr_workflow.py runs as well
# (docs/pull-requests.md):
#
#   scripts/ci-dvc.sh restore   # the workspace's results: what the DVC remote holds is restored, the rest retrained
#   scripts/ci-dvc.sh push      # on main, after restore: outputs and run cache to the remote, for the next runs
#
# restore is `dvc fetch` + `dvc checkout` + `dvc repro`: outputs the remote lacks are a warning and their stages
# are retrained, and so is everything when the remote cannot be read at all (a fork's pull request has no
# credentials), where `dvc repro --pull` stops (it lets only "run cache not supported" pass). Without a default
# remote it says so and retrains every stage.
set -euo pipefail

warn() {  # an annotation on the run's page in GitHub Actions, a plain line elsewhere
    if [ -n "${GITHUB_ACTIONS:-}" ]; then echo "::warning::$*"; else echo "warning: $*"; fi >&2
}

remote() {  # the default remote's name; fails when none is set (dvc then prints "No default remote set")
    dvc remote default 2>/dev/null
}

restore() {
    local name
    if ! name=$(remote); then
        warn "no default DVC remote: every stage is retrained (docs/pull-requests.md sets one up)"
    elif dvc fetch --run-cache; then  # outputs it lacks: DVC's warning, and those stages are retrained
        echo "DVC remote '$name': fetched what it holds of dvc.lock's outputs"
    else
        warn "DVC remote '$name' could not be read (credentials?): the stages are retrained"
    fi
    dvc checkout --allow-missing  # what the cache holds goes into the workspace; stages with nothing missing are skipped
    dvc repro
}

push() {
    local name
    if ! name=$(remote); then
        warn "no default DVC remote: nothing pushed, pull requests retrain every stage (docs/pull-requests.md)"
        return 0
    fi
    if ! git diff --quiet -- dvc.lock; then  # pull requests restore what the committed dvc.lock names, not this
        warn "this run changed dvc.lock: commit a fresh dvc.lock, or pull requests retrain the stages it names"
    fi
    dvc push --run-cache
}

case "${1:-}" in
    restore) restore ;;
    push) push ;;
    *) echo "usage: $0 restore|push" >&2; exit 2 ;;
esac

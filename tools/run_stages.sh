#!/usr/bin/env bash
# Runs the named test stages (sanity, lint, unit, integration, galaxy, molecule) in order, every one of them even
# after a failure, then prints one summary line per stage. Exits non-zero if any stage failed.
# The stage_* functions are called indirectly, by name.
# shellcheck disable=SC2317
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

VENV_BIN="$PWD/.venv/bin"
export PATH="$VENV_BIN:$PATH:/usr/sbin:/sbin"
export ANSIBLE_COLLECTIONS_PATH="$PWD/tests/output/collections"
export CANARY_COLLECTIONS_ROOT="$ANSIBLE_COLLECTIONS_PATH"
LOGS=tests/output/stage-logs
mkdir -p "$LOGS"

copy_collection_tree() {
    # ansible-test wants to run from inside ansible_collections/<namespace>/<name> as a real directory,
    # outside this git checkout (inside it, ansible-test would list only git-tracked files: none there).
    local root target
    root="${TMPDIR:-/tmp}/canary-release-sanity-$(printf '%s' "$PWD" | sha256sum | cut -c1-12)"
    target="$root/ansible_collections/canary/release"
    rm -rf "$root"
    mkdir -p "$target"
    tar -cf - --exclude=./.git --exclude=./.venv --exclude=./.venv-galaxy --exclude=./tests/output --exclude=__pycache__ \
        --exclude=.pytest_cache --exclude=.hypothesis \
        --exclude=.terraform --exclude=.terraform.lock.hcl --exclude=terraform.tfstate.d --exclude='*.tfstate' --exclude='*.tfstate.*' --exclude=./bench/scratch --exclude='./*.tar.gz' . \
        | tar -xf - -C "$target"
    # ansible-test finds dependencies only beside the collection: link the ones the ansible package ships.
    local installed
    installed=$("$VENV_BIN/python" -c 'import ansible_collections; print(list(ansible_collections.__path__)[0])')
    for dependency in amazon/aws community/general; do
        mkdir -p "$root/ansible_collections/${dependency%%/*}"
        ln -s "$installed/$dependency" "$root/ansible_collections/$dependency"
    done
    echo "$target"
}

stage_sanity() {
    local tree python_version
    tree=$(copy_collection_tree)
    python_version=$("$VENV_BIN/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    (cd "$tree" && "$VENV_BIN/ansible-test" sanity --python "$python_version" --color no)
}

stage_lint() {
    "$VENV_BIN/ansible-lint" --offline --profile production --nocolor
}

stage_unit() {
    "$VENV_BIN/python" -m pytest -q tests/unit
}

stage_integration() {
    "$VENV_BIN/python" -m pytest -q --durations=20 tests/integration
}

stage_galaxy() {
    # The built artifact as Galaxy (galaxy-importer) and ansible-builder meet it, then the changelog fragments.
    "$VENV_BIN/python" -m pytest -q tests/galaxy && "$VENV_BIN/antsibull-changelog" lint \
        && "$VENV_BIN/antsibull-changelog" lint-changelog-yaml changelogs/changelog.yaml \
        && echo "galaxy: $(stat -c %s tests/output/build/canary-release-*.tar.gz) bytes, import clean, changelog clean"
}

stage_molecule() {
    # Every scenario in molecule/ between one create and one destroy of the shared servers (the default scenario).
    CI=true "$VENV_BIN/molecule" test --all < /dev/null
}

declare -a summary=()
failed=0
for stage in "$@"; do
    echo "=== $stage ==="
    started=$(date +%s)
    "stage_$stage" 2>&1 | tee "$LOGS/$stage.log"
    status=${PIPESTATUS[0]}
    took=$(( $(date +%s) - started ))
    if [ "$status" -eq 0 ]; then
        summary+=("PASS  $stage (${took}s) $(tail -n 1 "$LOGS/$stage.log" | tr -s ' ' | cut -c1-100)")
    else
        summary+=("FAIL  $stage (${took}s, exit $status) log: $LOGS/$stage.log")
        failed=1
    fi
done
echo "=== summary ==="
printf '%s\n' "${summary[@]}"
exit $failed

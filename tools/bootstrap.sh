#!/usr/bin/env bash
# Installs what `make test` and `make demo` need, when it is missing: Debian packages (as root),
# the pinned .venv and .venv-galaxy, ansible-test's pip bootstrap script, and the ansible_collections link tree.
# A second run finds everything in place and takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
PATH="$PATH:/usr/sbin:/sbin"

# command:package pairs of the Debian packages the tests and the demo run for real.
SYSTEM_TOOLS="nginx:nginx haproxy:haproxy prometheus:prometheus promtool:prometheus prometheus-node-exporter:prometheus-node-exporter hey:hey wrk:wrk sshd:openssh-server shellcheck:shellcheck"

install_system_packages() {
    local missing=()
    for pair in $SYSTEM_TOOLS; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
        echo "bootstrap: install them (apt-get install ${missing[*]}) or run this as root on Debian." >&2
        exit 1
    fi
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    # Packages must not start their services (nginx on :80, prometheus on :9090, node_exporter on :9100): the tests
    # start their own.
    local policy_created=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        policy_created=1
    fi
    local status=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >/dev/null || status=$?
    [ -n "$policy_created" ] && rm -f /usr/sbin/policy-rc.d
    [ $status -eq 0 ] || { echo "bootstrap: apt-get failed ($status)" >&2; exit $status; }
}

pick_python() {
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 && { echo "$candidate"; return; }
    done
    echo "bootstrap: no python3 found" >&2
    exit 1
}

install_venv() {
    # install_venv DIR REQUIREMENTS CONSTRAINTS [MORE STAMPED FILES]: (re)installs DIR's pinned packages when any of
    # the files changed since the last successful install.
    local venv=$1 requirements=$2 constraints=$3 stamp
    stamp=$(cat "${@:2}" | sha256sum | cut -c1-16)
    if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements-stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    echo "bootstrap: installing pinned Python packages into $venv"
    [ -x "$venv/bin/python" ] || "$(pick_python)" -m venv "$venv"
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check \
            -r "$requirements" -c "$constraints" > "$venv/pip-install.log" 2>&1; then
        grep -v "^WARNING: Location" "$venv/pip-install.log" | tail -30 >&2
        echo "bootstrap: pip install failed; full log in $venv/pip-install.log" >&2
        exit 1
    fi
    echo "$stamp" > "$venv/.requirements-stamp"
}

link_collection_tree() {
    # Plugins import themselves as ansible_collections.canary.release.*; ansible finds the collection here too.
    mkdir -p tests/output/collections/ansible_collections/canary
    ln -sfn ../../../../.. tests/output/collections/ansible_collections/canary/release
}

install_system_packages
install_venv "$VENV" tests/requirements.txt tests/constraints.txt requirements.txt
# galaxy-importer's pins conflict with .venv's (tests/galaxy/requirements.txt says which): a venv of its own.
install_venv "$VENV-galaxy" tests/galaxy/requirements.txt tests/galaxy/constraints.txt
"$VENV/bin/python" tools/ensure_get_pip.py
"$VENV/bin/python" tools/terraform_plugins.py >/dev/null
link_collection_tree

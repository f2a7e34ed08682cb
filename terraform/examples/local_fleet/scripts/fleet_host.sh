#!/usr/bin/env bash
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# One host of the local fleet: a network namespace joined to the root namespace by a veth pair, running its own
# sshd (configuration, host key and authorized key under HOST_DIR; the system's sshd is not touched) and the
# sample app. Called by the null_resource provisioners of main.tf with everything in the environment:
#   FLEET_ACTION=create|destroy NAMESPACE VETH HOST_ADDRESS NS_ADDRESS PREFIX_LENGTH HOST_DIR SSH_PORT SSH_USER
#   SSH_AUTHORIZED_KEY (create) PYTHON APP_SCRIPT APP_PORT APP_VERSION INSTANCE APP_ARGS_JSON READY_TIMEOUT
# create fails (and removes what it made) when the namespace, the veth or the addresses are already in use.
# destroy removes whatever of the host exists and succeeds when nothing is left.
set -Eeuo pipefail
PATH="$PATH:/usr/sbin:/sbin"

log() { echo "fleet_host[$NAMESPACE]: $*" >&2; }

namespace_exists() { [ -e "/run/netns/$NAMESPACE" ]; }

stop_processes() {
    # Every process in the namespace belongs to this host (sshd and its sessions, the app).
    local attempt pids=()
    for attempt in $(seq 1 50); do
        namespace_exists || return 0
        mapfile -t pids < <(ip netns pids "$NAMESPACE" 2>/dev/null || true)
        [ ${#pids[@]} -eq 0 ] && return 0
        if [ "$attempt" -eq 1 ]; then
            kill -TERM "${pids[@]}" 2>/dev/null || true
        elif [ "$attempt" -eq 30 ]; then
            log "still running after 3 s, sending SIGKILL: ${pids[*]}"
            kill -KILL "${pids[@]}" 2>/dev/null || true
        fi
        sleep 0.1
    done
    log "processes left in the namespace: ${pids[*]}"
    return 1
}

destroy_host() {
    local status=0
    stop_processes || status=1
    if namespace_exists; then
        ip netns delete "$NAMESPACE" || status=1
    fi
    # The peer end lived in the namespace, so the kernel removes the pair with it (asynchronously).
    local attempt
    for attempt in $(seq 1 20); do
        ip link show dev "$VETH" >/dev/null 2>&1 || break
        ip link delete dev "$VETH" >/dev/null 2>&1 || sleep 0.1
    done
    if ip link show dev "$VETH" >/dev/null 2>&1; then
        log "interface $VETH is still there"
        status=1
    fi
    rm -rf -- "$HOST_DIR"
    return $status
}

detach() {
    # Starts "$@" in a new session with only stdin (/dev/null), stdout and stderr (the log file $1) open and does
    # not wait: an inherited pipe of terraform or ansible held by a long-running child would keep them waiting.
    "$PYTHON" -c 'import subprocess, sys
with open(sys.argv[1], "ab") as log:
    subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                     close_fds=True, start_new_session=True)' "$@"
}

address_in_use() {
    ip -4 -o addr show | awk '{print $4}' | cut -d/ -f1 | grep -qxF -e "$HOST_ADDRESS" -e "$NS_ADDRESS"
}

write_sshd_config() {
    cat > "$HOST_DIR/sshd_config" <<EOF
# sshd of the local fleet host $NAMESPACE (generated; removed on destroy)
Port $SSH_PORT
ListenAddress $NS_ADDRESS
HostKey $HOST_DIR/ssh_host_ed25519_key
PidFile $HOST_DIR/sshd.pid
AuthorizedKeysFile $HOST_DIR/authorized_keys
AllowUsers $SSH_USER
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
X11Forwarding no
Subsystem sftp internal-sftp
EOF
}

wait_until_ready() {
    "$PYTHON" - "$NS_ADDRESS" "$SSH_PORT" "$APP_PORT" "$READY_TIMEOUT" <<'EOF'
import socket
import sys
import time
import urllib.request

address, ssh_port, app_port, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + timeout
missing = ['sshd', 'app']
while missing and time.monotonic() < deadline:
    try:
        if 'sshd' in missing:
            with socket.create_connection((address, ssh_port), timeout=1) as connection:
                if connection.recv(64).startswith(b'SSH-'):
                    missing.remove('sshd')
        if 'app' in missing:
            with urllib.request.urlopen('http://%s:%d/health' % (address, app_port), timeout=1) as answer:
                if answer.status == 200:
                    missing.remove('app')
    except OSError:
        time.sleep(0.1)
if missing:
    sys.exit('not ready after %.0f s: %s' % (timeout, ', '.join(missing)))
EOF
}

create_host() {
    if namespace_exists; then
        log "namespace $NAMESPACE exists already: destroy the other fleet or choose another name_prefix"
        exit 1
    fi
    if ip link show dev "$VETH" >/dev/null 2>&1; then
        log "interface $VETH exists already"
        exit 1
    fi
    if address_in_use; then
        log "$HOST_ADDRESS or $NS_ADDRESS is in use on this machine: choose another subnet_cidr"
        exit 1
    fi
    # From here on a failure removes what was made: Terraform does not run destroy provisioners of a failed create.
    trap 'log "create failed, removing the host"; destroy_host || true' ERR

    mkdir -p "$HOST_DIR"
    chmod 700 "$HOST_DIR"
    ssh-keygen -q -t ed25519 -N '' -C "$NAMESPACE" -f "$HOST_DIR/ssh_host_ed25519_key"
    printf '%s\n' "$SSH_AUTHORIZED_KEY" > "$HOST_DIR/authorized_keys"
    chmod 600 "$HOST_DIR/authorized_keys"
    write_sshd_config
    # sshd's privilege separation directory; the openssh-server package creates it only when its service starts.
    mkdir -p /run/sshd

    ip netns add "$NAMESPACE"
    ip link add "$VETH" type veth peer name eth0 netns "$NAMESPACE"
    ip addr add "$HOST_ADDRESS/$PREFIX_LENGTH" dev "$VETH"
    ip link set dev "$VETH" up
    ip -n "$NAMESPACE" link set dev lo up
    ip -n "$NAMESPACE" addr add "$NS_ADDRESS/$PREFIX_LENGTH" dev eth0
    ip -n "$NAMESPACE" link set dev eth0 up
    ip -n "$NAMESPACE" route add default via "$HOST_ADDRESS"

    /usr/sbin/sshd -t -f "$HOST_DIR/sshd_config"
    detach "$HOST_DIR/sshd.out" ip netns exec "$NAMESPACE" /usr/sbin/sshd -f "$HOST_DIR/sshd_config" -E "$HOST_DIR/sshd.log"

    local app_args=()
    mapfile -t app_args < <("$PYTHON" -c 'import json, sys; [print(arg) for arg in json.loads(sys.argv[1])]' "$APP_ARGS_JSON")
    detach "$HOST_DIR/app.log" ip netns exec "$NAMESPACE" "$PYTHON" "$APP_SCRIPT" --listen "0.0.0.0:$APP_PORT" \
        --app-version "$APP_VERSION" --instance "$INSTANCE" "${app_args[@]}"

    if ! wait_until_ready; then
        log "sshd log: $(tail -n 5 "$HOST_DIR/sshd.log" 2>/dev/null)"
        log "app log: $(tail -n 5 "$HOST_DIR/app.log" 2>/dev/null)"
        false
    fi
    trap - ERR
    log "ready: ssh $SSH_USER@$NS_ADDRESS -p $SSH_PORT, app http://$NS_ADDRESS:$APP_PORT/"
}

case "${FLEET_ACTION:-}" in
    create) create_host ;;
    destroy) destroy_host ;;
    *) echo "fleet_host: FLEET_ACTION must be create or destroy" >&2; exit 2 ;;
esac

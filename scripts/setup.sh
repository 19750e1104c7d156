#!/bin/sh
# Install what the demo and the tests need on Debian 12 or 13, as root: Debian's Ceph,
# libvirt and build packages, a virtualenv (.venv) from requirements.lock, and the lab's
# Glance (.glance-venv) from requirements-glance.lock.
#   scripts/setup.sh               the above
#   scripts/setup.sh --salt 3006   also .venv-3006 (Salt 3006 LTS) from requirements-3006.lock
# Safe to run again: it installs only what is missing or changed. Each step prints a line
# when it starts and its time when it ends; a long step says every 10 s that it still runs.
set -eu
cd "$(dirname "$0")/.."

SALT=""
case "${1:-}" in
    --salt) SALT=${2:?"setup: --salt needs a release (3006 or 3008)"} ;;
    "") ;;
    *) echo "setup: unknown argument $1 (usage: scripts/setup.sh [--salt 3006])" >&2; exit 2 ;;
esac

# qemu-system-x86 and qemu-block-extra (RBD disks): a real guest holding a cephx key, for
# the key rotation tests.
APT_PACKAGES="ceph-mon ceph-mgr ceph-osd ceph-common libvirt-daemon libvirt-clients
libvirt-dev pkg-config gcc python3-dev python3-venv qemu-utils strace python3-rbd python3-rados
qemu-system-x86 qemu-block-extra"
# libvirt's QEMU and secret drivers: Debian 13's libvirt-daemon only recommends them
# (without them: "no connection driver available"), so while a driver's module is missing
# its package libvirt-daemon-driver-<name> is installed by name where the distribution
# has one (Debian 12 has no separate secret driver package: libvirt-daemon holds it).
LIBVIRT_DRIVERS="qemu secret"

# The system Python, never a pyenv or other interpreter first on PATH.
PYTHON=/usr/bin/python3

# step LABEL COMMAND...: run COMMAND, saying when it starts, every 10 s while it runs,
# and how long it took.
step() {
    label=$1
    shift
    echo "setup: $label ..."
    start=$(date +%s)
    (
        # Short sleeps: once killed, no sleeping child keeps our output open for long.
        ticks=0
        while sleep 1; do
            ticks=$((ticks + 1))
            [ $((ticks % 10)) -ne 0 ] ||
                echo "setup:   ... $label: $(($(date +%s) - start)) s so far"
        done
    ) &
    ticker=$!
    status=0
    "$@" || status=$?
    kill "$ticker" 2>/dev/null || true
    wait "$ticker" 2>/dev/null || true
    if [ "$status" -ne 0 ]; then
        echo "setup: $label FAILED after $(($(date +%s) - start)) s (exit status $status)" >&2
        exit "$status"
    fi
    echo "setup: $label: done in $(($(date +%s) - start)) s"
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"
}

# apt-get's own lines for what it fetches and sets up (one per package), errors and
# warnings; the rest (unpacking, triggers) is left out.
apt_get() {
    rc_file=$(mktemp)
    if DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Use-Pty=0 "$@" 2>&1; then
        echo 0 >"$rc_file"
    else
        echo $? >"$rc_file"
    fi |
        grep --line-buffered -E '^(Get:|Hit:|Setting up |E:|W:|Err:)' || true
    rc=$(cat "$rc_file")
    rm -f "$rc_file"
    return "$rc"
}

missing=""
for pkg in $APT_PACKAGES; do
    installed "$pkg" || missing="$missing $pkg"
done
updated=""
if [ -n "$missing" ]; then
    step "apt-get update (package lists)" apt_get update
    updated=1
fi
for driver in $LIBVIRT_DRIVERS; do
    pkg=libvirt-daemon-driver-$driver
    if ! ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_"$driver".so >/dev/null 2>&1 &&
        ! installed "$pkg" && apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1; then
        missing="$missing $pkg"
    fi
done
if [ -n "$missing" ]; then
    [ -n "$updated" ] || step "apt-get update (package lists)" apt_get update
    echo "setup: Debian packages to install (with their dependencies):$missing"
    # shellcheck disable=SC2086
    step "installing Debian packages (apt-get)" apt_get install -y --no-install-recommends $missing
fi

# venv DIR LOCK: DIR built from the lock file LOCK (once; again when LOCK changes).
venv() {
    dir=$1
    lock=$2
    stamp=$dir/.$lock
    if [ ! -x "$dir/bin/python" ] || ! cmp -s "$lock" "$stamp"; then
        [ -x "$dir/bin/python" ] || step "creating $dir" "$PYTHON" -m venv "$dir"
        step "installing $lock into $dir (pip)" "$dir/bin/pip" install --disable-pip-version-check \
            --progress-bar off -r "$lock"
        cp "$lock" "$stamp"
    fi
}

venv .venv requirements.lock

# Glance for the lab's glance-api: a plain venv on the system Python plus Debian's
# librados/librbd bindings (glance_store's RBD driver imports them), linked in so that
# nothing else from the system's site-packages leaks into the pinned set.
stamp=.glance-venv/.requirements-glance.lock
if [ ! -x .glance-venv/bin/glance-api ] || ! cmp -s requirements-glance.lock "$stamp"; then
    [ -x .glance-venv/bin/python ] || step "creating .glance-venv" "$PYTHON" -m venv .glance-venv
    site=$(.glance-venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
    for module in rados rbd; do
        ln -sf "$(ls /usr/lib/python3/dist-packages/$module.cpython-*.so)" "$site/"
    done
    step "installing requirements-glance.lock into .glance-venv (pip)" \
        .glance-venv/bin/pip install --disable-pip-version-check --progress-bar off \
        -r requirements-glance.lock
    cp requirements-glance.lock "$stamp"
fi

case "$SALT" in
    ""|3008) ;;
    3006) venv .venv-3006 requirements-3006.lock ;;
    *) echo "setup: no Salt $SALT here (3006 or 3008)" >&2; exit 2 ;;
esac

#!/bin/sh
# Install what the demo and the tests need on Debian 12, as root: Debian's Ceph,
# libvirt and build packages, a virtualenv (.venv) from requirements.lock, and the lab's
# Glance (.glance-venv) from requirements-glance.lock.
# Safe to run again: it installs only what is missing or changed.
set -eu
cd "$(dirname "$0")/.."

APT_PACKAGES="ceph-mon ceph-mgr ceph-osd ceph-common libvirt-daemon libvirt-clients
libvirt-dev pkg-config gcc python3-dev python3-venv qemu-utils strace python3-rbd python3-rados"

missing=""
for pkg in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The system Python, never a pyenv or other interpreter first on PATH.
PYTHON=/usr/bin/python3
stamp=.venv/.requirements.lock
if [ ! -x .venv/bin/python ] || ! cmp -s requirements.lock "$stamp"; then
    echo "setup: creating .venv from requirements.lock"
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r requirements.lock
    cp requirements.lock "$stamp"
fi

# Glance for the lab's glance-api: a plain venv on the system Python plus Debian's
# librados/librbd bindings (glance_store's RBD driver imports them), linked in so that
# nothing else from the system's site-packages leaks into the pinned set.
stamp=.glance-venv/.requirements-glance.lock
if [ ! -x .glance-venv/bin/glance-api ] || ! cmp -s requirements-glance.lock "$stamp"; then
    echo "setup: creating .glance-venv from requirements-glance.lock"
    [ -x .glance-venv/bin/python ] || "$PYTHON" -m venv .glance-venv
    site=$(.glance-venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
    for module in rados rbd; do
        ln -sf "$(ls /usr/lib/python3/dist-packages/$module.cpython-*.so)" "$site/"
    done
    .glance-venv/bin/pip install -q --disable-pip-version-check -r requirements-glance.lock
    cp requirements-glance.lock "$stamp"
fi

#!/usr/bin/env bash
# Builds local stand-ins for the public images that docker/Dockerfile and docker/compose.yaml name,
# for machines that reach no image registry (a machine that can pull them needs none of this):
#
#   debian:bookworm-slim   a debootstrap --variant=minbase bookworm rootfs, `docker import`ed
#   zookeeper:3.8          docker/standins/zookeeper: that base + Debian's zookeeper package, with an
#                          entrypoint honouring the official image's ZOO_* variables
#
# Each image is built only when absent (`--force` rebuilds both images, not the rootfs). The rootfs is cached as a tarball
# under $ODRADEK_DOCKER_CACHE (default /var/cache/odradek-docker), so a second run takes seconds
# even after `docker image rm`. Needs root (debootstrap) and Debian's package mirror; the host's own
# apt sources are copied into the base image when the host is Debian bookworm.
#
#   docker/build-standins.sh [--force]
#   DEBIAN_MIRROR=<url> docker/build-standins.sh     # another mirror for debootstrap
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${ODRADEK_DOCKER_CACHE:-/var/cache/odradek-docker}
BASE_IMAGE=${ODRADEK_BASE_IMAGE:-debian:bookworm-slim}
ZK_IMAGE=${ODRADEK_ZOOKEEPER_IMAGE:-zookeeper:3.8}
SUITE=bookworm
FORCE=0
[ "${1:-}" = --force ] && FORCE=1

log() { echo "build-standins: $*" >&2; }
die() { log "$*"; exit 1; }
have_image() { [ "$FORCE" = 0 ] && docker image inspect "$1" >/dev/null 2>&1; }

# The minbase rootfs as a tarball in the cache, made once.
rootfs_tarball() {
    local tarball="$CACHE/$SUITE-minbase.tar"
    if [ -s "$tarball" ]; then
        echo "$tarball"
        return
    fi
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap"
        { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2; } \
            || die "debootstrap is missing (apt-get install debootstrap)"
    fi
    mkdir -p "$CACHE"
    local work
    work=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    log "debootstrap --variant=minbase $SUITE (a minute or two)"
    # shellcheck disable=SC2086 # an empty DEBIAN_MIRROR means debootstrap's default
    debootstrap --variant=minbase "$SUITE" "$work/rootfs" ${DEBIAN_MIRROR:-} >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    slim_rootfs "$work/rootfs"
    tar --numeric-owner -C "$work/rootfs" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf "$work"
    trap - EXIT
    echo "$tarball"
}

# What the official slim image leaves out (documentation, package caches), and the host's apt
# sources when the host runs the same Debian release.
slim_rootfs() {
    local root="$1"
    chroot "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
        "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
    if grep -q "^VERSION_CODENAME=$SUITE$" /etc/os-release 2>/dev/null \
        && [ -f /etc/apt/sources.list.d/debian.sources ]; then
        cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/debian.sources"
        rm -f "$root/etc/apt/sources.list"
    fi
}

build_base() {
    if have_image "$BASE_IMAGE"; then
        log "$BASE_IMAGE present"
        return
    fi
    local tarball
    tarball=$(rootfs_tarball)
    log "importing $tarball as $BASE_IMAGE"
    docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["bash"]' \
        -m "odradek stand-in for $BASE_IMAGE (debootstrap --variant=minbase $SUITE)" \
        "$tarball" "$BASE_IMAGE" >/dev/null
}

build_zookeeper() {
    if have_image "$ZK_IMAGE"; then
        log "$ZK_IMAGE present"
        return
    fi
    log "building $ZK_IMAGE from $HERE/standins/zookeeper (Debian's zookeeper package)"
    docker build -q --build-arg "BASE=$BASE_IMAGE" -t "$ZK_IMAGE" "$HERE/standins/zookeeper" >/dev/null
}

command -v docker >/dev/null || die "docker is not installed"
build_base
build_zookeeper
log "ready: $BASE_IMAGE, $ZK_IMAGE"

#!/usr/bin/env bash
# Build the docker tests' base image (Debian bookworm with python3, venv and pip) from a
# root filesystem made on this machine, because no registry is reachable in CI.
# Idempotent: does nothing when the image already exists. Needs root and debootstrap.
set -euo pipefail

IMAGE="${BISECTOR_TEST_BASE_IMAGE:-bisector-test-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "make_base_image: $IMAGE exists" >&2
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || { echo "make_base_image: debootstrap is not installed" >&2; exit 1; }

rootfs="$(mktemp -d /tmp/bisector-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip \
  bookworm "$rootfs" "$MIRROR" >/tmp/bisector-debootstrap.log 2>&1 \
  || { echo "make_base_image: debootstrap failed, see /tmp/bisector-debootstrap.log" >&2; exit 1; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' - "$IMAGE" >/dev/null
echo "make_base_image: built $IMAGE" >&2

#!/usr/bin/env bash
# Installs everything tdx needs on a Debian 12 (bookworm) machine: the C++ build
# dependencies, mkosi 24.3 from bookworm-backports and the host tools mkosi and the tests use.
# The backports entry is derived from the machine's own apt sources, never from a
# host name written here (see shared/design/NOTES.md).
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "setup-debian: run as root (apt-get install)" >&2; exit 1; }

sources=/etc/apt/sources.list.d/debian.sources
backports=/etc/apt/sources.list.d/tdx-bookworm-backports.sources
if [ ! -f "$backports" ]; then
  if [ -f "$sources" ]; then
    # First deb822 stanza whose Suites mention bookworm (not -security): copy it, change Suites.
    awk 'BEGIN{RS=""; ORS="\n\n"} /Suites:[^\n]*bookworm([ \n]|$)/ && !done {
           gsub(/Suites:[^\n]*/, "Suites: bookworm-backports"); print; done=1 }' \
      "$sources" | grep -v "^#" > "$backports.tmp"
  else
    # One-line format: reuse the first main-archive URI.
    uri=$(grep -hE '^deb [^ ]+ bookworm ' /etc/apt/sources.list | head -n1 | awk '{print $2}')
    [ -n "$uri" ] || { echo "setup-debian: no bookworm entry in the apt sources to derive backports from" >&2; exit 1; }
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\n' "$uri" > "$backports.tmp"
  fi
  [ -s "$backports.tmp" ] || { echo "setup-debian: could not derive a bookworm-backports entry from $sources" >&2; exit 1; }
  mv "$backports.tmp" "$backports"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git \
  libboost-dev pybind11-dev python3-dev python3-jinja2 python3-pytest python3-pip python3-venv \
  python3-setuptools python3-wheel \
  libcurl4-openssl-dev libssl-dev libgit2-dev libtomlplusplus-dev libcli11-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  bubblewrap kmod python3-pefile dosfstools mtools cpio zstd e2fsprogs \
  debian-archive-keyring apt-utils dpkg-dev fakeroot squashfs-tools uidmap \
  openssh-server openssh-client ovmf qemu-system-x86 qemu-utils \
  nginx-light socat golang-go unzip >/dev/null
# e2fsprogs >= 1.47.1 stamps a new ext4 file system with SOURCE_DATE_EPOCH instead of the
# clock; Debian 12's 1.47.0 does not, and a disk image's root partition would differ per build.
apt-get install -y -qq --no-install-recommends -t bookworm-backports \
  mkosi systemd-boot systemd-boot-efi e2fsprogs >/dev/null
mkosi --version

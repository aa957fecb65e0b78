#!/bin/sh
# Builds berth's guest kernel: Linux from a Debian linux-source tarball, with berth's patches (PATCHES/*.patch, in
# name order), allnoconfig plus berth-guest.config.
# Usage: build.sh SOURCE.tar.xz CONFIG-FRAGMENT PATCHES TREE OUT
# TREE keeps the unpacked, built source between builds (a new fragment rebuilds only what it changes); OUT gets
# vmlinux, modules/*.ko and release, and appears only when complete. The caller holds a lock around this.
set -eu
src=$1 fragment=$2 patches=$3 tree=$4 out=$5
[ -f "$out/release" ] && exit 0
if [ ! -f "$tree/Makefile" ]; then
  rm -rf "$tree" && mkdir -p "$tree"
  tar -xf "$src" -C "$tree" --strip-components=1
fi
cd "$tree"
# The tree keeps a copy of the patches applied to it: a different set is taken out again before the new one goes in.
mkdir -p .berth-patches
if ! diff -r -q .berth-patches "$patches" >/dev/null 2>&1; then
  # A patch that does not go in (or out) cleanly leaves the tree in no known state: it is unpacked afresh next time.
  spoil() { echo "guest kernel: patch $1 does not apply to $src" >&2; cd /; rm -rf "$tree"; exit 1; }
  for p in $(ls -r .berth-patches); do patch -s -R -p1 < ".berth-patches/$p" || spoil "$p"; rm ".berth-patches/$p"; done
  for p in $(ls "$patches"); do patch -s -p1 --no-backup-if-mismatch < "$patches/$p" || spoil "$p"; cp "$patches/$p" .berth-patches/; done
fi
# The same sources and fragment give the same kernel, whoever builds it and when.
export KBUILD_BUILD_USER=berth KBUILD_BUILD_HOST=berth KBUILD_BUILD_TIMESTAMP='2026-01-01 00:00:00 UTC'
make -s allnoconfig KCONFIG_ALLCONFIG="$fragment"
# An option whose dependencies are missing is silently dropped by Kconfig: name each one instead.
missing=$(grep -E '^CONFIG_' "$fragment" | while read -r line; do grep -qxF "$line" .config || echo "$line"; done)
if [ -n "$missing" ]; then
  echo "guest kernel: Kconfig dropped these options of $fragment (a dependency is not enabled):" $missing >&2
  exit 1
fi
make -s -j"$(nproc)" vmlinux modules
rm -rf "$out.tmp" && mkdir -p "$out.tmp/modules"
cp vmlinux "$out.tmp/vmlinux"
find . -name '*.ko' -exec cp {} "$out.tmp/modules/" \;
make -s kernelrelease > "$out.tmp/release"
mv "$out.tmp" "$out"

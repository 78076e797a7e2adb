#!/usr/bin/env bash
# The lab guest base image: Debian 12 (bookworm) minbase with cloud-init (NoCloud),
# openssh-server and qemu-guest-agent, booted by the lab with direct kernel boot.
#
# Why a script: every step is a Debian tool (debootstrap, apt, mkfs.ext4, qemu-img), and
# a reader should be able to follow and rerun them by hand. `sombrero lab image build`
# runs it in two phases and builds the Docker image archive between them (in Rust):
#
#   build-image.sh rootfs WORK      debootstrap, configure, stage packages, uv, mise
#   build-image.sh disk WORK OUT    ext4 filesystem -> qcow2, kernel and initrd -> OUT
#
# Network: downloads from this machine's own Debian mirror (read from its apt sources),
# PyPI (uv) and npm (mise) only; the image it produces reaches nothing (the lab's guests
# have no outbound network).
# Lines starting with "==> " are progress steps; everything else is the build log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
phase="${1:?usage: build-image.sh rootfs WORK | disk WORK OUT}"
work="${2:?work directory missing}"
# The Debian archive this machine's apt already uses (deb822 or one-line sources).
host_mirror() {
    local found
    found=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    if [ -z "$found" ]; then
        found=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
    fi
    [ -n "$found" ] || { echo "no Debian mirror in this machine's apt sources; set SOMBRERO_DEBIAN_MIRROR" >&2; exit 1; }
    echo "$found"
}
mirror="${SOMBRERO_DEBIAN_MIRROR:-$(host_mirror)}"
uv_version="0.13.9"
mise_version="2026.9.15"
rootfs="$work/rootfs"

packages() { grep -v '^\s*#' "$here/$1" | grep -v '^\s*$' | paste -sd' ' -; }

in_chroot() { LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$rootfs" "$@"; }

mount_proc() {
    mountpoint -q "$rootfs/proc" || mount -t proc proc "$rootfs/proc"
    trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
}

rootfs_phase() {
    rm -rf "$rootfs"
    mkdir -p "$work"
    echo "==> debootstrap bookworm (minbase + $(packages packages-base.txt | wc -w) packages)"
    debootstrap --variant=minbase --include="$(packages packages-base.txt | tr ' ' ',')" \
        bookworm "$rootfs" "$mirror"
    mount_proc

    echo "==> configure the guest (cloud-init NoCloud, no machine-id, no host keys)"
    install -m 0644 "$here/cloud.cfg" "$rootfs/etc/cloud/cloud.cfg.d/90-sombrero-lab.cfg"
    printf 'LABEL=lab-root / ext4 defaults,errors=remount-ro 0 1\n' >"$rootfs/etc/fstab"
    printf 'localhost\n' >"$rootfs/etc/hostname"
    : >"$rootfs/etc/machine-id"
    rm -f "$rootfs/var/lib/dbus/machine-id" "$rootfs"/etc/ssh/ssh_host_*
    # Nothing to fetch offline: no periodic apt runs competing for the guest's CPU.
    in_chroot systemctl disable apt-daily.timer apt-daily-upgrade.timer 2>/dev/null || true
    in_chroot systemctl enable systemd-networkd systemd-resolved

    echo "==> stage packages for an offline apt-get install ($(packages packages-staged.txt | wc -w) requested)"
    cp --remove-destination /etc/resolv.conf "$rootfs/etc/resolv.conf"
    printf 'deb %s bookworm main\n' "$mirror" >"$rootfs/etc/apt/sources.list"
    in_chroot apt-get update -qq
    # shellcheck disable=SC2046 # one word per package
    in_chroot apt-get install -y -qq --download-only $(packages packages-staged.txt)
    repo="$rootfs/var/local/sombrero-apt"
    mkdir -p "$repo"
    mv "$rootfs"/var/cache/apt/archives/*.deb "$repo/"
    (cd "$repo" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null)
    echo "    $(ls "$repo"/*.deb | wc -l) packages, $(du -sh "$repo" | cut -f1)"

    echo "==> busybox-static for the Docker image archive"
    rm -rf "$work/busybox" && mkdir -p "$work/busybox"
    (cd "$rootfs/tmp" && in_chroot sh -c 'cd /tmp && apt-get download -qq busybox-static')
    dpkg-deb -x "$rootfs"/tmp/busybox-static_*.deb "$work/busybox"
    rm -f "$rootfs"/tmp/busybox-static_*.deb

    echo "==> uv $uv_version (PyPI wheel) and mise $mise_version (npm)"
    tools="$work/tools" && rm -rf "$tools" && mkdir -p "$tools"
    mkdir -p "$rootfs/usr/local/bin"
    if python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --platform manylinux_2_17_x86_64 --python-version 3.11 \
        -d "$tools" "uv==$uv_version"; then
        python3 - "$tools" "$rootfs/usr/local/bin" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "uv-*.whl"))[0]
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if "/scripts/" in name and os.path.basename(name) in ("uv", "uvx"):
            target = os.path.join(sys.argv[2], os.path.basename(name))
            with open(target, "wb") as out:
                out.write(archive.read(name))
            os.chmod(target, 0o755)
PY
    else
        echo "    uv: PyPI unreachable, absent in the lab"
    fi
    if (cd "$tools" && npm pack --silent "@jdxcode/mise-linux-x64@$mise_version" >/dev/null); then
        tar -xzf "$tools"/jdxcode-mise-linux-x64-*.tgz -C "$tools"
        install -m 0755 "$tools/package/bin/mise" "$rootfs/usr/local/bin/mise"
    else
        echo "    mise: npm unreachable, absent in the lab"
    fi

    echo "==> point apt at the local repository only"
    printf 'deb [trusted=yes] file:/var/local/sombrero-apt ./\n' >"$rootfs/etc/apt/sources.list"
    rm -rf "$rootfs"/var/lib/apt/lists/*
    in_chroot apt-get update -qq
    in_chroot apt-get clean
    ln -sf ../run/systemd/resolve/stub-resolv.conf "$rootfs/etc/resolv.conf"
    mkdir -p "$rootfs/var/local/sombrero/images"
}

disk_phase() {
    out="${3:?output directory missing}"
    mkdir -p "$out"
    echo "==> ext4 filesystem from the root tree (mkfs.ext4 -d, no loop device)"
    raw="$work/disk.raw"
    rm -f "$raw"
    mkfs.ext4 -q -F -L lab-root -d "$rootfs" "$raw" 3G
    echo "==> qcow2 image, kernel and initrd"
    qemu-img convert -O qcow2 "$raw" "$out/disk.qcow2"
    rm -f "$raw"
    cp "$(readlink -f "$rootfs/vmlinuz")" "$out/vmlinuz"
    cp "$(readlink -f "$rootfs/initrd.img")" "$out/initrd.img"
    echo "    $(du -sh "$out/disk.qcow2" | cut -f1) qcow2"
}

case "$phase" in
rootfs) rootfs_phase ;;
disk) disk_phase "$@" ;;
*)
    echo "unknown phase $phase" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# The boot-time cost of booting a local image through its own boot loader (SeaBIOS, GRUB, the
# kernel GRUB's menu names) against booting the same disk's kernel directly (QEMU -kernel and
# -initrd, how local images booted before base recipe 4), side by side: ROUNDS (default 3)
# alternating boots of each on the same disk, with Bakery's QEMU settings and no seed data.
# Prints, per boot, the seconds until the kernel's first line and until the serial console's
# login prompt, then the medians and the ratio; paste the result into BENCHMARKS.md.
#   scripts/bench-boot.sh DISK.qcow2 [ROUNDS]
# UNTIL=kernel stops each boot at the kernel's first line (what differs between the two ways;
# from there both run the same kernel, initramfs and system), for a quick run on a busy host.
# DISK is a base image's disk, e.g. $BAKERY_DATA_DIR/images/ami-…/disk.qcow2 (`bakery images`
# names the base; `bakery image bootstrap debian-12` makes one). Boots one guest at a time.
set -euo pipefail
until=${UNTIL:-login}
disk=${1:?usage: scripts/bench-boot.sh DISK.qcow2 [ROUNDS]}
rounds=${2:-3}
for tool in qemu-system-x86_64 qemu-img debugfs; do
  command -v $tool >/dev/null || { echo "$tool is missing (scripts/setup.sh installs it)" >&2; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/bakery-bench-boot.XXXXXX")
qemu_pid=
trap '[ -n "$qemu_pid" ] && kill $qemu_pid 2>/dev/null; rm -rf "$work"' EXIT

# The kernel, initramfs and root filesystem of the disk, for the direct boot.
qemu-img convert -O raw "$disk" "$work/disk.raw"
fs="$work/disk.raw?offset=1048576"
version=$(debugfs -R 'ls /boot' "$fs" 2>/dev/null | tr -s ' ' '\n' | sed -n 's/^vmlinuz-//p' | sort -V | tail -1)
[ -n "$version" ] || { echo "no /boot/vmlinuz-* on the first partition of $disk" >&2; exit 2; }
debugfs -R "dump /boot/vmlinuz-$version $work/vmlinuz" "$fs" 2>/dev/null
debugfs -R "dump /boot/initrd.img-$version $work/initrd.img" "$fs" 2>/dev/null
uuid=$(debugfs -R stats "$fs" 2>/dev/null | sed -n 's/^Filesystem UUID: *//p')
rm "$work/disk.raw"

# boot KIND: prints "KIND KERNEL_SECONDS LOGIN_SECONDS".
boot() {
  local kind=$1 log="$work/console-$1.log"
  rm -f "$log" "$work/overlay.qcow2"
  qemu-img create -q -f qcow2 -F qcow2 -b "$(realpath "$disk")" "$work/overlay.qcow2"
  local args=(-machine q35 -accel tcg,thread=multi -cpu qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16 -smp 2 -m 1024 -nodefaults
    -display none -device virtio-rng-pci
    -drive "file=$work/overlay.qcow2,if=none,id=disk0,format=qcow2,discard=unmap"
    -device virtio-blk-pci,drive=disk0,bootindex=1
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0 -serial "file:$log")
  if [ "$kind" = direct ]; then
    args+=(-kernel "$work/vmlinuz" -initrd "$work/initrd.img"
      -append "root=UUID=$uuid ro console=ttyS0 net.ifnames=0")
  fi
  local start kernel="" now
  start=$(date +%s.%N)
  qemu-system-x86_64 "${args[@]}" >"$work/qemu.log" 2>&1 &
  qemu_pid=$!
  while :; do
    sleep 0.1
    now=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    if [ -z "$kernel" ] && grep -qa "Linux version" "$log" 2>/dev/null; then kernel=$now; fi
    if [ "$until" = kernel ] && [ -n "$kernel" ]; then break; fi
    if grep -qa "login:" "$log" 2>/dev/null; then break; fi
    if ! kill -0 $qemu_pid 2>/dev/null || [ "${now%.*}" -ge 900 ]; then
      echo "the $kind boot did not reach a login prompt; console:" >&2; tail -20 "$log" >&2; exit 1
    fi
  done
  kill $qemu_pid; wait $qemu_pid 2>/dev/null || true; qemu_pid=
  [ "$until" = kernel ] && now=0
  echo "$kind $kernel $now"
}

echo "disk: $disk (kernel $version); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
results=()
for i in $(seq "$rounds"); do
  # Alternate which goes first, so a change in the machine's load hits both alike.
  if [ $((i % 2)) = 1 ]; then order="direct loader"; else order="loader direct"; fi
  for kind in $order; do
    line=$(boot "$kind")
    echo "round $i: $line"
    results+=("$line")
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "${results[@]}" | awk '
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { n[$1]++; k[$1, n[$1]] = $2; l[$1, n[$1]] = $3 }
  END {
    for (kind in n) {
      for (i = 1; i <= n[kind]; i++) { kk[i] = k[kind, i]; ll[i] = l[kind, i] }
      mk[kind] = median(kk, n[kind]); ml[kind] = median(ll, n[kind])
      printf "median %-6s: kernel starts at %5.1f s, login prompt at %5.1f s (%d boots)\n", kind, mk[kind], ml[kind], n[kind]
    }
    printf "boot loader - direct: +%.1f s before the kernel starts (%.1fx)\n", mk["loader"] - mk["direct"], mk["loader"] / mk["direct"]
    if (ml["direct"] > 0)
      printf "boot loader / direct: %.2fx to the login prompt (+%.1f s)\n", ml["loader"] / ml["direct"], ml["loader"] - ml["direct"]
  }'

#!/usr/bin/env bash
# The GitHub Action's container image, built the way this machine can: no registry can be
# reached, so base images cannot be pulled. The Dockerfile's final stage (FROM scratch plus
# COPY --from=build lines) is rebuilt here from a static musl binary built on this machine and
# the machine's CA certificates, with podman (runc runtime, chroot isolation).
#
#   scripts/container-test.sh install   install podman, buildah, runc, musl-tools and the
#                                        Rust musl target if missing
#   scripts/container-test.sh build     build the binary and the image; the last line printed
#                                        is the image name
#   scripts/container-test.sh size      build with the dist profile, as the Dockerfile does,
#                                        then print the image size in bytes
#
# BAKERY_CONTAINER_ARCH=arm64 builds the linux/arm64 binary and image instead, cross-compiled on
# an x86_64 machine: cargo-zigbuild with Zig as the C compiler and linker (PyPI `ziglang` and
# `cargo-zigbuild`, pinned below, in .cache/cross-venv) for aarch64-unknown-linux-musl, and
# `podman build --platform linux/arm64` for the final stage, which runs nothing (FROM scratch,
# COPY), so no emulator is needed. The image is localhost/bakery-action:test-arm64; the binary
# cannot be run here. The release builds arm64 natively instead (.github/workflows/release.yml).
#
# `build` compiles in the dev profile unless BAKERY_CONTAINER_PROFILE says otherwise: the image
# is the same FROM scratch + static binary, and the tests then wait about one minute for a
# fresh clone's build instead of five (the dist profile optimises Bakery and the AWS SDK).
# BAKERY_CONTAINER_CARGO_ARGS adds cargo arguments, e.g. `--no-default-features` for a
# local-only binary that builds in minutes when only the image's mechanics are being tried
# (the tests use the full binary).
# The musl build has its own target directory (target/musl): a first build compiles the AWS
# SDK again for musl (about 10 minutes on 2 cores per profile); later builds recompile only
# Bakery.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST_ARCH=$(uname -m)
ARCH="${BAKERY_CONTAINER_ARCH:-}"
case "$ARCH:$HOST_ARCH" in
  :x86_64 | amd64:x86_64) ARCH=amd64 CROSS= ;;
  arm64:x86_64) CROSS=zig ;;
  :aarch64 | arm64:aarch64) ARCH=arm64 CROSS= ;;
  *) echo "container-test: cannot build BAKERY_CONTAINER_ARCH='$ARCH' on $HOST_ARCH (amd64, or arm64 from x86_64)" >&2; exit 2 ;;
esac
case "$ARCH" in
  amd64) TARGET=x86_64-unknown-linux-musl ;;
  arm64) TARGET=aarch64-unknown-linux-musl ;;
esac
if [ -z "$CROSS" ]; then
  IMAGE=localhost/bakery-action:test
  TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/musl"
  CONTEXT="$PWD/.cache/container-context"
else
  IMAGE=localhost/bakery-action:test-$ARCH
  # Its own directory: the cross build's environment (Zig as CC) would otherwise make Cargo
  # rebuild the native build's C dependencies.
  TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/musl-cross"
  CONTEXT="$PWD/.cache/container-context-$ARCH"
fi
CROSS_VENV="$PWD/.cache/cross-venv"
# Pinned: the versions the arm64 size in BENCHMARKS.md was measured with.
CROSS_PACKAGES=(ziglang==0.17.1 cargo-zigbuild==0.24.1)

install() {
  local need=()
  command -v podman >/dev/null 2>&1 || need+=(podman)
  command -v buildah >/dev/null 2>&1 || need+=(buildah)
  command -v runc >/dev/null 2>&1 || need+=(runc)
  command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)
  if [ -n "$CROSS" ]; then
    command -v llvm-strip >/dev/null 2>&1 || need+=(llvm)
  fi
  scripts/apt-install.sh ${need[@]+"${need[@]}"}
  if ! rustup target list --installed | grep -qx "$TARGET"; then
    echo "container-test: adding the Rust target $TARGET" >&2
    rustup target add "$TARGET" >&2
  fi
  if [ -n "$CROSS" ] && [ "$(cat "$CROSS_VENV/.installed" 2>/dev/null)" != "${CROSS_PACKAGES[*]}" ]; then
    python3 -c 'import ensurepip' >/dev/null 2>&1 || scripts/apt-install.sh python3-venv
    echo "container-test: installing ${CROSS_PACKAGES[*]} into $CROSS_VENV" >&2
    rm -rf "$CROSS_VENV"
    python3 -m venv "$CROSS_VENV"
    "$CROSS_VENV/bin/pip" install --quiet --disable-pip-version-check "${CROSS_PACKAGES[@]}" >&2
    printf '%s\n' "${CROSS_PACKAGES[*]}" >"$CROSS_VENV/.installed"
  fi
}

# The Dockerfile's last stage, with each `COPY --from=build SRC DST` turned into a COPY from
# the local context. Anything but FROM scratch / COPY --from=build / ENV / ENTRYPOINT / CMD /
# LABEL in that stage is refused: the test must build what users get.
final_stage() {
  awk '/^FROM /{stage=""} {stage = stage $0 "\n"} END{printf "%s", stage}' Dockerfile |
    while IFS= read -r line; do
      case "$line" in
        "" | "#"*) ;;
        "FROM scratch") echo "$line" ;;
        "FROM "*) echo "container-test: the final stage must be FROM scratch, not: $line" >&2; exit 1 ;;
        "COPY --from=build /bakery "*) echo "COPY bakery ${line#COPY --from=build /bakery }" ;;
        "COPY --from=build /etc/ssl/certs/ca-certificates.crt "*)
          echo "COPY ca-certificates.crt ${line#COPY --from=build /etc/ssl/certs/ca-certificates.crt }" ;;
        "ENV "* | "ENTRYPOINT "* | "CMD "* | "LABEL "*) echo "$line" ;;
        *) echo "container-test: the final stage has a line this test cannot rebuild: $line" >&2; exit 1 ;;
      esac
    done
}

# The variables Cargo sets for a crate's build and tests. A test that calls this script passes
# them on; some build scripts (ring's) track them, and a change makes Cargo rebuild ring and the
# AWS SDK above it, so the build runs without them.
crate_env_unset=()
for var in $(compgen -e); do
  case "$var" in
    CARGO_PKG_* | CARGO_MANIFEST_* | CARGO_CRATE_NAME | CARGO_BIN_* | CARGO_PRIMARY_PACKAGE | \
      CARGO_TARGET_TMPDIR | CARGO_RUSTC_CURRENT_DIR | CARGO_CFG_* | OUT_DIR)
      crate_env_unset+=(-u "$var") ;;
  esac
done

build() {
  install
  local profile="${BAKERY_CONTAINER_PROFILE:-dev}" profile_dir
  case "$profile" in
    dev) profile_dir=debug ;;
    *) profile_dir="$profile" ;;
  esac
  echo "container-test: building bakery for $TARGET ($profile profile${CROSS:+, cross-compiled with Zig})" >&2
  local extra=() cargo=(cargo build) path="$PATH"
  read -r -a extra <<<"${BAKERY_CONTAINER_CARGO_ARGS:-}"
  if [ -n "$CROSS" ]; then
    # cargo-zigbuild finds Zig as `python3 -m ziglang`, the venv's python3 first on PATH.
    cargo=(cargo zigbuild)
    path="$CROSS_VENV/bin:$PATH"
  fi
  env "${crate_env_unset[@]}" CARGO_TARGET_DIR="$TARGET_DIR" PATH="$path" \
    "${cargo[@]}" --profile "$profile" --locked --target "$TARGET" --bin bakery \
    ${extra[@]+"${extra[@]}"} >&2
  local bin="$TARGET_DIR/$TARGET/$profile_dir/bakery"
  if readelf -l "$bin" | grep -q 'INTERP'; then
    echo "container-test: $bin is dynamically linked; the action's image needs a static binary" >&2
    exit 1
  fi
  rm -rf "$CONTEXT"
  mkdir -p "$CONTEXT"
  cp "$bin" "$CONTEXT/bakery"
  # The Dockerfile's `strip /bakery`; binutils' strip knows only this machine's architecture.
  if [ -n "$CROSS" ]; then
    llvm-strip "$CONTEXT/bakery"
  else
    strip "$CONTEXT/bakery"
  fi
  cp /etc/ssl/certs/ca-certificates.crt "$CONTEXT/ca-certificates.crt"
  final_stage >"$CONTEXT/Containerfile"
  grep -q '^COPY bakery /bakery$' "$CONTEXT/Containerfile" || {
    echo "container-test: the Dockerfile's final stage does not copy /bakery" >&2
    exit 1
  }
  podman --runtime runc build --isolation chroot --pull=never --quiet \
    --platform "linux/$ARCH" --tag "$IMAGE" --file "$CONTEXT/Containerfile" "$CONTEXT" >&2
  echo "$IMAGE"
}

case "${1:-build}" in
  install) install ;;
  build) build ;;
  size)
    BAKERY_CONTAINER_PROFILE="${BAKERY_CONTAINER_PROFILE:-dist}" build >/dev/null
    podman image inspect "$IMAGE" --format '{{.Size}}'
    ;;
  *) echo "usage: $0 install|build|size" >&2; exit 2 ;;
esac

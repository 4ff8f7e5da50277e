#!/usr/bin/env bash
# The steps of .github/workflows/release.yml that are plain file work, kept here so that the
# workflow and the tests run the same code:
#
#   scripts/release.sh meta REF_NAME REPOSITORY
#       From the tag (`v1.2.3`) and `owner/name`, prints `version=1.2.3`, `major=1` and
#       `image=ghcr.io/owner/name` (lower case, as registries want), one per line, for
#       $GITHUB_OUTPUT. Refuses anything but vMAJOR.MINOR.PATCH.
#   scripts/release.sh action-yml IMAGE_REF [ACTION_YML]
#       Prints action.yml (default: the repository's) with `runs.image: Dockerfile` replaced by
#       `docker://IMAGE_REF`, where IMAGE_REF is `registry/name:VERSION@sha256:DIGEST`: the
#       release's action runs the published image, pinned by digest, instead of building it.
#   scripts/release.sh checksums DIR
#       Writes DIR/SHA256SUMS for every other file in DIR (`sha256sum --check` reads it).
#   scripts/release.sh dry-run [OUT_DIR]
#       What of the release can run on this machine (no registry, no arm64 runner): the static
#       musl binary and the image's final stage built by scripts/container-test.sh (the
#       BAKERY_CONTAINER_PROFILE it reads; the release uses `release`), the binary named as the
#       release names it, its checksum, and the release's action.yml for the image built.
#
# Exit codes: 0 done, 2 bad arguments or a file that is not as expected.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "release: $*" >&2
  exit 2
}

VERSION_RE='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$'
IMAGE_REF_RE='^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+:[0-9]+\.[0-9]+\.[0-9]+@sha256:[0-9a-f]{64}$'

meta() {
  [ $# -eq 2 ] || die "usage: scripts/release.sh meta REF_NAME OWNER/NAME"
  local tag="$1" repo="$2"
  [[ "$tag" =~ $VERSION_RE ]] ||
    die "tag '$tag' is not a version tag: expected vMAJOR.MINOR.PATCH, e.g. v1.2.3"
  local major="${BASH_REMATCH[1]}"
  [[ "$repo" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] ||
    die "repository '$repo' is not OWNER/NAME"
  echo "version=${tag#v}"
  echo "major=$major"
  echo "image=ghcr.io/${repo,,}"
}

action_yml() {
  if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    die "usage: scripts/release.sh action-yml IMAGE_REF [ACTION_YML]"
  fi
  local ref="$1" file="${2:-action.yml}"
  [[ "$ref" =~ $IMAGE_REF_RE ]] ||
    die "image reference '$ref' is not REGISTRY/NAME:VERSION@sha256:DIGEST (lower case, 64 hex digits)"
  [ -f "$file" ] || die "$file: no such file"
  # Exactly one `image: Dockerfile`, indented under `runs:`; anything else means action.yml
  # changed shape (or is already a release's) and a person should look.
  local n
  n=$(awk '
    /^[^ #]/ { in_runs = ($0 ~ /^runs:[ ]*$/) }
    in_runs && /^  image: Dockerfile[ ]*$/ { n++ }
    END { print n + 0 }' "$file")
  [ "$n" -eq 1 ] ||
    die "$file: expected one line '  image: Dockerfile' under 'runs:', found $n"
  awk -v ref="$ref" '
    /^[^ #]/ { in_runs = ($0 ~ /^runs:[ ]*$/) }
    in_runs && /^  image: Dockerfile[ ]*$/ {
      print "  # The image published by the release workflow for this version, pinned by digest."
      print "  image: \"docker://" ref "\""
      next
    }
    { print }' "$file"
}

checksums() {
  [ $# -eq 1 ] || die "usage: scripts/release.sh checksums DIR"
  local dir="$1"
  [ -d "$dir" ] || die "$dir: no such directory"
  (
    cd "$dir"
    local files=()
    for f in *; do
      [ -f "$f" ] && [ "$f" != SHA256SUMS ] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || die "$dir: no files to checksum"
    sha256sum -- "${files[@]}" >SHA256SUMS
  )
}

dry_run() {
  local out="${1:-.cache/release-dry-run}"
  local image arch
  case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    *) die "no release is built for $(uname -m)" ;;
  esac
  image=$(scripts/container-test.sh build | tail -1)
  rm -rf "$out"
  mkdir -p "$out/dist"
  cp .cache/container-context/bakery "$out/dist/bakery-linux-$arch"
  "$out/dist/bakery-linux-$arch" --version >&2
  checksums "$out/dist"
  # The digest the registry would give is that of the pushed manifest; the local image's
  # digest stands in for it.
  local digest
  digest=$(podman image inspect "$image" --format '{{.Digest}}')
  action_yml "ghcr.io/bakery-dry-run/bakery:0.0.0@$digest" >"$out/action.yml"
  echo "$out"
}

case "${1:-}" in
  meta) shift; meta "$@" ;;
  action-yml) shift; action_yml "$@" ;;
  checksums) shift; checksums "$@" ;;
  dry-run) shift; dry_run "$@" ;;
  *) die "usage: scripts/release.sh meta|action-yml|checksums|dry-run ..." ;;
esac

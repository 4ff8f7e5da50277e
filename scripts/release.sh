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
#   scripts/release.sh release-commit ACTION_YML
#       Through GitHub's REST API (GITHUB_API_URL, default https://api.github.com; token in
#       GH_TOKEN): makes the release commit, whose tree is commit SOURCE's with ACTION_YML as
#       action.yml and whose parent is SOURCE, then points the tags TAG (vX.Y.Z) and its major
#       (vX) at it, creating or moving them. REPOSITORY is OWNER/NAME. Prints `commit=SHA`.
#       No git credentials on disk, and the commit is made (and signed) by GitHub.
#   scripts/release.sh dry-run [--full] [OUT_DIR]
#       What of the release can run on this machine (no registry, no arm64 runner), into OUT_DIR
#       (default .cache/release-dry-run): the static musl binary and the image's final stage
#       built by scripts/container-test.sh, the binary named, checked and measured as the
#       build job does (OUT_DIR/summary.txt stands in for the job summary), the release's
#       action.yml pinned to the image's digest, and SHA256SUMS over both, in OUT_DIR/dist.
#       Without --full: this machine's architecture, in the profile BAKERY_CONTAINER_PROFILE
#       names (default dev, minutes; tests/action_release.rs runs this). With --full: what the
#       release builds, the `dist` profile for linux/amd64 and linux/arm64 (cross-compiled with
#       Zig, see scripts/container-test.sh; its binary cannot be run here): from cold, over an
#       hour per architecture on two cores (BENCHMARKS.md), so scripts/test.sh does not run it.
#
# Exit codes: 0 done, 1 GitHub refused a request, 2 bad arguments or a file that is not as
# expected.
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

# github METHOD URL [OUT_FILE]: one REST request, the JSON body (if any) on stdin; prints the
# HTTP status. The token goes to curl through a file descriptor, not the command line.
github() {
  local method="$1" url="$2" out="${3:-/dev/null}" args=()
  [ "$method" = GET ] || args=(--data-binary @- --header 'Content-Type: application/json')
  curl --silent --show-error --max-time 60 --request "$method" \
    --header @<(printf 'Authorization: Bearer %s\n' "$GH_TOKEN") \
    --header 'Accept: application/vnd.github+json' \
    --header 'X-GitHub-Api-Version: 2022-11-28' \
    ${args[@]+"${args[@]}"} --output "$out" --write-out '%{http_code}' "$url"
}

# github_json METHOD URL JQ_FILTER: a request that must succeed (2xx); prints the filter's
# value from the answer.
github_json() {
  local method="$1" url="$2" filter="$3" answer status
  answer=$(mktemp)
  status=$(github "$method" "$url" "$answer") || { rm -f "$answer"; die "$method $url: no answer"; }
  if [[ "$status" != 2?? ]]; then
    echo "release: $method $url: HTTP $status: $(head -c 500 "$answer")" >&2
    rm -f "$answer"
    exit 1
  fi
  jq -er "$filter" "$answer" || { rm -f "$answer"; die "$method $url: no $filter in the answer"; }
  rm -f "$answer"
}

release_commit() {
  [ $# -eq 1 ] || die "usage: scripts/release.sh release-commit ACTION_YML"
  local file="$1" v
  [ -f "$file" ] || die "$file: no such file"
  for v in GH_TOKEN REPOSITORY SOURCE TAG; do
    [ -n "${!v:-}" ] || die "$v is not set"
  done
  [[ "$TAG" =~ $VERSION_RE ]] || die "TAG '$TAG' is not vMAJOR.MINOR.PATCH"
  [[ "$SOURCE" =~ ^[0-9a-f]{40}$ ]] || die "SOURCE '$SOURCE' is not a commit SHA (40 hex digits)"
  [[ "$REPOSITORY" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || die "REPOSITORY '$REPOSITORY' is not OWNER/NAME"
  local api="${GITHUB_API_URL:-https://api.github.com}/repos/$REPOSITORY"
  local base_tree blob tree commit status t
  base_tree=$(github_json GET "$api/git/commits/$SOURCE" .tree.sha)
  blob=$(jq -n --rawfile content "$file" '{content: $content, encoding: "utf-8"}' |
    github_json POST "$api/git/blobs" .sha)
  tree=$(jq -n --arg base "$base_tree" --arg blob "$blob" \
    '{base_tree: $base, tree: [{path: "action.yml", mode: "100644", type: "blob", sha: $blob}]}' |
    github_json POST "$api/git/trees" .sha)
  commit=$(jq -n --arg tree "$tree" --arg parent "$SOURCE" --arg tag "$TAG" \
    '{message: ("Release " + $tag + ": action.yml runs the published image"), tree: $tree, parents: [$parent]}' |
    github_json POST "$api/git/commits" .sha)
  for t in "$TAG" "${TAG%%.*}"; do
    status=$(github GET "$api/git/ref/tags/$t")
    case "$status" in
      200) jq -n --arg sha "$commit" '{sha: $sha, force: true}' |
        github_json PATCH "$api/git/refs/tags/$t" .object.sha >/dev/null ;;
      404) jq -n --arg ref "refs/tags/$t" --arg sha "$commit" '{ref: $ref, sha: $sha}' |
        github_json POST "$api/git/refs" .object.sha >/dev/null ;;
      *) echo "release: GET $api/git/ref/tags/$t: HTTP $status" >&2; exit 1 ;;
    esac
    echo "release: tag $t -> $commit" >&2
  done
  echo "commit=$commit"
}

dry_run() {
  local full=
  if [ "${1:-}" = --full ]; then
    full=1
    shift
  fi
  [ $# -le 1 ] || die "usage: scripts/release.sh dry-run [--full] [OUT_DIR]"
  local out="${1:-.cache/release-dry-run}" host arches=()
  case "$(uname -m)" in
    x86_64) host=amd64 ;;
    aarch64) host=arm64 ;;
    *) die "no release is built for $(uname -m)" ;;
  esac
  if [ -n "$full" ]; then
    [ "$host" = amd64 ] || die "--full cross-compiles linux/arm64 from x86_64 only"
    arches=(amd64 arm64)
    export BAKERY_CONTAINER_PROFILE=dist
  else
    arches=("$host")
  fi
  rm -rf "$out"
  mkdir -p "$out/dist"
  local arch image context bin start size digest=
  for arch in "${arches[@]}"; do
    start=$SECONDS
    image=$(BAKERY_CONTAINER_ARCH="$arch" scripts/container-test.sh build | tail -1)
    context=.cache/container-context
    [ "$arch" = "$host" ] || context=".cache/container-context-$arch"
    # The build job's checks: static, the right machine, runs (where it can).
    bin="$out/dist/bakery-linux-$arch"
    cp "$context/bakery" "$bin"
    if readelf -l "$bin" | grep -q INTERP; then
      die "$bin is dynamically linked"
    fi
    case "$arch:$(readelf -h "$bin" | awk -F: '/Machine:/ { gsub(/^ +/, "", $2); print $2 }')" in
      "amd64:Advanced Micro Devices X86-64" | "arm64:AArch64") ;;
      *) die "$bin is not a linux/$arch binary: $(readelf -h "$bin" | grep Machine:)" ;;
    esac
    if [ "$arch" = "$host" ]; then
      "$bin" --version >&2
      digest=$(podman image inspect "$image" --format '{{.Digest}}')
    fi
    size=$(podman image inspect "$image" --format '{{.Size}}')
    echo "bakery-linux-$arch: $(stat -c %s "$bin") bytes; image $image (linux/$arch): $size bytes; built in $((SECONDS - start)) s" |
      tee -a "$out/summary.txt" >&2
  done
  # The digest the registry would give is that of the pushed multi-architecture index; the
  # local image's digest stands in for it. action.yml before the checksums, as in the release.
  action_yml "ghcr.io/bakery-dry-run/bakery:0.0.0@$digest" >"$out/dist/action.yml"
  checksums "$out/dist"
  echo "$out"
}

case "${1:-}" in
  meta) shift; meta "$@" ;;
  action-yml) shift; action_yml "$@" ;;
  checksums) shift; checksums "$@" ;;
  release-commit) shift; release_commit "$@" ;;
  dry-run) shift; dry_run "$@" ;;
  *) die "usage: scripts/release.sh meta|action-yml|checksums|release-commit|dry-run ..." ;;
esac

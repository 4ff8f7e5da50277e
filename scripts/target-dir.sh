# Sourced (from the repository's root) by the scripts that build. Build products go to a cache
# that every clone on this machine shares, so that a fresh clone does not compile the AWS SDK
# again (minutes on two cores); CARGO_TARGET_DIR overrides the place.
# Cargo judges the bakery crate fresh by file times, so a clone whose files are older than
# another clone's build would run that build. When the clone changes, src/lib.rs is touched:
# Bakery itself (not its dependencies) is compiled again from this clone.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bakery/target}"
mkdir -p "$CARGO_TARGET_DIR"
if [ "$(cat "$CARGO_TARGET_DIR/.bakery-clone" 2>/dev/null)" != "$PWD" ]; then
  touch src/lib.rs
  printf '%s\n' "$PWD" > "$CARGO_TARGET_DIR/.bakery-clone"
fi

#!/usr/bin/env bash
# Measures how many real Goss files Bakery accepts unchanged (BENCHMARKS.md, "Goss files").
#
#   scripts/goss-corpus.sh CORPUS_DIR [BAKERY]
#
# CORPUS_DIR holds a checkout of each repository of benches/goss-corpus/corpus.tsv at the commit
# listed there, in a directory named owner+name. Each file is read the way its repository runs
# Goss (the vars files, inline vars and environment given in the list) by
# `bakery verify --goss FILE --image not-an-image`: a file Bakery accepts gets as far as the
# image id, which is then refused; a file Bakery refuses stops before, with the reason.
# Nothing boots. Prints one line per file and the totals.
set -euo pipefail

corpus=${1:?usage: scripts/goss-corpus.sh CORPUS_DIR [BAKERY]}
bakery=${2:-bakery}
list="$(dirname "$0")/../benches/goss-corpus/corpus.tsv"
data=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$data" "$work"' EXIT

accepted=0 refused=0 goss_ok=0 goss_ok_accepted=0
while IFS=$'\t' read -r repo _commit path vars inline env goss _features; do
    [[ -z "$repo" || "$repo" == \#* || "$repo" == repo ]] && continue
    dir="$corpus/${repo/\//+}"
    args=(verify --goss "$dir/$path" --image not-an-image)
    if [[ "$vars" != "-" ]]; then
        IFS=, read -ra files <<<"$vars"
        for v in "${files[@]}"; do args+=(--vars "$dir/$v"); done
    fi
    [[ "$inline" != "-" ]] && args+=(--vars-inline "$inline")
    envs=()
    if [[ "$env" != "-" ]]; then IFS=';' read -ra envs <<<"$env"; fi
    out=$(cd "$work" && env ${envs[@]+"${envs[@]}"} BAKERY_DATA_DIR="$data" "$bakery" "${args[@]}" 2>&1 || true)
    if grep -q "is not an image id" <<<"$out"; then
        verdict=accepted
        accepted=$((accepted + 1))
    else
        verdict="refused: $(grep -v '^warning:' <<<"$out" | grep -v '^no pipeline file' | head -1)"
        refused=$((refused + 1))
    fi
    if [[ "$goss" == yes ]]; then
        goss_ok=$((goss_ok + 1))
        [[ "$verdict" == accepted ]] && goss_ok_accepted=$((goss_ok_accepted + 1))
    fi
    printf '%s/%s\tgoss:%s\t%s\n' "$repo" "$path" "$goss" "$verdict"
done <"$list"
echo "files: $((accepted + refused)); accepted: $accepted; refused: $refused"
echo "of the $goss_ok files Goss accepts, Bakery accepts $goss_ok_accepted"

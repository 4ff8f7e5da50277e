# The GitHub Action's image: one statically linked `bakery` binary and CA certificates.
#
# Two ways it is built:
# - Released versions: .github/workflows/release.yml builds this file once per architecture on
#   a native runner (linux/amd64, linux/arm64), takes the `binary` stage out as the release's
#   static binaries, pushes the final stage to GitHub's container registry, and the release's
#   action.yml names that image (`runs.image: docker://…`), so users' jobs only pull it.
# - `uses: ./` and a branch or commit that is not a release: action.yml says
#   `image: Dockerfile`, and the runner builds this file at the start of the job.
#
# scripts/container-test.sh builds the final stage below from a binary built on the test
# machine and runs the entrypoint in it; keep that stage to `COPY --from=build` lines plus
# ENV/ENTRYPOINT/CMD/LABEL so the test builds exactly what users get.

FROM docker.io/library/rust:1.95-bookworm AS build
# The musl target of the machine building the image: x86_64 or aarch64.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY . .
# musl links statically by default; libssh2's OpenSSL is built from source for this target
# (Cargo.toml), and the AWS SDK's TLS (aws-lc) with musl-gcc. The `dist` profile is the
# release profile with link-time optimisation for a smaller binary (Cargo.toml).
RUN target="$(uname -m)-unknown-linux-musl" \
 && cargo build --profile dist --locked --target "$target" --bin bakery \
 && cp "target/$target/dist/bakery" /bakery \
 && strip /bakery \
 && /bakery --version

# The binary alone, for the release's downloads (`--target binary --output type=local,…`).
FROM scratch AS binary
COPY --from=build /bakery /bakery

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /bakery /bakery
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["/bakery"]
CMD ["action"]

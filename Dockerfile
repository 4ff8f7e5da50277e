# The GitHub Action's image: one statically linked `bakery` binary and CA certificates.
#
# Built by GitHub's runners from public base images (`runs.image: Dockerfile` in action.yml).
# scripts/container-test.sh builds the final stage below from a binary built on the test
# machine and runs the entrypoint in it; keep that stage to `COPY --from=build` lines plus
# ENV/ENTRYPOINT/CMD/LABEL so the test builds exactly what users get.

FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# musl links statically by default; libssh2's OpenSSL is built from source for this target
# (Cargo.toml), and the AWS SDK's TLS (aws-lc) with musl-gcc.
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin bakery \
 && cp target/x86_64-unknown-linux-musl/release/bakery /bakery \
 && strip /bakery \
 && /bakery --version

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /bakery /bakery
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["/bakery"]
CMD ["action"]

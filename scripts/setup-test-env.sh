#!/usr/bin/env bash
# Installs what the tests need from Debian when it is missing: PostgreSQL 15
# (server, pg_verifybackup, pg_waldump, pgbench), the lz4/zstd/gzip CLIs used to
# cross-check our archives, libisal2 (fast CRC-32C), libxxhash0 (fast XXH3-128), openssl (test certificates for TLS), and an unprivileged "postgres" user (the server
# refuses to run as root). Servers 13, 14, 16, 17, 18 come from npm (package.json).
set -euo pipefail
need=()
[ -x /usr/lib/postgresql/15/bin/pg_verifybackup ] || need+=(postgresql-15 postgresql-client-15)
command -v lz4 >/dev/null || need+=(lz4)
command -v zstd >/dev/null || need+=(zstd)
command -v gzip >/dev/null || need+=(gzip)
command -v openssl >/dev/null || need+=(openssl) # test certificates for the TLS tests
# The linker's cache read once (a `ldconfig -p | grep -q` pipe fails now and then under pipefail:
# grep -q exits at the first match and ldconfig dies of SIGPIPE, status 141).
libs=$(ldconfig -p 2>/dev/null || true)
# Intel ISA-L: pgpitr's fast CRC-32C (storage/filter/crc32c.ts); without it pgpitr falls back to @node-rs/crc32
[[ $libs == *'libisal.so.2 '* ]] || need+=(libisal2)
# libxxhash: the backup sets' content digest (storage/filter/xxh128.ts); without it pgpitr uses hash-wasm's build
[[ $libs == *'libxxhash.so.0 '* ]] || need+=(libxxhash0)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${need[*]} (install them as root)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --create-home --shell /bin/bash postgres
fi

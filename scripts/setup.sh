#!/usr/bin/env bash
# Installs what building and running rfo locally needs, skipping what is already there:
# - Debian packages for building the Rust workspace (librdkafka is compiled from source by
#   rdkafka-sys, which needs a C toolchain, OpenSSL and zlib headers), python3 for the scripts
#   and the openssl command, which makes the local PostgreSQL's TLS certificate;
# - PostgreSQL server binaries, if no `initdb` is found;
# - the wasm32-wasip2 Rust target for the plugins.
# Run as root or as a user with sudo. Safe to run again.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_PACKAGES=(build-essential pkg-config libssl-dev openssl zlib1g-dev python3 python3-venv curl)
apt_updated=false

apt_install() {
    if [[ "$apt_updated" == false ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=true
    fi
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

install_debian_packages() {
    local missing=() package
    for package in "${APT_PACKAGES[@]}"; do
        package_installed "$package" || missing+=("$package")
    done
    if ((${#missing[@]} > 0)); then
        apt_install "${missing[@]}"
    else
        log "Debian packages present: ${APT_PACKAGES[*]}"
    fi
}

install_postgres() {
    local bin
    if bin="$(find_postgres_bin)"; then
        log "PostgreSQL binaries present in $bin"
        return 0
    fi
    # Debian would otherwise create and start a cluster on port 5432 that rfo never uses.
    local createcluster=/etc/postgresql-common/createcluster.conf
    if [[ ! -e "$createcluster" ]]; then
        as_root mkdir -p "$(dirname "$createcluster")"
        echo 'create_main_cluster = false' | as_root tee "$createcluster" >/dev/null
    fi
    # Debian 12 ships PostgreSQL 15. Other releases have another major version under this name.
    if apt_install postgresql-15 2>/dev/null || apt_install postgresql; then
        bin="$(find_postgres_bin)" || die "PostgreSQL was installed but initdb was not found"
        log "PostgreSQL binaries installed in $bin"
    else
        die "failed to install PostgreSQL server binaries with apt-get"
    fi
}

install_wasm_target() {
    command -v rustup >/dev/null || die "rustup not found: install Rust with rustup first"
    if rustup target list --installed | grep -qx wasm32-wasip2; then
        log "Rust target wasm32-wasip2 present"
    else
        log "rustup target add wasm32-wasip2"
        rustup target add wasm32-wasip2
    fi
}

install_debian_packages
install_postgres
install_wasm_target
log "setup complete"

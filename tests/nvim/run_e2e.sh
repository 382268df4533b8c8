#!/bin/sh
# The Neovim end-to-end test of `ponder lsp` (tests/nvim/e2e.lua): lays out a workspace in a
# temporary folder, puts on PATH a `ponder` that runs the real binary with a forced answer (the
# README's configuration starts `ponder lsp`), and runs Neovim headless on it.
#
# usage: run_e2e.sh PONDER_BINARY MODEL.gguf [NVIM]
# Exit: 0 passed, 1 failed, 77 skipped (no Neovim 0.7).
set -eu
[ $# -ge 2 ] || { echo "usage: $0 PONDER_BINARY MODEL.gguf [NVIM]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
ponder=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
model=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
nvim=${3:-nvim}
limit_s=${PONDER_E2E_TIMEOUT_S:-30}

if ! command -v "$nvim" >/dev/null 2>&1; then
  echo "SKIP: $nvim not found (scripts/setup.sh installs Debian's neovim)"
  exit 77
fi
version=$("$nvim" --version | sed -n '1s/^NVIM v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
set -- $version
# The script uses Neovim 0.7's client API and expects its capabilities (no documentChanges, no
# positionEncodings); newer versions changed both.
if [ $# -ne 2 ] || [ "$1" -ne 0 ] || [ "$2" -ne 7 ]; then
  echo "SKIP: the test is written for Neovim 0.7 (Debian 12's 0.7.2); $nvim is $("$nvim" --version | head -n 1)"
  exit 77
fi
[ -x "$ponder" ] || { echo "FAIL: $ponder is not built"; exit 1; }
[ -f "$model" ] || { echo "FAIL: $model is missing (the make_test_model step makes it)"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ponder-nvim-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT
workspace=$work/project
mkdir -p "$workspace/.git" "$workspace/src" "$work/bin" "$work/xdg"
cp "$source_dir/tests/fixtures/lsp/sum.cpp" "$workspace/src/sum.cpp"
cat > "$workspace/.ponder.json" <<EOF
{ "model": "$model", "context": 2048, "maxTokens": 400, "hoverWaitsForModel": true }
EOF
cat > "$work/bin/ponder" <<EOF
#!/bin/sh
exec "$ponder" "\$@" --force-answer "$source_dir/tests/fixtures/lsp/r1_answer.txt" \\
  --cache-dir "$work/cache" --log "$work/ponder.log" --log-level info
EOF
chmod +x "$work/bin/ponder"

# Neovim starts in $work, outside the project: the root must come from the .git folder.
cd "$work"
status=0
PATH="$work/bin:$PATH" XDG_CONFIG_HOME="$work/xdg" XDG_DATA_HOME="$work/xdg" XDG_CACHE_HOME="$work/xdg" \
  XDG_STATE_HOME="$work/xdg" PONDER_E2E_WORKSPACE="$workspace" PONDER_E2E_README="$source_dir/README.md" \
  PONDER_E2E_TIMEOUT_MS=$((limit_s * 1000)) \
  timeout -k 5 $((limit_s + 10)) "$nvim" --headless --clean -c "luafile $here/e2e.lua" </dev/null || status=$?
if [ "$status" -ne 0 ]; then
  [ "$status" -eq 124 ] && echo "FAIL: Neovim did not finish in $((limit_s + 10)) s"
  echo "--- ponder's log ($work/ponder.log):"
  tail -n 40 "$work/ponder.log" 2>/dev/null || true
  [ -f "$work/xdg/nvim/lsp.log" ] && { echo "--- Neovim's lsp.log:"; tail -n 20 "$work/xdg/nvim/lsp.log"; }
  exit 1
fi

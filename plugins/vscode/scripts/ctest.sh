#!/bin/sh
# The extension's checks as ctest runs them (tests/CMakeLists.txt), through the npm scripts of
# package.json:
#   ctest.sh compile          tsc --strict (out/)
#   ctest.sh lint             eslint, no warnings allowed
#   ctest.sh unit             the node unit tests (out/test/)
#   ctest.sh package OUT      vsce package to OUT.vsix, then check what it holds
#   ctest.sh server           the client's pieces against the real `ponder lsp`
#                             (PONDER_BINARY, PONDER_TEST_MODEL)
set -eu
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/tsc ] || [ ! -x node_modules/.bin/vsce ]; then
  echo "plugins/vscode/node_modules is missing or incomplete: run scripts/setup.sh" >&2
  exit 1
fi
case "${1:-}" in
  compile) exec npm run --silent compile ;;
  lint) exec npm run --silent lint ;;
  unit) exec node --test out/test/ ;;
  package)
    npm run --silent package -- --out "$2" >/dev/null
    exec node scripts/check-vsix.mjs "$2" ;;
  server) exec node --test out/test-server/ ;;
  *) echo "usage: $0 compile|lint|unit|package OUT|server" >&2; exit 2 ;;
esac

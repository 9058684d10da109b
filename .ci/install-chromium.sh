#!/usr/bin/env bash
# Chromium for the app's browser tests: Debian's package (Playwright drives it through
# executable_path; a browser download by Playwright itself is not needed). Quick when present.
set -euo pipefail
CHROMIUM="${UNIREWARD_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "no Chromium at $CHROMIUM and no apt-get: install Chromium and set UNIREWARD_CHROMIUM to its path" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "no Chromium at $CHROMIUM: run 'apt-get install chromium' as root (or set UNIREWARD_CHROMIUM)" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
if [ ! -x "$CHROMIUM" ]; then
  echo "installed Debian's chromium, but $CHROMIUM is still missing (UNIREWARD_CHROMIUM points elsewhere?)" >&2
  exit 1
fi
"$CHROMIUM" --version

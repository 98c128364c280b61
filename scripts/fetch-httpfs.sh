#!/usr/bin/env bash
# Prints the path of DuckDB's official httpfs extension, fetched once from PyPI.
#   scripts/fetch-httpfs.sh [x86_64|aarch64]     (default: this machine)
exec "$(dirname "${BASH_SOURCE[0]}")/fetch-extension.sh" httpfs "$@"

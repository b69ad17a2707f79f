#!/usr/bin/env bash
# Starts the services the test suite needs that a Python install cannot
# bring: (none yet).
set -euo pipefail

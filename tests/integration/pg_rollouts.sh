#!/bin/bash
# tests/integration/pg_rollouts.sh - rollouts.sh with vigil-cp on a real
# PostgreSQL 15 started for it (VIGIL_TEST_BACKEND=pg, lib_backend.sh):
# its own TAP stream, so tests/run.sh counts each backend's cases.
# It runs in tests/run.sh's pool, as rollouts.sh does: its PostgreSQL is its
# own, on a Unix socket in $T.
# run.sh: alongside
VIGIL_TEST_BACKEND=pg exec bash "$(dirname "$0")/rollouts.sh"

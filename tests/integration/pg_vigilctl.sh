#!/bin/bash
# tests/integration/pg_vigilctl.sh - vigilctl.sh with vigil-cp on a real
# PostgreSQL 15 started for it (VIGIL_TEST_BACKEND=pg, lib_backend.sh):
# its own TAP stream, so tests/run.sh counts each backend's cases.
VIGIL_TEST_BACKEND=pg exec bash "$(dirname "$0")/vigilctl.sh"

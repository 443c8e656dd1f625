#!/bin/bash
# tests/integration/pg_agent_cp.sh - agent_cp.sh with vigil-cp on a real
# PostgreSQL 15 started for it (VIGIL_TEST_BACKEND=pg, lib_backend.sh):
# its own TAP stream, so tests/run.sh counts each backend's cases.
#
# It judges only its own vigild and workload and times nothing a loaded
# host could miss: tests/run.sh runs it in its lane, beside the others.
# run.sh: lane
VIGIL_TEST_BACKEND=pg exec bash "$(dirname "$0")/agent_cp.sh"

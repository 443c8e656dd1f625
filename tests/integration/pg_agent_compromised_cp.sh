#!/bin/bash
# tests/integration/pg_agent_compromised_cp.sh - agent_compromised_cp.sh with vigil-cp on a real
# PostgreSQL 15 started for it (VIGIL_TEST_BACKEND=pg, lib_backend.sh):
# its own TAP stream, so tests/run.sh counts each backend's cases.
#
# It mostly waits on its own vigil-cp (polls a second apart), its workload
# is busy a fifth of the time, and it judges only its own vigild and
# workload: tests/run.sh runs it in its pool, beside the others.
# run.sh: alongside
VIGIL_TEST_BACKEND=pg exec bash "$(dirname "$0")/agent_compromised_cp.sh"

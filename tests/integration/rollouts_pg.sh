#!/bin/bash
# tests/integration/rollouts_pg.sh - rollouts.sh again, on a real
# PostgreSQL 15 that lib_pg.sh starts (initdb + pg_ctl on a Unix socket, as
# a non-root user): the same cases, the same plan.
ROLLOUTS_DB=pg exec "$(dirname "$0")/rollouts.sh"

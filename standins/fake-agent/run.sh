#!/usr/bin/env bash
# Stand-in for the Azure Pipelines agent's run.sh: runs the listener (bin/Agent.Listener run ARGS) and, when it
# exits with code 3 or 4 (it updated itself), waits at least 5 s and at most 20 s for the updated listener, then
# runs it again, as src/Misc/layoutroot/run.sh in microsoft/azure-pipelines-agent does. Any other exit code is
# run.sh's own.
set -uo pipefail

listener="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bin/Agent.Listener"
echo "run.sh arguments: $*"
while true; do
  "$listener" run "$@"
  exit_code=$?
  echo "Agent exit code $exit_code"
  [[ $exit_code == 3 || $exit_code == 4 ]] || exit "$exit_code"
  sleep 5
  for ((retry = 0; retry < 15; retry++)); do
    [[ ! -x "$listener" ]] || break
    sleep 1
  done
  if [[ ! -x "$listener" ]]; then
    echo "Failed to update within 20 seconds." >&2
    exit 1
  fi
done

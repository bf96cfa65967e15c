#!/usr/bin/env bash
# Stand-in for the Azure Pipelines agent's run.sh: prints its arguments, opens a session, long-polls for a
# job, "runs" it (prints, sleeps FAKE_AGENT_JOB_SECONDS), reports it succeeded. With --once it exits after one job.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=bin/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/bin/common.sh"

echo "run.sh arguments: $*"
once=false
for argument in "$@"; do
  [[ "$argument" != "--once" ]] || once=true
done

load_settings
pool_url="$server_url/_apis/distributedtask/pools/$pool_id"
session_id=""
request_id=""

finish_job() {
  local result=$1
  api_expect PATCH "$pool_url/jobrequests/$request_id?api-version=7.1" \
    "$(jq -n --argjson requestId "$request_id" --arg result "$result" --arg finishTime "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)" \
      '{requestId: $requestId, result: $result, finishTime: $finishTime}')"
  request_id=""
}

delete_session() {
  [[ -n "$session_id" ]] || return 0
  api DELETE "$pool_url/sessions/$session_id"
  session_id=""
}

# Like the real agent's graceful shutdown: give back the job, close the session, exit 0.
shut_down() {
  echo "Agent shutting down"
  if [[ -n "$request_id" ]]; then finish_job canceled; fi
  delete_session
  exit 0
}
trap shut_down TERM INT

api_expect POST "$pool_url/sessions" \
  "$(jq -n --argjson id "$agent_id" --arg name "$agent_name" '{agent: {id: $id, name: $name}, ownerName: "fake-agent"}')"
session_id="$(jq -r .sessionId <<<"$response_body")"
echo "Listening for Jobs"

while true; do
  api GET "$pool_url/messages?sessionId=$session_id"
  case "$response_status" in
    200) ;;
    202 | 204) continue ;;
    *) die "GET $pool_url/messages failed with HTTP $response_status: $response_body" ;;
  esac
  message_id="$(jq -r .messageId <<<"$response_body")"
  job="$(jq -c '.body | fromjson' <<<"$response_body")"
  api_expect DELETE "$pool_url/messages/$message_id?sessionId=$session_id"
  [[ "$(jq -r '.requestId // empty' <<<"$job")" != "" ]] || continue

  request_id="$(jq -r .requestId <<<"$job")"
  job_name="$(jq -r '.jobDisplayName // .jobId' <<<"$job")"
  echo "Running job: $job_name"
  sleep "${FAKE_AGENT_JOB_SECONDS:-1}" &
  wait $! # a background sleep lets the signal traps run at once
  finish_job succeeded
  echo "Job $job_name completed with result: Succeeded"
  if $once; then
    delete_session
    exit 0
  fi
done

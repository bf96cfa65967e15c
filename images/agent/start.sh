#!/usr/bin/env bash
# Starts an Azure Pipelines agent that takes exactly one job, then unregisters it and exits.
# Settings (environment): see README.md. Exit codes: the agent's own exit code after its job;
# 1 the agent could not be set up; 2 a setting is missing or invalid; 124 lifetime reached;
# 130/143 stopped by SIGINT/SIGTERM.
# shellcheck disable=SC2317 # functions called only from traps are not unreachable
set -euo pipefail

readonly agent_dir=/azp/agent
readonly default_token_file=/azp/.token
readonly private_token_file=/azp/.agent-token
readonly unregister_attempts=3
readonly unregister_retry_seconds=5
readonly stop_grace_seconds=20

log() { printf '%s\n' "$*"; }
fail() {
  local exit_code=$1
  shift
  printf '%s\n' "$*" >&2
  exit "$exit_code"
}

# --- Settings -----------------------------------------------------------------------------------

[[ -n "${AZP_URL:-}" ]] || fail 2 "AZP_URL is not set: set it to the organization URL, e.g. https://dev.azure.com/myorg"
azp_url="${AZP_URL%/}"

# The token moves into a private file, and the script re-runs itself without AZP_TOKEN in its
# environment: unset alone would leave it readable in /proc/1/environ for the job's processes.
if [[ -n "${AZP_TOKEN:-}" ]]; then
  (umask 077 && printf '%s' "$AZP_TOKEN" >"$private_token_file")
  exec env -u AZP_TOKEN AZP_TOKEN_FILE="$private_token_file" "${BASH_SOURCE[0]}" "$@"
fi
token_source="${AZP_TOKEN_FILE:-$default_token_file}"
if [[ -n "${AZP_TOKEN_FILE:-}" && ! -s "$token_source" ]]; then
  fail 2 "AZP_TOKEN_FILE is $token_source, which is missing or empty"
elif [[ ! -s "$token_source" ]]; then
  fail 2 "no token: set AZP_TOKEN, or AZP_TOKEN_FILE to a readable file holding it (default $default_token_file)"
fi
[[ -r "$token_source" ]] || fail 2 "the token file $token_source is not readable by user $(id -un)"
if [[ "$token_source" != "$private_token_file" ]]; then
  (umask 077 && cat "$token_source" >"$private_token_file")
fi
chmod 600 "$private_token_file"

agent_name="${AZP_AGENT_NAME:-$HOSTNAME}"
agent_pool="${AZP_POOL:-Default}"
lifetime_minutes="${EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES:-}"
if [[ -n "$lifetime_minutes" && ! "$lifetime_minutes" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  fail 2 "EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES must be a number of minutes, got: $lifetime_minutes"
fi

# The agent reports every environment variable as a capability except those listed here;
# EPHEMERAL_AGENT_RUN stays visible because the job's demand matches on it.
export VSO_AGENT_IGNORE="${VSO_AGENT_IGNORE:+$VSO_AGENT_IGNORE,}AZP_URL,AZP_TOKEN,AZP_TOKEN_FILE,AZP_POOL,AZP_AGENT_NAME,AZP_WORK,EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES,VSO_AGENT_IGNORE"

# --- Stopping: signals, lifetime, unregistering ---------------------------------------------------

agent_pid=""
lifetime_timer_pid=""
stop_timer_pid=""
stop_reason=""
stop_exit_code=0

# Ends the agent's whole process group (run.sh, the listener, the job's processes): first politely,
# then, after a grace period, for good.
stop_agent() {
  [[ -n "$agent_pid" ]] || return 0
  kill -TERM -- "-$agent_pid" 2>/dev/null || return 0
  (
    sleep "$stop_grace_seconds"
    kill -KILL -- "-$agent_pid" 2>/dev/null
  ) &
  stop_timer_pid=$!
}

request_stop() {
  [[ -z "$stop_reason" ]] || return 0
  stop_reason=$1
  stop_exit_code=$2
  log "$stop_reason: stopping the agent"
  stop_agent
}

unregister_agent() {
  [[ -e "$agent_dir/.agent" ]] || return 0
  local attempt
  for ((attempt = 1; attempt <= unregister_attempts; attempt++)); do
    if (cd "$agent_dir" && ./config.sh remove --unattended --auth PAT --token "$(<"$private_token_file")"); then
      log "agent $agent_name unregistered"
      return 0
    fi
    if ((attempt < unregister_attempts)); then
      log "unregistering agent $agent_name failed (attempt $attempt of $unregister_attempts); retrying in $unregister_retry_seconds s"
      sleep "$unregister_retry_seconds"
    fi
  done
  log "could not unregister agent $agent_name after $unregister_attempts attempts; the teardown task removes it"
}

on_exit() {
  local timer_pid
  for timer_pid in "$lifetime_timer_pid" "$stop_timer_pid"; do
    if [[ -n "$timer_pid" ]]; then kill "$timer_pid" 2>/dev/null || true; fi
  done
  unregister_agent || true
}

trap on_exit EXIT
trap 'request_stop "received SIGTERM" 143' TERM
trap 'request_stop "received SIGINT" 130' INT
trap 'request_stop "lifetime of $lifetime_minutes minutes reached" 124' USR1

start_lifetime_timer() {
  [[ -n "$lifetime_minutes" ]] || return 0
  local seconds
  seconds="$(awk -v minutes="$lifetime_minutes" 'BEGIN { printf "%.3f", minutes * 60 }')"
  [[ "$seconds" != "0.000" ]] || return 0
  (
    sleep "$seconds"
    kill -USR1 "$$"
  ) &
  lifetime_timer_pid=$!
}

exit_if_stop_requested() {
  [[ -z "$stop_reason" ]] || exit "$stop_exit_code"
}

# --- Agent package --------------------------------------------------------------------------------

# Sends the token as basic-auth password (works for PATs and job access tokens) through curl's config
# on stdin, so it never shows on a command line. Prints the HTTP status; the body goes to file $2.
curl_devops() {
  local url=$1 body_file=$2
  printf 'user = ":%s"\n' "$(<"$private_token_file")" |
    curl --config - --silent --show-error --location \
      --retry 3 --retry-connrefused --retry-delay 2 --connect-timeout 20 --max-time 120 \
      --header "Accept: application/json" --header "X-TFS-FedAuthRedirect: Suppress" \
      --output "$body_file" --write-out '%{http_code}' "$url"
}

last_curl_error() {
  grep 'curl:' "$1" | tail -n 1 | sed 's/^curl: //'
}

download_agent() {
  local packages_url="$azp_url/_apis/distributedtask/packages/agent?platform=linux-x64&top=1"
  local response errors status download_url
  response="$(mktemp)"
  errors="$(mktemp)"
  log "looking up the agent package for linux-x64 at $azp_url"
  if ! status="$(curl_devops "$packages_url" "$response" 2>"$errors")"; then
    fail 1 "could not reach $azp_url to look up the agent package: $(last_curl_error "$errors")"
  fi
  case "$status" in
    401 | 403 | 203) # Azure DevOps may answer a bad token with 203 and a sign-in page
      fail 1 "AZP_TOKEN was rejected by $azp_url (HTTP $status): check that the token is valid for this organization and may manage agent pools"
      ;;
    2[0-9][0-9]) ;;
    *) fail 1 "could not look up the agent package at $azp_url (HTTP $status)" ;;
  esac
  download_url="$(jq -r '.value[0].downloadUrl // empty' "$response" 2>/dev/null || true)"
  rm -f "$response"
  [[ -n "$download_url" ]] || fail 1 "no agent package for linux-x64 at $azp_url"

  log "downloading the agent from $download_url"
  local package=/azp/agent-package.tar.gz
  if ! curl --fail --silent --show-error --location \
    --retry 3 --retry-connrefused --retry-delay 2 --connect-timeout 20 --max-time 900 \
    --output "$package" "$download_url" 2>"$errors"; then
    fail 1 "could not download the agent package from $download_url: $(last_curl_error "$errors")"
  fi
  rm -f "$errors"
  tar -xzf "$package" -C "$agent_dir" || fail 1 "the agent package from $download_url is not a valid tar.gz archive"
  rm -f "$package"
}

# --- Main -----------------------------------------------------------------------------------------

start_lifetime_timer

if [[ -x "$agent_dir/config.sh" ]]; then
  log "using the agent baked into the image"
else
  download_agent
fi
exit_if_stop_requested

cd "$agent_dir"
./env.sh || fail 1 "the agent's env.sh failed"
log "configuring agent $agent_name in pool $agent_pool"
./config.sh --unattended --agent "$agent_name" --url "$azp_url" --auth PAT --token "$(<"$private_token_file")" \
  --pool "$agent_pool" --work "${AZP_WORK:-_work}" --replace --acceptTeeEula ||
  fail 1 "could not configure agent $agent_name in pool $agent_pool at $azp_url"
exit_if_stop_requested

log "running agent $agent_name for one job"
# Its own process group, so stopping reaches the listener and the job's processes too.
setsid ./run.sh --once &
agent_pid=$!
agent_exit_code=0
while true; do
  wait "$agent_pid" && agent_exit_code=0 || agent_exit_code=$?
  # A trapped signal interrupts wait while the agent still runs: wait again.
  kill -0 "$agent_pid" 2>/dev/null || break
done
agent_pid=""

exit_if_stop_requested
log "agent $agent_name exited with code $agent_exit_code"
exit "$agent_exit_code"

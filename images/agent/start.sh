#!/usr/bin/env bash
# Starts an Azure Pipelines agent that takes exactly one job, then unregisters it and exits.
# With the agent's own credential (.agent, .credentials, .credentials_rsaparams in /azp/agent-credential, or
# AZP_AGENT_CREDENTIAL) the start task has registered the agent already: the script only runs it, with no token,
# and cannot unregister it (the teardown task does).
# Settings (environment): see README.md. Exit codes: the agent's own exit code after its job;
# 1 the agent could not be set up; 2 a setting is missing or invalid; 3 a warm start's settings never came;
# 124 lifetime reached;
# 130/143 stopped by SIGINT/SIGTERM.
# shellcheck disable=SC2317 # functions called only from traps are not unreachable
set -euo pipefail

readonly agent_dir=/azp/agent
readonly default_token_file=/azp/.token
readonly private_token_file=/azp/.agent-token
readonly curl_auth_file=/azp/.curl-auth
readonly agent_credential_dir=/azp/agent-credential
readonly agent_credential_files=(.agent .credentials .credentials_rsaparams)
readonly unregister_attempts=3
readonly unregister_retry_seconds=5
readonly unregister_attempt_limit_seconds=15
# The listener waits up to 30 s for its running job to cancel after SIGTERM
# (Constants.Agent.ExitOnUnloadTimeout, used by Agent_Unloading in src/Agent.Listener/Agent.cs,
# microsoft/azure-pipelines-agent); the margin lets it close its session afterwards.
readonly stop_grace_seconds=35

log() { printf '%s\n' "$*"; }
fail() {
  local exit_code=$1
  shift
  printf '%s\n' "$*" >&2
  exit "$exit_code"
}

# PID 1 ignores signals it has no trap for. Until the stop handling below takes over, a signal ends the script at
# once: set before the warm start prints its public key, which is when a standby pool may already stop it.
trap 'exit 143' TERM
trap 'exit 130' INT

# --- Warm start ---------------------------------------------------------------------------------

# A container started ahead in an Azure Container Instances standby pool knows nothing of its agent yet. It makes
# the agent's RSA key, prints only the public half, and waits for the start task to claim it, register the agent
# with that key and hand it the settings, none of them secret, as config map files. The private key never leaves
# the container.
readonly warm_settings_dir=/mnt/configmap/agent
readonly warm_settings_files=(agent credentials environment)
readonly public_key_marker=EPHEMERAL_AGENT_PUBLIC_KEY
readonly warm_wait_exit_code=3

# The hex digits of one field of `openssl pkey -text` (the lines indented under "name:").
key_field_hex() {
  awk -v heading="$1:" '$0 == heading { on = 1; next } on && /^ / { gsub(/[ :]/, ""); printf "%s", $0; next } on { exit }'
}

# Standard base64 of hex digits as an unsigned big-endian number: minimal, or left-padded to $2 bytes.
hex_to_base64() {
  local hex=${1,,} length=${2:-0}
  while [[ ${#hex} -gt 2 && "${hex:0:2}" == 00 ]]; do hex=${hex:2}; done
  ((${#hex} % 2 == 0)) || hex="0$hex"
  while ((${#hex} < length * 2)); do hex="00$hex"; done
  ((length == 0 || ${#hex} == length * 2)) || return 1
  printf '%s' "${hex^^}" | basenc --base16 -d | base64 -w0
}

# Writes the key as the agent's .credentials_rsaparams (RSAParametersSerializable, with the lengths .NET's
# RSA.ImportParameters requires: D as long as the modulus, the others half of it) and prints the public half as
# the start task reads it (tasks/common/core/warmStart.ts).
make_warm_key() {
  local pem text modulus_hex exponent_hex half
  pem="$(mktemp)"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pem" 2>/dev/null ||
    fail 1 "could not make the agent's RSA key with openssl"
  text="$(openssl pkey -in "$pem" -noout -text)"
  rm -f "$pem"
  modulus_hex="$(key_field_hex modulus <<<"$text")"
  modulus_hex="${modulus_hex#00}"
  exponent_hex="$(sed -n 's/^publicExponent: [0-9]* (0x\([0-9a-fA-F]*\))$/\1/p' <<<"$text")"
  half=$(((${#modulus_hex} / 2 + 1) / 2))
  local modulus exponent d p q dp dq inverse_q
  modulus="$(hex_to_base64 "$modulus_hex")"
  exponent="$(hex_to_base64 "$exponent_hex")"
  d="$(hex_to_base64 "$(key_field_hex privateExponent <<<"$text")" $((${#modulus_hex} / 2)))"
  p="$(hex_to_base64 "$(key_field_hex prime1 <<<"$text")" "$half")"
  q="$(hex_to_base64 "$(key_field_hex prime2 <<<"$text")" "$half")"
  dp="$(hex_to_base64 "$(key_field_hex exponent1 <<<"$text")" "$half")"
  dq="$(hex_to_base64 "$(key_field_hex exponent2 <<<"$text")" "$half")"
  inverse_q="$(hex_to_base64 "$(key_field_hex coefficient <<<"$text")" "$half")"
  unset text
  [[ -n "$modulus" && -n "$exponent" && -n "$d" && -n "$p" && -n "$q" && -n "$dp" && -n "$dq" && -n "$inverse_q" ]] ||
    fail 1 "could not read the agent's RSA key back from openssl"
  (
    umask 077
    mkdir -p "$agent_credential_dir"
    jq -nc --arg d "$d" --arg dp "$dp" --arg dq "$dq" --arg exponent "$exponent" --arg inverseQ "$inverse_q" \
      --arg modulus "$modulus" --arg p "$p" --arg q "$q" \
      '{ContainerName: "", UseCng: false, d: $d, dp: $dp, dq: $dq, exponent: $exponent, inverseQ: $inverseQ,
        modulus: $modulus, p: $p, q: $q}' >"$agent_credential_dir/.credentials_rsaparams"
  )
  printf '%s %s\n' "$public_key_marker" "$(jq -nc --arg exponent "$exponent" --arg modulus "$modulus" \
    '{exponent: $exponent, modulus: $modulus}')"
}

warm_settings_arrived() {
  local file
  for file in "${warm_settings_files[@]}"; do
    jq -e 'type == "object"' "$warm_settings_dir/$file" >/dev/null 2>&1 || return 1
  done
}

# Waits for the settings, then takes them: .agent and .credentials beside the key, the environment exported.
take_warm_settings() {
  local wait_minutes="${EPHEMERAL_AGENT_WARM_WAIT_MINUTES:-60}" wait_seconds deadline entry
  [[ "$wait_minutes" =~ ^[0-9]+([.][0-9]+)?$ ]] ||
    fail 2 "EPHEMERAL_AGENT_WARM_WAIT_MINUTES must be a number of minutes above 0, got: $wait_minutes"
  wait_seconds="$(awk -v minutes="$wait_minutes" 'BEGIN { s = minutes * 60; printf "%d", (s == int(s)) ? s : int(s) + 1 }')"
  ((wait_seconds > 0)) ||
    fail 2 "EPHEMERAL_AGENT_WARM_WAIT_MINUTES must be a number of minutes above 0, got: $wait_minutes"
  deadline=$((SECONDS + wait_seconds))
  log "waiting for the agent's settings in $warm_settings_dir (up to $wait_minutes minutes)"
  until warm_settings_arrived; do
    ((SECONDS < deadline)) || fail "$warm_wait_exit_code" "no agent settings arrived in $warm_settings_dir within $wait_minutes minutes: exiting so that the standby pool replaces this container"
    sleep 0.2
  done
  install -m 600 "$warm_settings_dir/agent" "$agent_credential_dir/.agent"
  install -m 600 "$warm_settings_dir/credentials" "$agent_credential_dir/.credentials"
  while IFS= read -r -d '' entry; do
    [[ "${entry%%=*}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] ||
      fail 2 "the agent's environment setting names a variable '${entry%%=*}', which is no variable name"
    export "${entry?}"
  done < <(jq -j 'to_entries[] | "\(.key)=\(.value | tostring)\u0000"' "$warm_settings_dir/environment")
  log "the agent's settings arrived"
}

if [[ "${EPHEMERAL_AGENT_WARM_START:-}" == true ]]; then
  log "warm start: making the agent's key"
  make_warm_key
  take_warm_settings
fi

# --- Settings -----------------------------------------------------------------------------------

[[ -n "${AZP_URL:-}" ]] || fail 2 "AZP_URL is not set: set it to the organization URL, e.g. https://dev.azure.com/myorg"
azp_url="${AZP_URL%/}"

# The agent's own credential, given as a secure value (JSON of the three files, base64), moves into private
# files, and the script re-runs itself without it, as for AZP_TOKEN below.
if [[ -n "${AZP_AGENT_CREDENTIAL:-}" ]]; then
  credential_json="$(printf '%s' "$AZP_AGENT_CREDENTIAL" | base64 -d)" ||
    fail 2 "AZP_AGENT_CREDENTIAL is not base64"
  (
    umask 077
    mkdir -p "$agent_credential_dir"
    for file in "${agent_credential_files[@]}"; do
      jq -ej --arg file "$file" '.[$file] // error("no \($file)")' <<<"$credential_json" >"$agent_credential_dir/$file"
    done
  ) || fail 2 "AZP_AGENT_CREDENTIAL does not hold the agent's ${agent_credential_files[*]} files"
  unset credential_json
  exec env -u AZP_AGENT_CREDENTIAL "${BASH_SOURCE[0]}" "$@"
fi
own_credential=false
if [[ -e "$agent_credential_dir" ]]; then
  for file in "${agent_credential_files[@]}"; do
    [[ -s "$agent_credential_dir/$file" ]] || fail 2 "$agent_credential_dir has no $file: the agent's credential is incomplete"
  done
  own_credential=true
fi

# The token moves into a private file, and the script re-runs itself without AZP_TOKEN in its
# environment: unset alone would leave it readable in /proc/1/environ for the job's processes.
if [[ -n "${AZP_TOKEN:-}" ]]; then
  (umask 077 && printf '%s' "$AZP_TOKEN" >"$private_token_file")
  exec env -u AZP_TOKEN AZP_TOKEN_FILE="$private_token_file" "${BASH_SOURCE[0]}" "$@"
fi
if ! $own_credential; then
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
fi

agent_name="${AZP_AGENT_NAME:-$HOSTNAME}"
agent_pool="${AZP_POOL:-Default}"
lifetime_minutes="${EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES:-}"
if [[ -n "$lifetime_minutes" && ! "$lifetime_minutes" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  fail 2 "EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES must be a number of minutes, got: $lifetime_minutes"
fi

# The agent reports every environment variable as a capability except those listed here;
# EPHEMERAL_AGENT_RUN stays visible because the job's demand matches on it.
export VSO_AGENT_IGNORE="${VSO_AGENT_IGNORE:+$VSO_AGENT_IGNORE,}AZP_URL,AZP_TOKEN,AZP_TOKEN_FILE,AZP_POOL,AZP_AGENT_NAME,AZP_WORK,AZP_AGENT_CREDENTIAL,AZP_AGENT_PACKAGE_URL,AZP_AGENT_PACKAGE_SHA256,EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES,EPHEMERAL_AGENT_WARM_START,EPHEMERAL_AGENT_WARM_WAIT_MINUTES,VSO_AGENT_IGNORE"

# --- Stopping: signals, lifetime, unregistering ---------------------------------------------------

# The process group of the step running now: the package download, config.sh or the agent itself.
step_pid=""
lifetime_timer_pid=""
stop_timer_pid=""
stop_reason=""
stop_exit_code=0

# Ends the running step's whole process group (for the agent: run.sh, the listener and the job's
# processes): first politely, then, after a grace period, for good.
stop_step() {
  [[ -n "$step_pid" ]] || return 0
  kill -TERM -- "-$step_pid" 2>/dev/null || return 0
  (
    sleep "$stop_grace_seconds"
    kill -KILL -- "-$step_pid" 2>/dev/null
  ) &
  stop_timer_pid=$!
}

request_stop() {
  [[ -z "$stop_reason" ]] || return 0
  stop_reason=$1
  stop_exit_code=$2
  log "$stop_reason: stopping the agent"
  stop_step
}

# The token reaches config.sh in VSTS_AGENT_INPUT_TOKEN, the agent's environment form of --token
# (src/Agent.Listener/CommandSettings.cs reads VSTS_AGENT_INPUT_* and removes them from its environment),
# so it is on no command line, where every process in the container could read it.
unregister_agent() {
  # With its own credential the agent may not remove itself: the teardown task does.
  ! $own_credential || return 0
  [[ -e "$agent_dir/.agent" ]] || return 0
  local attempt
  for ((attempt = 1; attempt <= unregister_attempts; attempt++)); do
    if (cd "$agent_dir" && VSTS_AGENT_INPUT_TOKEN="$(<"$private_token_file")" \
      timeout "$unregister_attempt_limit_seconds" ./config.sh remove --unattended --auth PAT); then
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
  rm -f "$curl_auth_file"
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

# Runs one step (download, config.sh, the agent) in the background, in its own process group, and waits
# for it. Bash runs a trap only after the foreground command ends, but a trapped signal interrupts wait
# at once; Microsoft's start.sh ("Run a self-hosted agent in Docker", learn.microsoft.com) uses
# `& wait $!` for the same reason. Returns the step's exit code; exits if a stop was requested.
run_step() {
  exit_if_stop_requested
  setsid "$@" &
  step_pid=$!
  # A signal that arrived before step_pid was set found nothing to stop.
  [[ -z "$stop_reason" ]] || stop_step
  local exit_code
  while true; do
    wait "$step_pid" && exit_code=0 || exit_code=$?
    # A trapped signal interrupts wait while the step still runs: wait again.
    kill -0 "$step_pid" 2>/dev/null || break
  done
  # On a stop, run.sh ends at once while the listener it started still cancels its job: wait for the
  # whole group (the stop timer kills what is left after the grace period) before unregistering.
  if [[ -n "$stop_reason" ]]; then
    local deadline=$((SECONDS + stop_grace_seconds + 5))
    while ((SECONDS < deadline)) && kill -0 -- "-$step_pid" 2>/dev/null; do sleep 0.2; done
  fi
  step_pid=""
  exit_if_stop_requested
  return "$exit_code"
}

# --- Agent package --------------------------------------------------------------------------------

# Sends the token as basic-auth password (works for PATs and job access tokens) through a curl config
# file only the agent user can read, so it never shows on a command line. Writes the HTTP status to
# file $2 and the body to file $3.
curl_devops() {
  local url=$1 status_file=$2 body_file=$3
  (umask 077 && printf 'user = ":%s"\n' "$(<"$private_token_file")" >"$curl_auth_file")
  run_step curl --config "$curl_auth_file" --silent --show-error --location \
    --retry 3 --retry-connrefused --retry-delay 2 --connect-timeout 20 --max-time 120 \
    --header "Accept: application/json" --header "X-TFS-FedAuthRedirect: Suppress" \
    --output "$body_file" --write-out '%{http_code}' "$url" >"$status_file"
}

last_curl_error() {
  grep 'curl:' "$1" | tail -n 1 | sed 's/^curl: //'
}

# Lower case without hyphens, as the agent compares hashes (StringUtil.HashNormalizer).
normalized_hash() {
  local hash=${1//-/}
  printf '%s' "${hash,,}"
}

# Checks the package against the SHA-256 hash (hex) the packages API lists for it, as the agent's own
# updater does (SelfUpdater.HashValidation, IOUtil.GetFileHash in microsoft/azure-pipelines-agent).
verify_package() {
  local package=$1 download_url=$2 expected_hash=$3 actual_hash
  if [[ -z "$expected_hash" ]]; then
    # The agent's updater skips the check for packages served by the server itself (Azure DevOps Server).
    [[ "$download_url" == "$azp_url"* ]] ||
      fail 1 "$azp_url listed no hashValue for the agent package at $download_url, so it cannot be verified"
    log "the agent package comes from $azp_url itself, which lists no hash for it"
    return 0
  fi
  actual_hash="$(sha256sum "$package" | cut -d' ' -f1)"
  [[ "$actual_hash" == "$(normalized_hash "$expected_hash")" ]] ||
    fail 1 "the agent package from $download_url does not match its SHA-256 hash: $azp_url lists $expected_hash, the download has $actual_hash"
}

download_agent() {
  local packages_url="$azp_url/_apis/distributedtask/packages/agent?platform=linux-x64&top=1"
  local response errors status_file status download_url expected_hash
  response="$(mktemp)"
  errors="$(mktemp)"
  status_file="$(mktemp)"
  log "looking up the agent package for linux-x64 at $azp_url"
  if ! curl_devops "$packages_url" "$status_file" "$response" 2>"$errors"; then
    fail 1 "could not reach $azp_url to look up the agent package: $(last_curl_error "$errors")"
  fi
  rm -f "$curl_auth_file"
  status="$(<"$status_file")"
  case "$status" in
    401 | 403 | 203) # Azure DevOps may answer a bad token with 203 and a sign-in page
      fail 1 "AZP_TOKEN was rejected by $azp_url (HTTP $status): check that the token is valid for this organization and may manage agent pools"
      ;;
    2[0-9][0-9]) ;;
    *) fail 1 "could not look up the agent package at $azp_url (HTTP $status)" ;;
  esac
  download_url="$(jq -r '.value[0].downloadUrl // empty' "$response" 2>/dev/null || true)"
  expected_hash="$(jq -r '.value[0].hashValue // empty' "$response" 2>/dev/null || true)"
  rm -f "$response" "$status_file" "$errors"
  [[ -n "$download_url" ]] || fail 1 "no agent package for linux-x64 at $azp_url"
  install_package "$download_url" "$expected_hash"
}

# Downloads the package without credentials, checks it against its SHA-256 hash and unpacks it.
install_package() {
  local download_url=$1 expected_hash=$2 errors
  errors="$(mktemp)"
  log "downloading the agent from $download_url"
  local package=/azp/agent-package.tar.gz
  if ! run_step curl --fail --silent --show-error --location \
    --retry 3 --retry-connrefused --retry-delay 2 --connect-timeout 20 --max-time 900 \
    --output "$package" "$download_url" 2>"$errors"; then
    fail 1 "could not download the agent package from $download_url: $(last_curl_error "$errors")"
  fi
  rm -f "$errors"
  verify_package "$package" "$download_url" "$expected_hash"
  run_step tar -xzf "$package" -C "$agent_dir" ||
    fail 1 "the agent package from $download_url is not a valid tar.gz archive"
  rm -f "$package"
}

# --- Main -----------------------------------------------------------------------------------------

start_lifetime_timer

if [[ -x "$agent_dir/config.sh" ]]; then
  log "using the agent baked into the image"
elif $own_credential; then
  # The start task looked the package up with its own token: the container has none.
  [[ -n "${AZP_AGENT_PACKAGE_URL:-}" ]] ||
    fail 2 "no agent in the image and no AZP_AGENT_PACKAGE_URL: the start task passes it with the agent's credential"
  install_package "$AZP_AGENT_PACKAGE_URL" "${AZP_AGENT_PACKAGE_SHA256:-}"
else
  download_agent
fi

cd "$agent_dir"
./env.sh || fail 1 "the agent's env.sh failed"

if $own_credential; then
  for file in "${agent_credential_files[@]}"; do
    install -m 600 "$agent_credential_dir/$file" "$agent_dir/$file"
  done
  rm -rf "$agent_credential_dir"
  log "running agent $agent_name for one job with its own credential"
  agent_exit_code=0
  run_step ./run.sh --once || agent_exit_code=$?
  log "agent $agent_name exited with code $agent_exit_code"
  exit "$agent_exit_code"
fi
log "configuring agent $agent_name in pool $agent_pool"
VSTS_AGENT_INPUT_TOKEN="$(<"$private_token_file")" run_step ./config.sh --unattended --agent "$agent_name" \
  --url "$azp_url" --auth PAT --pool "$agent_pool" --work "${AZP_WORK:-_work}" --replace --acceptTeeEula ||
  fail 1 "could not configure agent $agent_name in pool $agent_pool at $azp_url"

log "running agent $agent_name for one job"
# Its own process group, so stopping reaches the listener and the job's processes too.
agent_exit_code=0
run_step ./run.sh --once || agent_exit_code=$?
log "agent $agent_name exited with code $agent_exit_code"
exit "$agent_exit_code"

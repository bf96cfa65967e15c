# Shared by the stand-in agent's config.sh and run.sh: settings files and calls to the
# Azure DevOps REST API with curl and jq.

# shellcheck shell=bash
# shellcheck disable=SC2034 # the settings it sets are for the scripts that source it
agent_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly agent_root
readonly settings_file="$agent_root/.agent"
readonly credentials_file="$agent_root/.credentials"
readonly rsa_parameters_file="$agent_root/.credentials_rsaparams"
readonly fake_agent_version="4.0.0-fake"

die() {
  printf '%s\n' "$*" >&2
  exit 1
}

# Calls the API: api METHOD URL [JSON_BODY]. Sets response_status and response_body.
api() {
  local method=$1 url=$2 body=${3:-}
  local body_file arguments
  body_file="$(mktemp)"
  arguments=(--silent --show-error --request "$method" --output "$body_file"
    --write-out '%{http_code}' --header "Accept: application/json" --max-time 60)
  if [[ -n "$body" ]]; then
    arguments+=(--header "Content-Type: application/json" --data "$body")
  fi
  # The token goes to curl in its config on stdin, never on a command line other processes can read.
  local credential_line="user = \":$api_token\""
  [[ "${api_scheme:-Basic}" != "Bearer" ]] || credential_line="header = \"Authorization: Bearer $api_token\""
  response_status="$(printf '%s\n' "$credential_line" | curl --config - "${arguments[@]}" "$url")" ||
    die "$method $url failed: could not reach the server"
  response_body="$(<"$body_file")"
  rm -f "$body_file"
}

# Like api, but exits with a clear message unless the status is one of the accepted ones (default 2xx).
api_expect() {
  local accepted=${4:-2[0-9][0-9]}
  api "$@"
  # shellcheck disable=SC2053 # the accepted statuses are a pattern
  [[ "$response_status" == $accepted ]] || die "$1 $2 failed with HTTP $response_status: $response_body"
}

load_settings() {
  [[ -f "$settings_file" ]] || die "the agent is not configured (no $settings_file)"
  # One jq for all fields: each jq start costs about 25 ms of CPU, most of what the stand-in agent spends.
  local settings
  settings="$(jq -r '.serverUrl, .poolId, .agentId, .agentName' "$settings_file")"
  { read -r server_url && read -r pool_id && read -r agent_id && read -r agent_name; } <<<"$settings"
}

# The listener's credential: its own key, exchanged for an access token (bin/agent-credential.sh).
sign_in() {
  # shellcheck source-path=SCRIPTDIR source=agent-credential.sh
  source "$agent_root/bin/agent-credential.sh"
  oauth_sign_in
}

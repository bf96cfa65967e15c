#!/usr/bin/env bash
# Stand-in for the Azure Pipelines agent's config.sh:
#   config.sh --unattended --agent NAME --url URL --auth PAT [--token T] --pool POOL --work W --replace --acceptTeeEula
#   config.sh remove --unattended --auth PAT [--token T]
# Like the real agent, it takes any input from VSTS_AGENT_INPUT_<NAME> too; only the token is read that way here
# (src/Agent.Listener/CommandSettings.cs in microsoft/azure-pipelines-agent).
# FAKE_AGENT_CONFIG_SECONDS: seconds to wait, after printing "config.sh: configuring slowly", before the first
# request, so that tests can act while configuration runs.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=bin/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/bin/common.sh"

command="configure"
agent_name="" server_url="" api_token="${VSTS_AGENT_INPUT_TOKEN:-}" pool_name="" work_folder="_work" replace=false
while (($# > 0)); do
  case "$1" in
    remove) command="remove" ;;
    --agent) agent_name=$2 && shift ;;
    --url) server_url=${2%/} && shift ;;
    --token) api_token=$2 && shift ;;
    --pool) pool_name=$2 && shift ;;
    --work) work_folder=$2 && shift ;;
    --auth) shift ;;
    --replace) replace=true ;;
    --unattended | --acceptTeeEula) ;;
    *) die "config.sh: unknown argument $1" ;;
  esac
  shift
done

# Environment variables as capabilities, by the rules of the real agent's EnvironmentCapabilitiesProvider.cs
# (src/Microsoft.VisualStudio.Services.Agent/Capabilities, microsoft/azure-pipelines-agent): all of them except
# its built-in ignore list, the names in VSO_AGENT_IGNORE (comma-separated, trimmed; names compared exactly, as on
# Linux) and values of 1024 characters or more. VSTS_AGENT_INPUT_* never get there: CommandSettings.cs takes them
# out of the environment first. jq counts code points where .NET counts UTF-16 units; they differ only for
# characters outside the Basic Multilingual Plane.
capabilities() {
  jq -n --arg ignore "${VSO_AGENT_IGNORE:-}" --arg name "$agent_name" --arg version "$fake_agent_version" '
    (["comp_wordbreaks", "ls_colors", "TERM", "TERM_PROGRAM", "TERM_PROGRAM_VERSION", "SHLVL", "PSMODULEPATH",
      "SYSTEM_ACCESSTOKEN"]
      + ($ignore | split(",") | map(gsub("^\\s+|\\s+$"; "")) | map(select(. != "")))) as $ignored
    | env
    | with_entries(select(
        .key != ""
        and (.key | IN($ignored[]) | not)
        and (.key | ascii_upcase | startswith("VSTS_AGENT_INPUT_") | not)
        and (.value | length) < 1024))
    + {"Agent.Name": $name, "Agent.Version": $version, "Agent.OS": "Linux"}'
}

# The fixed-length base64 of a hex number, as .NET serialises RSAParameters: big-endian, left-padded to $2 bytes.
fixed_length_base64() {
  local hex=${1#"${1%%[!0]*}"} bytes=$2
  ((${#hex} <= 2 * bytes)) || die "config.sh: a key field is longer than $bytes bytes"
  local padding=$((2 * bytes - ${#hex}))
  while ((padding-- > 0)); do hex="0$hex"; done
  printf '%s' "$hex" | tr 'a-f' 'A-F' | basenc --base16 -d | base64 -w0
}

# One field of an openssl key as hex: the colon-separated lines under its label in `openssl rsa -text`.
key_field_hex() {
  awk -v label="$2:" '$0 == label { on = 1; next } on && /^ / { gsub(/[ :]/, ""); printf "%s", $0; next } on { exit }' <<<"$1"
}

# Like the real config.sh (RSAFileKeyManager.CreateKey, src/Agent.Listener/Configuration; see
# standins/reference/agent-registration.md): a new RSA-2048 key whose public half goes with the registration,
# kept in .credentials_rsaparams (mode 600) under the names and fixed lengths the listener reads.
create_agent_key() {
  local pem text
  pem="$(openssl genrsa 2048 2>/dev/null)" || die "config.sh: could not create the agent's RSA key"
  text="$(openssl rsa -text -noout 2>/dev/null <<<"$pem")"
  (umask 077 && jq -n \
    --arg modulus "$(fixed_length_base64 "$(key_field_hex "$text" modulus)" 256)" \
    --arg exponent "$(fixed_length_base64 10001 3)" \
    --arg d "$(fixed_length_base64 "$(key_field_hex "$text" privateExponent)" 256)" \
    --arg p "$(fixed_length_base64 "$(key_field_hex "$text" prime1)" 128)" \
    --arg q "$(fixed_length_base64 "$(key_field_hex "$text" prime2)" 128)" \
    --arg dp "$(fixed_length_base64 "$(key_field_hex "$text" exponent1)" 128)" \
    --arg dq "$(fixed_length_base64 "$(key_field_hex "$text" exponent2)" 128)" \
    --arg inverseQ "$(fixed_length_base64 "$(key_field_hex "$text" coefficient)" 128)" \
    '{d: $d, dp: $dp, dq: $dq, exponent: $exponent, inverseQ: $inverseQ, modulus: $modulus, p: $p, q: $q}' \
    >"$rsa_parameters_file")
}

configure() {
  [[ -n "$agent_name" && -n "$server_url" && -n "$api_token" && -n "$pool_name" ]] ||
    die "config.sh: --agent, --url, --token (or VSTS_AGENT_INPUT_TOKEN) and --pool are required"
  if [[ -n "${FAKE_AGENT_CONFIG_SECONDS:-}" ]]; then
    echo "config.sh: configuring slowly ($FAKE_AGENT_CONFIG_SECONDS s)"
    sleep "$FAKE_AGENT_CONFIG_SECONDS"
  fi
  local pool_id agent_id registration
  api_expect GET "$server_url/_apis/distributedtask/pools?poolName=$(jq -rn --arg v "$pool_name" '$v|@uri')&api-version=7.1"
  pool_id="$(jq -r '.value[0].id // empty' <<<"$response_body")"
  [[ -n "$pool_id" ]] || die "config.sh: agent pool $pool_name not found at $server_url"

  create_agent_key
  registration="$(jq -n --arg name "$agent_name" --arg version "$fake_agent_version" \
    --arg os "$(uname -sr)" --argjson capabilities "$(capabilities)" \
    --slurpfile key "$rsa_parameters_file" \
    '{name: $name, version: $version, osDescription: $os, enabled: true, systemCapabilities: $capabilities,
      authorization: {publicKey: {exponent: $key[0].exponent, modulus: $key[0].modulus}}}')"
  local agents_url="$server_url/_apis/distributedtask/pools/$pool_id/agents"
  api_expect GET "$agents_url?agentName=$(jq -rn --arg v "$agent_name" '$v|@uri')&api-version=7.1"
  agent_id="$(jq -r '.value[0].id // empty' <<<"$response_body")"
  if [[ -n "$agent_id" ]]; then
    $replace || die "config.sh: an agent named $agent_name already exists in pool $pool_name (use --replace)"
    api_expect PUT "$agents_url/$agent_id?api-version=7.1" "$(jq --argjson id "$agent_id" '. + {id: $id}' <<<"$registration")"
    echo "Successfully replaced the agent"
  else
    api_expect POST "$agents_url?api-version=7.1" "$registration"
    agent_id="$(jq -r .id <<<"$response_body")"
    echo "Successfully added the agent"
  fi

  local client_id authorization_url
  { read -r client_id && read -r authorization_url; } <<<"$(jq -r '(.authorization.clientId // ""), (.authorization.authorizationUrl // "")' <<<"$response_body")"
  [[ -n "$client_id" && -n "$authorization_url" ]] ||
    die "config.sh: the server did not answer the registration with an OAuth client id and authorization URL"
  # OAuthCredential's data (src/Agent.Listener/Configuration/CredentialData.cs, OAuthCredential.cs): from here on
  # the listener signs in with the key, never with the registration token.
  (umask 077 && jq -n --arg clientId "$client_id" --arg url "$authorization_url" \
    '{scheme: "OAuth", data: {clientId: $clientId, authorizationUrl: $url, oauthEndpointUrl: $url}}' >"$credentials_file")
  jq -n --argjson agentId "$agent_id" --arg agentName "$agent_name" --argjson poolId "$pool_id" \
    --arg poolName "$pool_name" --arg serverUrl "$server_url" --arg workFolder "$work_folder" \
    '{agentId: $agentId, agentName: $agentName, poolId: $poolId, poolName: $poolName, serverUrl: $serverUrl, workFolder: $workFolder}' \
    >"$settings_file"
  echo "Settings Saved."
}

# Removal authenticates with the token it is given, as the real config.sh remove does, not as the agent.
remove() {
  [[ -n "$api_token" ]] || die "config.sh remove: --token (or VSTS_AGENT_INPUT_TOKEN) is required"
  load_settings
  api_expect DELETE "$server_url/_apis/distributedtask/pools/$pool_id/agents/$agent_id?api-version=7.1" "" "@(2[0-9][0-9]|404)"
  rm -f "$settings_file" "$credentials_file" "$rsa_parameters_file"
  echo "Agent removed successfully"
}

"$command"

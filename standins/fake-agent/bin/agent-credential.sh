# The stand-in listener's OAuth path, for an agent whose folder holds .agent, .credentials (scheme OAuth) and
# .credentials_rsaparams instead of a token: like the real listener it reads the RSA key, signs a JWT client
# assertion with it and exchanges it for an access token before it opens its session. With openssl and jq; the
# key only ever sits in a mode-600 temporary file that is removed at once.
# Sources (microsoft/azure-pipelines-agent; the OAuth client library as published in actions/runner src/Sdk; see
# standins/reference/agent-registration.md):
#   src/Agent.Listener/Configuration/CredentialData.cs, OAuthCredential.cs: .credentials {scheme, data: {clientId,
#     authorizationUrl, oauthEndpointUrl}}; the grant goes to oauthEndpointUrl, the audience is authorizationUrl.
#   src/Agent.Listener/Configuration/IRSAKeyManager.cs (RSAParametersSerializable reads d, dp, dq, exponent,
#     inverseQ, modulus, p, q by exact, case-sensitive name; a missing one throws "Member 'modulus' was not found."),
#     RSAFileKeyManager.cs (plain JSON on Linux), then RSA.ImportParameters, which requires D as long as the
#     modulus and P, Q, DP, DQ, InverseQ half as long (dotnet/runtime, RSAOpenSsl ImportParameters).
#   VssOAuthJwtBearerAssertion.cs, JsonWebToken.cs, VssOAuthConstants.cs: RS256, iss = sub = clientId,
#     aud = authorizationUrl, jti, nbf, exp = nbf + 300; grant_type=client_credentials with
#     client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer.
# The real listener exits with 2 when it cannot read its settings or credentials (agent-registration.md); the
# stand-in does the same for a key file it refuses (inferred: the exception surfaces while loading credentials).

# shellcheck shell=bash
# shellcheck disable=SC2154 # agent_root, credentials_file and rsa_parameters_file come from common.sh, which sources this file
readonly unreadable_credentials=2
readonly invalid_rsa_parameters="The specified RSA parameters are not valid. Exponent and Modulus are required. If D is present, it must have the same length as Modulus. If D is present, P, Q, DP, DQ, and InverseQ are required and must have half the length of Modulus, rounded up, otherwise they must be omitted."

credential_failure() {
  printf '%s\n' "$*" >&2
  exit "$unreadable_credentials"
}

base64url() {
  base64 -w0 | tr '+/' '-_' | tr -d '='
}

readonly rsa_parameter_names=(d dp dq exponent inverseQ modulus p q)
# The bytes of each base64 field of the key file as hex, for openssl's ASN.1 generator.
declare -A rsa_parameter_hex=()

# Byte length of a field.
parameter_bytes() {
  printf '%s' $((${#rsa_parameter_hex[$1]} / 2))
}

# Refuses the key file as the agent would: exact key names, then .NET's fixed lengths for a key of at least 2048 bits.
check_rsa_parameters() {
  # One jq reads the file (each jq start costs about 25 ms of CPU): "object" or "not an object", the first
  # missing name or an empty line, then the fields in rsa_parameter_names' order.
  local lines
  lines="$(jq -r 'if type != "object" then "not an object" else
      "object",
      (. as $file | [$ARGS.positional[] | . as $name | select(($file | has($name) and (.[$name] | type == "string")) | not)] | first // ""),
      (.[$ARGS.positional[]] | strings)
    end' "$rsa_parameters_file" --args "${rsa_parameter_names[@]}" 2>/dev/null)" || lines="not an object"
  local fields
  mapfile -t fields <<<"$lines"
  [[ "${fields[0]}" == "object" ]] || credential_failure "Agent.Listener: $rsa_parameters_file is not a JSON object."
  [[ -z "${fields[1]}" ]] || credential_failure "Agent.Listener: Member '${fields[1]}' was not found."
  local index
  for index in "${!rsa_parameter_names[@]}"; do
    rsa_parameter_hex[${rsa_parameter_names[$index]}]="$(printf '%s' "${fields[$((index + 2))]}" | base64 -d | od -An -v -tx1 | tr -d ' \n')"
  done
  local modulus_bytes half name
  modulus_bytes="$(parameter_bytes modulus)"
  half=$(((modulus_bytes + 1) / 2))
  ((modulus_bytes >= 256)) || credential_failure "Agent.Listener: the agent key has fewer than 2048 bits."
  (($(parameter_bytes exponent) > 0)) || credential_failure "Agent.Listener: $invalid_rsa_parameters"
  (($(parameter_bytes d) == modulus_bytes)) || credential_failure "Agent.Listener: $invalid_rsa_parameters"
  for name in p q dp dq inverseQ; do
    (($(parameter_bytes "$name") == half)) || credential_failure "Agent.Listener: $invalid_rsa_parameters"
  done
}

# Writes the key as a PKCS#1 DER file (RSAPrivateKey: version, n, e, d, p, q, dp, dq, qi) to $1.
write_private_key() {
  local der_file=$1 config_file
  config_file="$(mktemp)"
  {
    echo "asn1=SEQUENCE:rsa_key"
    echo "[rsa_key]"
    echo "version=INTEGER:0"
    echo "modulus=INTEGER:0x${rsa_parameter_hex[modulus]}"
    echo "publicExponent=INTEGER:0x${rsa_parameter_hex[exponent]}"
    echo "privateExponent=INTEGER:0x${rsa_parameter_hex[d]}"
    echo "prime1=INTEGER:0x${rsa_parameter_hex[p]}"
    echo "prime2=INTEGER:0x${rsa_parameter_hex[q]}"
    echo "exponent1=INTEGER:0x${rsa_parameter_hex[dp]}"
    echo "exponent2=INTEGER:0x${rsa_parameter_hex[dq]}"
    echo "coefficient=INTEGER:0x${rsa_parameter_hex[inverseQ]}"
  } >"$config_file"
  openssl asn1parse -genconf "$config_file" -out "$der_file" -noout >/dev/null
  rm -f "$config_file"
}

# Exchanges a signed client assertion for an access token; sets api_token and api_scheme=Bearer.
# The real listener does this on the 401 of its first call; the stand-in does it up front (same requests otherwise).
oauth_sign_in() {
  local scheme client_id authorization_url token_url now header claims signed_part der_file signature credential
  credential="$(jq -r '(.scheme // ""), (.data.clientId // ""), (.data.authorizationUrl // ""),
    (.data.oauthEndpointUrl // .data.authorizationUrl // "")' "$credentials_file")"
  { read -r scheme && read -r client_id && read -r authorization_url && read -r token_url; } <<<"$credential"
  [[ "$scheme" == "OAuth" ]] || credential_failure "Agent.Listener: $credentials_file has no OAuth credential."
  [[ -n "$client_id" && -n "$authorization_url" ]] ||
    credential_failure "Agent.Listener: $credentials_file needs clientId and authorizationUrl."
  check_rsa_parameters

  now="$(date +%s)"
  header="$(printf '{"typ":"JWT","alg":"RS256"}' | base64url)"
  claims="$(jq -cnj --arg client "$client_id" --arg audience "$authorization_url" --arg jti "$(cat /proc/sys/kernel/random/uuid)" \
    --argjson now "$now" '{iss: $client, sub: $client, aud: $audience, jti: $jti, nbf: $now, exp: ($now + 300)}' | base64url)"
  signed_part="$header.$claims"
  der_file="$(umask 077 && mktemp)"
  write_private_key "$der_file"
  signature="$(printf '%s' "$signed_part" | openssl dgst -sha256 -sign "$der_file" -keyform DER | base64url)" || {
    rm -f "$der_file"
    credential_failure "Agent.Listener: the agent key could not sign."
  }
  rm -f "$der_file"

  local body_file status
  body_file="$(mktemp)"
  status="$(curl --silent --show-error --max-time 60 --output "$body_file" --write-out '%{http_code}' \
    --data-urlencode "grant_type=client_credentials" \
    --data-urlencode "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer" \
    --data-urlencode "client_assertion=$signed_part.$signature" "$token_url")" ||
    die "POST $token_url failed: could not reach the server"
  if [[ "$status" != 200 ]]; then
    local answer
    answer="$(<"$body_file")"
    rm -f "$body_file"
    die "Agent.Listener: the token exchange at $token_url failed with HTTP $status: $answer"
  fi
  api_token="$(jq -r '.access_token // empty' "$body_file")"
  rm -f "$body_file"
  [[ -n "$api_token" ]] || die "Agent.Listener: the token endpoint gave no access_token."
  # shellcheck disable=SC2034 # read by api() in common.sh
  api_scheme="Bearer"
  echo "Agent.Listener: signed in with the agent's own credential"
}

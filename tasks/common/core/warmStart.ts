import {
  AGENT_KEY_BITS,
  agentSettingsFile,
  credentialsFile,
  type AgentAuthorization,
  type AgentPublicKey,
  type AgentSettings,
} from "./agentCredential";

/**
 * The agent image's warm mode (images/agent/start.sh): the container makes its own RSA key at boot and prints one
 * line, this marker and the public half as JSON, then waits for its settings as files named by WARM_SETTINGS_KEYS.
 */
export const PUBLIC_KEY_MARKER = "EPHEMERAL_AGENT_PUBLIC_KEY";

/**
 * What a claimed container is handed, by file name: the .agent and .credentials files (the private key stays in
 * the container) and, as a JSON object, the environment a cold container would have had. None of it is secret.
 */
export interface WarmAgentSettings {
  agent: string;
  credentials: string;
  environment: string;
}

export const WARM_SETTINGS_KEYS: readonly (keyof WarmAgentSettings)[] = [
  "agent",
  "credentials",
  "environment",
];

export function warmAgentSettings(
  settings: AgentSettings,
  authorization: AgentAuthorization,
  environment: Readonly<Record<string, string>>,
): WarmAgentSettings {
  return {
    agent: agentSettingsFile(settings),
    credentials: credentialsFile(authorization),
    environment: JSON.stringify(environment),
  };
}

/**
 * The public key the container printed: the last marker line of its log, so that a container that printed one,
 * restarted and made a new key is read right. Undefined when there is none yet; an error when the line is not a
 * public key, since waiting longer would not mend it.
 */
export function publicKeyInLog(log: string): AgentPublicKey | undefined {
  const line = log
    .split(/\r?\n/)
    .map((candidate) => candidate.trim())
    .filter((candidate) => candidate.startsWith(`${PUBLIC_KEY_MARKER} `))
    .at(-1);
  if (line === undefined) return undefined;
  const text = line.slice(PUBLIC_KEY_MARKER.length + 1);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(
      `The container printed a ${PUBLIC_KEY_MARKER} line that is not JSON: ${text.slice(0, 80)}`,
    );
  }
  const { exponent, modulus } = (parsed ?? {}) as Record<string, unknown>;
  if (!isBase64(exponent) || !isBase64(modulus)) {
    throw new Error(
      `The container's ${PUBLIC_KEY_MARKER} line has no base64 exponent and modulus: is the image's start script of another version?`,
    );
  }
  const modulusBits = Buffer.from(modulus, "base64").length * 8;
  if (modulusBits < AGENT_KEY_BITS) {
    throw new Error(`The container's public key has ${modulusBits} bits; the agent needs ${AGENT_KEY_BITS}.`);
  }
  return { exponent, modulus };
}

function isBase64(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(value);
}

import { createPrivateKey, generateKeyPair, type JsonWebKey, type KeyObject } from "node:crypto";

/**
 * The agent's own credential, made the way config.sh makes it, so that the listener (run.sh --once) can start
 * without config.sh and without a registration token. File names, key names and encodings follow
 * microsoft/azure-pipelines-agent (standins/reference/agent-registration.md has the details and the commit):
 * src/Microsoft.VisualStudio.Services.Agent/ConfigurationStore.cs (AgentSettings, the .agent file),
 * src/Agent.Listener/Configuration/CredentialData.cs and OAuthCredential.cs (the .credentials file),
 * src/Agent.Listener/Configuration/IRSAKeyManager.cs (RSAParametersSerializable) and RSAFileKeyManager.cs
 * (the .credentials_rsaparams file).
 */

export const AGENT_KEY_BITS = 2048;

/** The public half, as TaskAgentPublicKey carries it in a registration: standard base64 of big-endian bytes. */
export interface AgentPublicKey {
  exponent: string;
  modulus: string;
}

export interface AgentKey {
  privateKey: KeyObject;
  publicKey: AgentPublicKey;
}

export interface AgentSettings {
  agentId: number;
  agentName: string;
  poolId: number;
  poolName: string;
  /** The collection URL the agent talks to. */
  serverUrl: string;
  workFolder: string;
}

/** What the registration answer's `authorization` holds; OAuth credentials exist only when both are there. */
export interface AgentAuthorization {
  clientId: string;
  authorizationUrl: string;
}

export type AgentCredentialFileName = ".agent" | ".credentials" | ".credentials_rsaparams";

/** The three files the listener reads from its root folder, by name. Contents hold the private key: keep them out of logs. */
export type AgentCredentialFiles = Readonly<Record<AgentCredentialFileName, string>>;

export const AGENT_CREDENTIAL_FILE_NAMES: readonly AgentCredentialFileName[] = [
  ".agent",
  ".credentials",
  ".credentials_rsaparams",
];

/**
 * Byte lengths .NET's RSA.ImportParameters requires for a key with an n-byte modulus: D as long as the
 * modulus, P, Q, DP, DQ and InverseQ half of it (rounded up). ExportParameters writes them at these lengths,
 * left-padded with zeros; a JWK export is minimal-length, so a field with leading zero bytes comes out short.
 */
export function rsaParameterLengths(
  modulusBytes: number,
): Record<"d" | "p" | "q" | "dp" | "dq" | "inverseQ", number> {
  const half = Math.ceil(modulusBytes / 2);
  return { d: modulusBytes, p: half, q: half, dp: half, dq: half, inverseQ: half };
}

export async function generateAgentKey(): Promise<AgentKey> {
  const privateKey = await new Promise<KeyObject>((resolve, reject) => {
    generateKeyPair(
      "rsa",
      { modulusLength: AGENT_KEY_BITS, publicExponent: 0x10001 },
      (error, _publicKey, key) => (error ? reject(error) : resolve(key)),
    );
  });
  return agentKeyFrom(privateKey);
}

export function agentKeyFrom(privateKey: KeyObject): AgentKey {
  const jwk = privateJwk(privateKey);
  return {
    privateKey,
    publicKey: {
      exponent: unsigned(jwk.e).toString("base64"),
      modulus: unsigned(jwk.n).toString("base64"),
    },
  };
}

/** The .credentials_rsaparams file: the private key as .NET's RSAParameters, through RSAParametersSerializable. */
export function rsaParametersFile(privateKey: KeyObject): string {
  const jwk = privateJwk(privateKey);
  const modulus = unsigned(jwk.n);
  const lengths = rsaParameterLengths(modulus.length);
  // ContainerName and UseCng are what the agent's serializer writes besides the eight parameters; empty and
  // false mean "the key is in this file" (IRSAKeyManager.cs).
  return JSON.stringify({
    ContainerName: "",
    UseCng: false,
    d: fixedLength(jwk.d, lengths.d),
    dp: fixedLength(jwk.dp, lengths.dp),
    dq: fixedLength(jwk.dq, lengths.dq),
    exponent: unsigned(jwk.e).toString("base64"),
    inverseQ: fixedLength(jwk.qi, lengths.inverseQ),
    modulus: modulus.toString("base64"),
    p: fixedLength(jwk.p, lengths.p),
    q: fixedLength(jwk.q, lengths.q),
  });
}

/**
 * Reads a .credentials_rsaparams file back into a key, as strictly as the agent does: the eight key names are
 * case-sensitive (RSAParametersSerializable reads them by exact name), and every field must have the length
 * .NET's ImportParameters requires.
 */
export function privateKeyFromRsaParametersFile(content: string): KeyObject {
  const parsed = JSON.parse(content.replace(/^\uFEFF/, "")) as Record<string, unknown>;
  const field = (name: string): Buffer => {
    const value = parsed[name];
    if (typeof value !== "string" || value === "") throw new Error(`The RSA parameters have no ${name}.`);
    return Buffer.from(value, "base64");
  };
  const modulus = field("modulus");
  const exponent = field("exponent");
  if (modulus.length * 8 < AGENT_KEY_BITS)
    throw new Error(`The modulus has ${modulus.length} bytes; at least 256 are needed.`);
  const lengths = rsaParameterLengths(modulus.length);
  const fields = Object.fromEntries(
    Object.entries(lengths).map(([name, length]) => {
      const bytes = field(name);
      if (bytes.length !== length)
        throw new Error(`The RSA parameter ${name} has ${bytes.length} bytes; ${length} are needed.`);
      return [name, bytes];
    }),
  ) as Record<keyof typeof lengths, Buffer>;
  return createPrivateKey({
    format: "jwk",
    key: {
      kty: "RSA",
      n: modulus.toString("base64url"),
      e: exponent.toString("base64url"),
      d: fields.d.toString("base64url"),
      p: fields.p.toString("base64url"),
      q: fields.q.toString("base64url"),
      dp: fields.dp.toString("base64url"),
      dq: fields.dq.toString("base64url"),
      qi: fields.inverseQ.toString("base64url"),
    },
  });
}

/** The .agent file. Keys the agent would read as "hosted", "deployment group" or "environment" are left out. */
export function agentSettingsFile(settings: AgentSettings): string {
  return JSON.stringify({
    agentId: settings.agentId,
    agentName: settings.agentName,
    poolId: settings.poolId,
    poolName: settings.poolName,
    serverUrl: settings.serverUrl,
    workFolder: settings.workFolder,
  });
}

/**
 * The .credentials file. On Azure DevOps Services the token endpoint (oauthEndpointUrl) is the authorization
 * URL itself, which is also the JWT audience (ConfigurationManager.cs, UpdateCredentialData).
 */
export function credentialsFile(authorization: AgentAuthorization): string {
  return JSON.stringify({
    scheme: "OAuth",
    data: {
      clientId: authorization.clientId,
      authorizationUrl: authorization.authorizationUrl,
      oauthEndpointUrl: authorization.authorizationUrl,
    },
  });
}

export function agentCredentialFiles(
  settings: AgentSettings,
  authorization: AgentAuthorization,
  key: AgentKey,
): AgentCredentialFiles {
  return {
    ".agent": agentSettingsFile(settings),
    ".credentials": credentialsFile(authorization),
    ".credentials_rsaparams": rsaParametersFile(key.privateKey),
  };
}

type PrivateJwk = Required<Pick<JsonWebKey, "n" | "e" | "d" | "p" | "q" | "dp" | "dq" | "qi">>;

function privateJwk(privateKey: KeyObject): PrivateJwk {
  const jwk = privateKey.export({ format: "jwk" });
  const names = ["n", "e", "d", "p", "q", "dp", "dq", "qi"] as const;
  if (jwk.kty !== "RSA" || names.some((name) => typeof jwk[name] !== "string"))
    throw new Error("The agent key must be an RSA private key.");
  return jwk as PrivateJwk;
}

function unsigned(base64url: string): Buffer {
  return Buffer.from(base64url, "base64url");
}

/** Standard base64 of the big-endian integer, left-padded with zeros to exactly `length` bytes. */
function fixedLength(base64url: string, length: number): string {
  const bytes = unsigned(base64url);
  if (bytes.length > length)
    throw new Error(`An RSA parameter has ${bytes.length} bytes; at most ${length} fit.`);
  return Buffer.concat([Buffer.alloc(length - bytes.length), bytes]).toString("base64");
}

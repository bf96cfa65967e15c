/**
 * What the start task writes onto each container (ACI tags, Docker labels) and into its environment, so that
 * the agent image, the next job's demand and the teardown task can all find and recognise it.
 */
export const TAG = {
  runKey: "ephemeral-agent-run-key",
  pool: "ephemeral-agent-pool",
  agentName: "ephemeral-agent-name",
  created: "ephemeral-agent-created",
  lifetimeMinutes: "ephemeral-agent-lifetime-minutes",
} as const;

export const ENV = {
  url: "AZP_URL",
  token: "AZP_TOKEN",
  tokenFile: "AZP_TOKEN_FILE",
  pool: "AZP_POOL",
  agentName: "AZP_AGENT_NAME",
  work: "AZP_WORK",
  runKey: "EPHEMERAL_AGENT_RUN",
  lifetimeMinutes: "EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES",
  /** The agent's own credential files (registration agentCredential), as a secure value where files cannot go. */
  agentCredential: "AZP_AGENT_CREDENTIAL",
  agentPackageUrl: "AZP_AGENT_PACKAGE_URL",
  agentPackageSha256: "AZP_AGENT_PACKAGE_SHA256",
} as const;

/** The ways an agent is registered: by the task, with the agent's own credential, or by config.sh with a token. */
export type RegistrationMode = "agentCredential" | "token";

/** Names the user's `environment` input may not set. */
export const RESERVED_ENVIRONMENT: readonly string[] = [
  ...Object.values(ENV),
  "VSO_AGENT_IGNORE",
  // The Docker provider gives each agent its own, empty Docker configuration.
  "DOCKER_CONFIG",
];

/** The capability the next job demands to land on this run's agents. */
export function demandFor(runKey: string): string {
  return `${ENV.runKey} -equals ${runKey}`;
}

export interface AgentIdentity {
  name: string;
  pool: string;
  runKey: string;
  created: Date;
  lifetimeMinutes: number;
}

export function tagsFor(agent: AgentIdentity): Record<string, string> {
  return {
    [TAG.runKey]: agent.runKey,
    [TAG.pool]: agent.pool,
    [TAG.agentName]: agent.name,
    [TAG.created]: agent.created.toISOString(),
    [TAG.lifetimeMinutes]: String(agent.lifetimeMinutes),
  };
}

/** Reads tags or labels back; undefined when they are not ours or are incomplete. */
export function identityFromTags(
  tags: Readonly<Record<string, string>> | undefined,
): AgentIdentity | undefined {
  if (!tags) return undefined;
  const name = tags[TAG.agentName];
  const pool = tags[TAG.pool];
  const runKey = tags[TAG.runKey];
  const created = new Date(tags[TAG.created] ?? "");
  const lifetimeMinutes = Number(tags[TAG.lifetimeMinutes]);
  if (!name || !pool || !runKey || Number.isNaN(created.getTime()) || !Number.isFinite(lifetimeMinutes)) {
    return undefined;
  }
  return { name, pool, runKey, created, lifetimeMinutes };
}

/** The visible environment of an agent container; the token travels separately, as a secret. */
export function agentEnvironment(
  agent: AgentIdentity,
  collectionUrl: string,
  extra: Readonly<Record<string, string>>,
): Record<string, string> {
  return {
    ...extra,
    [ENV.url]: collectionUrl,
    [ENV.pool]: agent.pool,
    [ENV.agentName]: agent.name,
    [ENV.runKey]: agent.runKey,
    [ENV.lifetimeMinutes]: String(agent.lifetimeMinutes),
  };
}

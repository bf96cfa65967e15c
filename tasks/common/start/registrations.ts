import type { AgentAuthorization, AgentPublicKey, AgentSettings } from "../core/agentCredential";
import { ENV } from "../core/contract";
import { UserError } from "../core/errors";
import type { Pool, PoolAccess } from "../core/ports";

/** What the agents of one start are registered with. */
export interface RegistrationSettings {
  runKey: string;
  /** The collection URL, written to .agent as the agent's serverUrl. */
  collectionUrl: string;
  /** The agent version the registrations carry: the package the containers run, when known. */
  agentVersion?: string;
  workFolder: string;
}

/** An agent the task registered: its .agent settings and the OAuth client it signs in with. */
export interface AgentRegistration {
  settings: AgentSettings;
  authorization: AgentAuthorization;
}

/**
 * Registers one agent as config.sh would: the public half of its RSA-2048 key, maxParallelism 1 and the run key
 * as a system capability. Throws when the server gives it no OAuth client; the registration then exists, and is
 * the caller's to remove.
 */
export async function registerAgent(
  name: string,
  publicKey: AgentPublicKey,
  pool: Pool,
  settings: RegistrationSettings,
  pools: Pick<PoolAccess, "registerAgent">,
): Promise<AgentRegistration> {
  const agent = await pools.registerAgent(pool, {
    name,
    version: settings.agentVersion,
    publicKey,
    systemCapabilities: { [ENV.runKey]: settings.runKey },
  });
  if (!agent.clientId || !agent.authorizationUrl) {
    throw new UserError(
      `Azure DevOps registered agent ${name} but gave it no OAuth client (authorization.clientId and authorizationUrl), so the agent could not sign in with its own credential: set registration to token for this server.`,
    );
  }
  return {
    settings: {
      agentId: agent.id,
      agentName: name,
      poolId: pool.id,
      poolName: pool.name,
      serverUrl: settings.collectionUrl.replace(/\/+$/, ""),
      workFolder: settings.workFolder,
    },
    authorization: { clientId: agent.clientId, authorizationUrl: agent.authorizationUrl },
  };
}

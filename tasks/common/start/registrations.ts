import { agentCredentialFiles, type AgentCredentialFiles, type AgentKey } from "../core/agentCredential";
import { ENV } from "../core/contract";
import { UserError } from "../core/errors";
import type { Pool, PoolAccess } from "../core/ports";
import { throwIfCancelled } from "../core/timing";

/** What the agents of one start are registered with. */
export interface RegistrationSettings {
  runKey: string;
  /** The collection URL, written to .agent as the agent's serverUrl. */
  collectionUrl: string;
  /** The agent version the registrations carry: the package the containers run, when known. */
  agentVersion?: string;
  workFolder: string;
}

/**
 * Registers each agent as config.sh would (a new RSA-2048 key from newAgentKey, its public half in the registration, maxParallelism
 * 1, the run key as a system capability) and writes its credential files. `onRegistered` hears of each
 * registration as soon as it exists, so that a failure or cancellation later on can remove it.
 */
export async function registerAgents(
  names: readonly string[],
  pool: Pool,
  settings: RegistrationSettings,
  { pools, newAgentKey }: { pools: Pick<PoolAccess, "registerAgent">; newAgentKey: () => Promise<AgentKey> },
  signal: AbortSignal,
  onRegistered: (name: string, agentId: number) => void,
): Promise<Map<string, AgentCredentialFiles>> {
  // Every registration settles before a failure is thrown, so that onRegistered has heard of all of them.
  const outcomes = await Promise.allSettled(
    names.map(async (name): Promise<[string, AgentCredentialFiles]> => {
      const key = await newAgentKey();
      throwIfCancelled(signal);
      const agent = await pools.registerAgent(pool, {
        name,
        version: settings.agentVersion,
        publicKey: key.publicKey,
        systemCapabilities: { [ENV.runKey]: settings.runKey },
      });
      onRegistered(name, agent.id);
      if (!agent.clientId || !agent.authorizationUrl) {
        throw new UserError(
          `Azure DevOps registered agent ${name} but gave it no OAuth client (authorization.clientId and authorizationUrl), so the agent could not sign in with its own credential: set registration to token for this server.`,
        );
      }
      const files = agentCredentialFiles(
        {
          agentId: agent.id,
          agentName: name,
          poolId: pool.id,
          poolName: pool.name,
          serverUrl: settings.collectionUrl.replace(/\/+$/, ""),
          workFolder: settings.workFolder,
        },
        { clientId: agent.clientId, authorizationUrl: agent.authorizationUrl },
        key,
      );
      return [name, files];
    }),
  );
  const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === "rejected");
  if (failed) throw failed.reason;
  return new Map(
    outcomes.map((outcome) => (outcome as PromiseFulfilledResult<[string, AgentCredentialFiles]>).value),
  );
}

import * as azdev from "azure-devops-node-api";
import type { ITaskAgentApi } from "azure-devops-node-api/TaskAgentApi";
import {
  TaskAgentStatus,
  TaskResult,
  type TaskAgent,
} from "azure-devops-node-api/interfaces/TaskAgentInterfaces";
import { ENV } from "../core/contract";
import type { Pool, PoolAccess, PoolAgent } from "../core/ports";
import { AccessError, InputError, UserError, errorMessage, httpStatusOf } from "../core/errors";
import { withRetries, type RetryPolicy } from "../core/retry";

/** The DistributedTask security namespace and its Manage bit: registering agents in a pool needs it. */
const DISTRIBUTED_TASK_NAMESPACE = "101eae8c-1709-47f9-b228-0e476c35b3ba";
const MANAGE_PERMISSION = 2;

const RESULT_NAMES: Record<number, string> = {
  [TaskResult.Succeeded]: "succeeded",
  [TaskResult.SucceededWithIssues]: "succeeded with issues",
  [TaskResult.Failed]: "failed",
  [TaskResult.Canceled]: "canceled",
  [TaskResult.Skipped]: "skipped",
  [TaskResult.Abandoned]: "abandoned",
};

export function toPoolAgent(agent: TaskAgent): PoolAgent {
  const assigned = agent.assignedRequest;
  const last = agent.lastCompletedRequest;
  const capabilities = { ...agent.systemCapabilities, ...agent.userCapabilities };
  return {
    id: agent.id ?? 0,
    name: agent.name ?? "",
    online: agent.status === TaskAgentStatus.Online,
    currentJob:
      assigned && !assigned.finishTime
        ? { name: assigned.jobName ?? "a job", since: assigned.assignTime }
        : undefined,
    lastJob: last
      ? {
          name: last.jobName ?? "a job",
          result: RESULT_NAMES[last.result ?? -1] ?? "unknown",
          finished: last.finishTime,
        }
      : undefined,
    createdOn: agent.createdOn,
    runKey: capabilities[ENV.runKey],
  };
}

/** Agent pools and agents of one organization, reached with one token. */
export class AzureDevOpsPools implements PoolAccess {
  private constructor(
    private readonly connection: azdev.WebApi,
    private readonly agents: ITaskAgentApi,
    private readonly collectionUrl: string,
    private readonly retryPolicy: RetryPolicy,
    private readonly signal: AbortSignal,
  ) {}

  static async connect(
    collectionUrl: string,
    token: string,
    retryPolicy: RetryPolicy,
    signal: AbortSignal,
  ): Promise<AzureDevOpsPools> {
    // One retry layer, ours: the client's own retries skip 429 and Retry-After.
    const connection = new azdev.WebApi(collectionUrl, azdev.getHandlerFromToken(token), {
      allowRetries: false,
    });
    const agents = await withRetries(() => connection.getTaskAgentApi(), retryPolicy, signal);
    return new AzureDevOpsPools(connection, agents, collectionUrl, retryPolicy, signal);
  }

  /** The pool by name; a clear error when it is missing or cannot take self-hosted agents. */
  async findPool(name: string): Promise<Pool> {
    const pools = await this.call(`look up agent pool '${name}'`, () => this.agents.getAgentPools(name));
    const pool = (pools ?? []).find((candidate) => candidate.name?.toLowerCase() === name.toLowerCase());
    if (!pool?.id) {
      throw new InputError(
        "agentPool",
        `agent pool '${name}' was not found in ${this.collectionUrl}: create it under Organization settings > Agent pools (type self-hosted), or fix the name.`,
      );
    }
    if (pool.isHosted) {
      throw new InputError(
        "agentPool",
        `'${name}' is a Microsoft-hosted pool: name a self-hosted agent pool.`,
      );
    }
    return { id: pool.id, name: pool.name ?? name };
  }

  /** Fails when the token's identity cannot register and remove agents in the pool. */
  async checkCanManage(pool: Pool): Promise<void> {
    const url = `${this.baseUrl}/_apis/permissions/${DISTRIBUTED_TASK_NAMESPACE}/${MANAGE_PERMISSION}?tokens=AgentPools/${pool.id}&api-version=7.1`;
    const answer = await this.call(`check the permissions on agent pool '${pool.name}'`, async () => {
      const response = await this.connection.rest.get<{ value?: boolean[] }>(url);
      return response.result;
    });
    if (answer?.value?.[0] !== true) throw await this.missingRole(pool);
  }

  /** All agents of the pool, with what they run and their capabilities, in one request. */
  async listAgents(pool: Pool): Promise<PoolAgent[]> {
    const agents = await this.call(`list the agents of pool '${pool.name}'`, () =>
      this.agents.getAgents(pool.id, undefined, true, true, true),
    );
    return (agents ?? []).map(toPoolAgent);
  }

  /** Removes an agent registration; resolves false when it was already gone. */
  async deleteAgent(pool: Pool, agentId: number): Promise<boolean> {
    // Sent directly: the typed client resolves a 404 like a success, and "already gone" is worth telling apart.
    const url = `${this.baseUrl}/_apis/distributedtask/pools/${pool.id}/agents/${agentId}?api-version=7.1`;
    try {
      const response = await withRetries(() => this.connection.rest.del(url), this.retryPolicy, this.signal);
      return response.statusCode !== 404;
    } catch (error) {
      if (httpStatusOf(error) === 404) return false;
      if (httpStatusOf(error) === 403) throw await this.missingRole(pool);
      throw this.explain(error, `remove agent ${agentId} from pool '${pool.name}'`);
    }
  }

  private get baseUrl(): string {
    return this.collectionUrl.replace(/\/+$/, "");
  }

  private async missingRole(pool: Pool): Promise<AccessError> {
    const identity = await this.identityName();
    return new AccessError(
      `${identity} may not manage agent pool '${pool.name}': give it the Administrator role on the pool (Organization settings > Agent pools > ${pool.name} > Security). With the job's access token the identity is the project's build service ('<project> Build Service (<organization>)').`,
    );
  }

  private async identityName(): Promise<string> {
    try {
      const data = await this.connection.connect();
      const user = data.authenticatedUser;
      const name = user?.providerDisplayName ?? user?.customDisplayName;
      return name ? `The identity '${name}'` : "The token's identity";
    } catch {
      return "The token's identity";
    }
  }

  private async call<T>(action: string, request: () => Promise<T>): Promise<T> {
    try {
      return await withRetries(request, this.retryPolicy, this.signal);
    } catch (error) {
      throw this.explain(error, action);
    }
  }

  private explain(error: unknown, action: string): Error {
    if (error instanceof UserError) return error;
    const status = httpStatusOf(error);
    if (status === 401) {
      return new AccessError(
        `Azure DevOps rejected the token when trying to ${action} (HTTP 401): leave 'token' empty to use the job's access token, or give a personal access token that has not expired with the Agent Pools (read & manage) scope.`,
      );
    }
    if (status === 403) {
      return new AccessError(
        `The token may not ${action} (HTTP 403): its identity needs the Administrator role on the agent pool (Organization settings > Agent pools > Security).`,
      );
    }
    return new Error(`Could not ${action}${status ? ` (HTTP ${status})` : ""}: ${errorMessage(error)}`);
  }
}

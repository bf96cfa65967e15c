import { createDecipheriv } from "node:crypto";
import { readFileSync } from "node:fs";
import { platform, release } from "node:os";
import { BearerCredentialHandler } from "azure-devops-node-api/handlers/bearertoken";
import { PersonalAccessTokenCredentialHandler } from "azure-devops-node-api/handlers/personalaccesstoken";
import type {
  IRequestHandler,
  IRequestOptions,
} from "azure-devops-node-api/interfaces/common/VsoBaseInterfaces";
import { LocationsApi } from "azure-devops-node-api/LocationsApi";
import { TaskAgentApi, type ITaskAgentApi } from "azure-devops-node-api/TaskAgentApi";
import { version as nodeApiVersion } from "azure-devops-node-api/package.json";
import {
  TaskAgentPoolActionFilter,
  TaskAgentStatus,
  TaskResult,
  type TaskAgent,
  type TaskAgentJobRequest,
} from "azure-devops-node-api/interfaces/TaskAgentInterfaces";
import { ENV } from "../core/contract";
import type { Log } from "../core/log";
import type {
  AgentPackage,
  NewAgentRegistration,
  Pool,
  PoolAccess,
  JobTimes,
  PoolAgent,
  RegisteredAgent,
} from "../core/ports";
import type { ConnectionData } from "azure-devops-node-api/interfaces/LocationsInterfaces";
import { AccessError, InputError, UserError, errorMessage, httpStatusOf } from "../core/errors";
import { withRetries, type RetryPolicy } from "../core/retry";

/** The agents resource of the distributedtask area (TaskAgentApiBase.deleteAgent's location id). */
const AGENTS_LOCATION_ID = "e298ef32-5878-4cab-993c-043836571f42";

/**
 * Asks Azure DevOps for a 401 instead of its HTML sign-in page (203) when the token is not valid; Azure SDK for
 * C++ sends it for the same reason (github.com/Azure/azure-sdk-for-cpp/pull/6019).
 */
const SUPPRESS_SIGN_IN_REDIRECT = { "X-TFS-FedAuthRedirect": "Suppress" };

type RestClient = LocationsApi["rest"];

/** The answer Azure DevOps gives a bad token when it redirects to its sign-in page. */
class SignInPageError extends Error {
  readonly statusCode = 203;
}

/**
 * Makes a 2xx answer that is not JSON fail like a refused token: the typed client would otherwise read the
 * sign-in page as an empty result ("no such pool", "no agents").
 */
function refuseSignInPages(rest: RestClient): void {
  const http = rest.client;
  const send = http.request.bind(http);
  http.request = async (verb, requestUrl, data, headers) => {
    const response = await send(verb, requestUrl, data, headers);
    const status = response.message.statusCode ?? 0;
    const contentType = response.message.headers["content-type"];
    const notJson = contentType !== undefined && !/json/i.test(contentType);
    if (status === 203 || (status >= 200 && status < 300 && notJson)) {
      response.message.resume();
      throw new SignInPageError(
        `Azure DevOps answered ${verb} ${new URL(requestUrl).pathname} with a sign-in page (HTTP ${status}) instead of data`,
      );
    }
    return response;
  };
}

const RESULT_NAMES: Record<number, string> = {
  [TaskResult.Succeeded]: "succeeded",
  [TaskResult.SucceededWithIssues]: "succeeded with issues",
  [TaskResult.Failed]: "failed",
  [TaskResult.Canceled]: "canceled",
  [TaskResult.Skipped]: "skipped",
  [TaskResult.Abandoned]: "abandoned",
};

/**
 * A job request's times (TaskAgentJobRequest in the REST spec): queued when the job was queued, started when the
 * agent received it (receiveTime; assignTime, when the server reserved the agent, before that), finished when done.
 */
function jobTimes(request: TaskAgentJobRequest): JobTimes {
  return {
    queued: request.queueTime,
    started: request.receiveTime ?? request.assignTime,
    finished: request.finishTime,
  };
}

export function toPoolAgent(agent: TaskAgent): PoolAgent {
  const assigned = agent.assignedRequest;
  const last = agent.lastCompletedRequest;
  const capabilities = { ...agent.systemCapabilities, ...agent.userCapabilities };
  return {
    id: agent.id ?? 0,
    name: agent.name ?? "",
    online: agent.status === TaskAgentStatus.Online,
    statusChangedOn: agent.statusChangedOn,
    currentJob:
      assigned && !assigned.finishTime
        ? { name: assigned.jobName ?? "a job", ...jobTimes(assigned) }
        : undefined,
    lastJob: last
      ? {
          name: last.jobName ?? "a job",
          result: RESULT_NAMES[last.result ?? -1] ?? "unknown",
          ...jobTimes(last),
        }
      : undefined,
    createdOn: agent.createdOn,
    runKey: capabilities[ENV.runKey],
  };
}

/** Agent pools and agents of one organization, reached with one token. */
export class AzureDevOpsPools implements PoolAccess {
  private constructor(
    private readonly connection: LocationsApi,
    private readonly agents: ITaskAgentApi,
    private readonly collectionUrl: string,
    private readonly retryPolicy: RetryPolicy,
    private readonly signal: AbortSignal,
    private readonly log: Pick<Log, "warn">,
  ) {}

  static async connect(
    collectionUrl: string,
    token: string,
    retryPolicy: RetryPolicy,
    signal: AbortSignal,
    log: Pick<Log, "warn">,
  ): Promise<AzureDevOpsPools> {
    // The clients are built the way azure-devops-node-api's WebApi builds them (WebApi.js: constructor,
    // getLocationsApi, getTaskAgentApi, connect), without importing WebApi: its module requires every API
    // client of Azure DevOps, which made most of the bundle and of its start-up time.
    // One retry layer, ours: the client's own retries skip 429 and Retry-After.
    const options = withAgentConnectionSettings(collectionUrl, {
      allowRetries: false,
      headers: SUPPRESS_SIGN_IN_REDIRECT,
    });
    const handlers = [credentialHandler(token)];
    const connection = new LocationsApi(collectionUrl, handlers, options, nodeApiUserAgent());
    const areas = new LocationsApi(collectionUrl, handlers, {
      ...options,
      allowRetries: true,
      maxRetries: 5,
    });
    refuseSignInPages(areas.rest);
    const agentsUrl = await withRetries(() => taskAgentAreaUrl(areas, collectionUrl), retryPolicy, signal);
    const agents = new TaskAgentApi(agentsUrl, handlers, options);
    for (const client of [connection, agents]) refuseSignInPages(client.rest);
    return new AzureDevOpsPools(connection, agents, collectionUrl, retryPolicy, signal, log);
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

  /**
   * Fails when the token's identity cannot register and remove agents in the pool: the pool, found in the plain
   * list, is missing from the list filtered to the pools the caller may manage (the documented way to ask,
   * TaskAgentPoolActionFilter.Manage). When the question itself fails, it warns and lets the registration tell.
   */
  async checkCanManage(pool: Pool): Promise<void> {
    let manageable: { id?: number }[] | null;
    try {
      manageable = await this.call(`check the permissions on agent pool '${pool.name}'`, () =>
        this.agents.getAgentPools(pool.name, undefined, undefined, TaskAgentPoolActionFilter.Manage),
      );
    } catch (error) {
      if (error instanceof AccessError) throw error;
      this.log.warn(
        `Could not verify that the token may manage agent pool '${pool.name}' (${errorMessage(error)}); going on: registering the agents will tell.`,
      );
      return;
    }
    if (!(manageable ?? []).some((candidate) => candidate.id === pool.id)) throw await this.missingRole(pool);
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
    // Sent through the rest client with the version the location service negotiates (an Azure DevOps Server
    // 2022 answers 7.1 with 400): the typed deleteAgent resolves a 404 like a success, and "already gone" is
    // worth telling apart.
    try {
      const response = await withRetries(
        async () => {
          const { requestUrl, apiVersion } = await this.agents.vsoClient.getVersioningData(
            "7.1",
            "distributedtask",
            AGENTS_LOCATION_ID,
            { poolId: pool.id, agentId },
          );
          if (!requestUrl) throw new Error("the location service gave no address for agents");
          return this.agents.rest.del(
            requestUrl,
            this.agents.createRequestOptions("application/json", apiVersion),
          );
        },
        this.retryPolicy,
        this.signal,
      );
      return response.statusCode !== 404;
    } catch (error) {
      if (httpStatusOf(error) === 404) return false;
      if (httpStatusOf(error) === 403) throw await this.missingRole(pool);
      throw this.explain(error, `remove agent ${agentId} from pool '${pool.name}'`);
    }
  }

  /**
   * Registers an agent through the typed client (its API version negotiated), as config.sh does
   * (ConfigurationManager.cs in microsoft/azure-pipelines-agent). node-api types the public key's fields as
   * number[], but the service's byte[] travels as base64 strings, as the agent sends it.
   */
  async registerAgent(pool: Pool, registration: NewAgentRegistration): Promise<RegisteredAgent> {
    const agent = {
      name: registration.name,
      version: registration.version,
      osDescription: "Linux (ephemeral agent container)",
      maxParallelism: 1,
      enabled: true,
      provisioningState: "Provisioned",
      systemCapabilities: { ...registration.systemCapabilities },
      authorization: { publicKey: registration.publicKey },
    } as unknown as TaskAgent;
    const registered = await this.call(`register agent ${registration.name} in pool '${pool.name}'`, () =>
      this.agents.addAgent(agent, pool.id),
    );
    if (!registered?.id) throw new Error(`Azure DevOps gave no id for agent ${registration.name}`);
    return {
      id: registered.id,
      clientId: registered.authorization?.clientId,
      authorizationUrl: registered.authorization?.authorizationUrl,
    };
  }

  /** The newest agent package for the platform, as the agent's own updater asks for it (packages API). */
  async agentPackage(platform: string): Promise<AgentPackage | undefined> {
    const packages = await this.call(`look up the agent package for ${platform}`, () =>
      this.agents.getPackages("agent", platform, 1),
    );
    const found = (packages ?? [])[0];
    const version = found?.version;
    if (!found?.downloadUrl || version?.major === undefined) return undefined;
    return {
      version: `${version.major}.${version.minor ?? 0}.${version.patch ?? 0}`,
      downloadUrl: found.downloadUrl,
      sha256: found.hashValue || undefined,
    };
  }

  private async missingRole(pool: Pool): Promise<AccessError> {
    const identity = await this.identityName();
    return new AccessError(
      `${identity} may not manage agent pool '${pool.name}': give it the Administrator role on the pool (Organization settings > Agent pools > ${pool.name} > Security). With the job's access token the identity is the project's build service ('<project> Build Service (<organization>)').`,
    );
  }

  private async identityName(): Promise<string> {
    try {
      const response = await this.connection.rest.get<ConnectionData>(
        this.connection.vsoClient.resolveUrl("/_apis/connectionData"),
      );
      const user = response.result?.authenticatedUser;
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
    if (status === 401 || error instanceof SignInPageError) {
      const answer = status === 401 ? "HTTP 401" : "HTTP 203, its sign-in page";
      return new AccessError(
        `Azure DevOps rejected the token when trying to ${action} (${answer}): leave 'token' empty to use the job's access token, or give a personal access token that has not expired with the Agent Pools (read & manage) scope.`,
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

/** A personal access token goes as Basic credentials, anything else (the job's access token) as a bearer token, as WebApi.getHandlerFromToken decides. */
function credentialHandler(token: string): IRequestHandler {
  const personalAccessToken = token.length === 52 || /^.{76}AZDO.{4}$/.test(token);
  return personalAccessToken
    ? new PersonalAccessTokenCredentialHandler(token)
    : new BearerCredentialHandler(token);
}

/** The user agent WebApi sends on its own requests (connectionData). */
function nodeApiUserAgent(): string {
  return `azure-devops-node-api/${nodeApiVersion} (${platform()} ${release()})`;
}

/**
 * The agent's proxy and certificate settings, which the task library publishes in globals for
 * azure-devops-node-api (azure-pipelines-task-lib internal.js, _exposeProxySettings and _exposeCertSettings);
 * WebApi's constructor reads them the same way.
 */
function withAgentConnectionSettings(serverUrl: string, options: IRequestOptions): IRequestOptions {
  const published = globalThis as Record<string, unknown>;
  const result: IRequestOptions = { ...options };
  const host = new URL(serverUrl).host.toLowerCase();
  const bypassed = (process.env.no_proxy ?? "")
    .split(",")
    .map((entry) => entry.toLowerCase())
    .includes(host);
  if (!bypassed && published._vsts_task_lib_proxy) {
    result.proxy = {
      proxyUrl: published._vsts_task_lib_proxy_url as string,
      proxyUsername: published._vsts_task_lib_proxy_username as string | undefined,
      proxyPassword: taskLibrarySecret(published._vsts_task_lib_proxy_password),
      proxyBypassHosts: JSON.parse(
        (published._vsts_task_lib_proxy_bypass as string | undefined) || "[]",
      ) as string[],
    };
  }
  if (published._vsts_task_lib_cert) {
    result.cert = {
      caFile: published._vsts_task_lib_cert_ca as string | undefined,
      certFile: published._vsts_task_lib_cert_clientcert as string | undefined,
      keyFile: published._vsts_task_lib_cert_key as string | undefined,
      passphrase: taskLibrarySecret(published._vsts_task_lib_cert_passphrase),
    };
  }
  result.ignoreSslError = !!published._vsts_task_lib_skip_cert_validation;
  return result;
}

/**
 * A secret the task library published as "<base64 key file path>:<base64 hex ciphertext>", the key file
 * holding "<base64 key>:<base64 iv>" for AES-256-CTR (internal.js, _exposeTaskLibSecret).
 */
function taskLibrarySecret(published: unknown): string | undefined {
  if (typeof published !== "string" || published.indexOf(":") <= 0) return undefined;
  const [keyFileBase64, ciphertextBase64] = published.split(":", 2);
  const keyFile = Buffer.from(keyFileBase64, "base64").toString("utf8");
  const [keyBase64, ivBase64] = readFileSync(keyFile, "utf8").split(":", 2);
  if (!keyBase64 || !ivBase64) throw new Error(`the task library's key file ${keyFile} is not "key:iv"`);
  const decipher = createDecipheriv(
    "aes-256-ctr",
    Buffer.from(keyBase64, "base64"),
    Buffer.from(ivBase64, "base64"),
  );
  const ciphertext = Buffer.from(ciphertextBase64, "base64").toString("utf8");
  return decipher.update(ciphertext, "hex", "utf8") + decipher.final("utf8");
}

/**
 * Where the task-agent API lives, from the location service's resource areas (WebApi._getResourceAreaUrl):
 * the collection itself on a server that lists none.
 */
async function taskAgentAreaUrl(locations: LocationsApi, collectionUrl: string): Promise<string> {
  const areas = (await locations.getResourceAreas()) as unknown;
  if (areas === undefined) throw new Error(`Failed to retrieve resource areas from server: ${collectionUrl}`);
  if (!Array.isArray(areas) || areas.length === 0) return collectionUrl;
  const area = (areas as { id?: string; locationUrl?: string }[]).find(
    (candidate) => candidate.id?.toLowerCase() === TaskAgentApi.RESOURCE_AREA_ID,
  );
  if (!area?.locationUrl) {
    throw new Error(
      `Could not find information for resource area ${TaskAgentApi.RESOURCE_AREA_ID} from server: ${collectionUrl}`,
    );
  }
  return area.locationUrl;
}

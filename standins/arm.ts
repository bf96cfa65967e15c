import { randomUUID } from "node:crypto";
import {
  containerGroupId,
  containerGroupJson,
  environmentOf,
  requestProblems,
  type ContainerEvent,
  type ContainerGroupRecord,
  type ContainerGroupRequest,
  type ContainerState,
  type StandbyOrigin,
} from "./arm-container-groups";
import type { DevOpsStandin } from "./devops";
import { generateAgentKey } from "../tasks/common/core/agentCredential";
import { PUBLIC_KEY_MARKER } from "../tasks/common/core/warmStart";
import {
  POOL_PATH,
  PROFILE_PATH,
  standbyPools,
  type StandbyHost,
  type StandbyPools,
  type StandbyPoolTiming,
} from "./arm-standby-pools";
import type { IssuedToken } from "./entra";
import {
  bearerToken,
  startStandinServer,
  type Interceptor,
  type RecordedRequest,
  type Reply,
  type RouteHandler,
  type StandinRequest,
} from "./http-server";

export interface ContainerGroupBehaviour {
  /** Group name (case-insensitive), name pattern, or predicate on the created group. First match wins. */
  match: string | RegExp | ((group: ContainerGroupRecord) => boolean);
  /**
   * "succeed" (default): Succeeded after the provisioning delay; "fail": LRO ends Failed with `error` as a
   * group-level event (like the Get_Failed example's FailedMount); "stuck": stays Creating, LRO Pending;
   * "imagePullFailed": Failed, the pull error on the container's events, group-level events []; "imagePullBackOff":
   * the container stays Waiting (ErrImagePull, then ImagePullBackOff) and the group Pending; "canceled": Canceled.
   */
  provisioning?: "succeed" | "fail" | "stuck" | "imagePullFailed" | "imagePullBackOff" | "canceled";
  /** Error of a failed provisioning; default {code: "ContainerGroupDeploymentFailed", ...}. */
  error?: { code: string; message: string };
  /** Registry's answer in the pull failure events; default `unauthorized: authentication required`. */
  pullError?: string;
  /** State the first container takes right after provisioning succeeded (default Running), e.g. Terminated with exitCode. */
  container?: Partial<ContainerState> & { state: string };
  /** Log text of the first container once it runs. */
  logs?: string;
  /** false: no simulated agent for this group even with `simulateAgents`. */
  agent?: boolean;
}

export interface SubnetDefinition {
  /** Full ARM id: /subscriptions/../resourceGroups/../providers/Microsoft.Network/virtualNetworks/../subnets/.. */
  id: string;
  /** Delegated to Microsoft.ContainerInstance/containerGroups; default true. */
  delegated?: boolean;
  addressPrefix?: string;
  /** Region of the subnet's virtual network; default: its resource group's location, else the first resource group's. */
  location?: string;
  /** Resource id of the NAT gateway attached to the subnet, if any. */
  natGateway?: string;
  /** Resource id of the route table attached to the subnet, if any. */
  routeTable?: string;
}

/** ACI's own limits on container group creates and deletes per subscription (sliding windows). */
export interface AciRequestQuotas {
  createsPer5Minutes: number;
  createsPerHour: number;
  deletesPer5Minutes: number;
  deletesPerHour: number;
}

/**
 * The recorded first PUT answers `…-resource-requests-pt5m: 99` and `…-pt1h: 299`, the first DELETE the same
 * (recordings/2023-05-01/recording_containergroups_create_test.json and …_delete_test.json): 100 and 300.
 */
export const ACI_REQUEST_QUOTAS: AciRequestQuotas = {
  createsPer5Minutes: 100,
  createsPerHour: 300,
  deletesPer5Minutes: 100,
  deletesPerHour: 300,
};

/** One quota of a region, as Microsoft.ContainerInstance/locations/{location}/usages reports it. */
export interface RegionQuota {
  limit: number;
  /** Usage by resources the stand-in does not hold (other workloads); the stand-in adds its own groups. */
  used?: number;
}

export interface RegionUsage {
  /** Container groups in the region; default limit 100. */
  containerGroups?: RegionQuota;
  /** Standard cores (sum of the containers' cpu requests) in the region; default limit 100. */
  standardCores?: RegionQuota;
}

export interface AgentSimulation {
  devops: DevOpsStandin;
  /** Time from "container running" to "agent registered and online"; default 50 ms. */
  delayMs?: number;
  /** What the agent does after its job finished: unregister and exit (default), exit keeping its registration, or stay online. */
  afterJob?: "unregister" | "exit" | "stay";
}

export interface ArmStandinOptions {
  /** Usually the Entra stand-in: every request needs a Bearer token it issued. */
  tokenValidator: { validateToken(accessToken: string): IssuedToken | undefined };
  subscriptionId?: string;
  /** Resource group name -> location; default { "rg-agents": "westeurope" }. */
  resourceGroups?: Record<string, string>;
  subnets?: SubnetDefinition[];
  /** Time from PUT to provisioning Succeeded/Failed; default 200 ms. */
  provisioningDelayMs?: number;
  /** Time a deleted group stays in "Deleting" before it disappears; default 0. */
  deletionDelayMs?: number;
  behaviours?: ContainerGroupBehaviour[];
  /** Registers an agent in the DevOps stand-in for groups whose environment has AZP_POOL and AZP_AGENT_NAME. */
  simulateAgents?: AgentSimulation;
  /** What Microsoft.Authorization/permissions answers for the caller at any scope; default: Contributor. */
  permissions?: ArmPermission[];
  /** Resource Manager's request throttling per subscription; default on (ARM_THROTTLING), false turns it off. */
  throttling?: false | Partial<ArmThrottling>;
  /** ACI's create/delete quotas per subscription; default on (ACI_REQUEST_QUOTAS), false turns them off. */
  aciQuotas?: false | Partial<AciRequestQuotas>;
  /** Region quotas by location (lower case, e.g. "westeurope"); unlisted regions get the defaults. */
  regionUsage?: Record<string, RegionUsage>;
  /** Latencies of standby pool claims and refills (arm-standby-pools.ts). */
  standbyPools?: StandbyPoolTiming;
}

/** Token buckets per subscription: each request takes a token of its class, buckets refill continuously. */
export interface ArmThrottling {
  readsPerSecond: number;
  writesPerSecond: number;
  deletesPerSecond: number;
  /** Bucket capacity in seconds of refill. */
  burstSeconds: number;
}

/** ARM refills 25 reads, 10 writes and 10 deletes per second; the stand-in's buckets hold one second's worth. */
export const ARM_THROTTLING: ArmThrottling = {
  readsPerSecond: 25,
  writesPerSecond: 10,
  deletesPerSecond: 10,
  burstSeconds: 1,
};

export type RequestClass = "reads" | "writes" | "deletes";

/** One entry of a Microsoft.Authorization/permissions answer. */
export interface ArmPermission {
  actions: string[];
  notActions: string[];
  dataActions?: string[];
  notDataActions?: string[];
}

export const CONTRIBUTOR_PERMISSIONS: ArmPermission[] = [
  {
    actions: ["*"],
    notActions: [
      "Microsoft.Authorization/*/Delete",
      "Microsoft.Authorization/*/Write",
      "Microsoft.Authorization/elevateAccess/Action",
    ],
    dataActions: [],
    notDataActions: [],
  },
];

export interface ContainerGroupLookup {
  resourceGroup?: string;
  /** Container name; default: the group's first container. */
  container?: string;
}

export interface ArmStandin {
  /** https origin; pass as `endpoint` to ContainerInstanceManagementClient. */
  url: string;
  subscriptionId: string;
  requests: RecordedRequest[];
  resourceGroups: Record<string, string>;
  subnets: SubnetDefinition[];
  /** Mutable: region quotas by location. */
  regionUsage: Record<string, RegionUsage>;
  behaviours: ContainerGroupBehaviour[];
  /** Mutable: the caller's permissions, as Microsoft.Authorization/permissions reports them. */
  permissions: ArmPermission[];
  containerGroups(): ContainerGroupRecord[];
  containerGroup(name: string, resourceGroup?: string): ContainerGroupRecord | undefined;
  /** Sets a container's current state (the old one becomes previousState); Terminated also takes its simulated agent offline. */
  setContainerState(
    name: string,
    state: Partial<ContainerState> & { state: string },
    lookup?: ContainerGroupLookup,
  ): void;
  /** Ends a group's provisioning now, as its behaviour says, instead of after `provisioningDelayMs`. */
  finishProvisioning(name: string, resourceGroup?: string): void;
  setLogs(name: string, text: string, lookup?: ContainerGroupLookup): void;
  appendLogs(name: string, text: string, lookup?: ContainerGroupLookup): void;
  /** Called for every accepted PUT of a new group. */
  onCreate(listener: (group: ContainerGroupRecord) => void): void;
  /** Called for every accepted DELETE of an existing group; the DELETE is answered once the promise settled. */
  onDelete(listener: (group: ContainerGroupRecord) => Promise<void>): void;
  /** Called when a container's config map is set at a claim or changed by a later PUT. */
  onConfigMap(listener: (group: ContainerGroupRecord, container: string) => void): void;
  /** Container group profiles and standby pools; a test may make a pool degraded. */
  standbyPools: Pick<StandbyPools, "pools" | "pool" | "setHealth" | "retire">;
  intercept(interceptor: Interceptor): () => void;
  /** Requests answered 429 by the throttling (not by injected faults), per request class; live counters. */
  throttled: Record<RequestClass, number>;
  /** Container group PUTs and DELETEs answered 429 by ACI's create/delete quotas; live counters. */
  quotaRefusals: Record<AciQuotaKind, number>;
  close(): Promise<void>;
}

/** The operation URL's api-version whatever the resource call used (recordings/2023-05-01/recording_containergroups_create_test.json). */
const OPERATION_API_VERSION = "2018-06-01";
const FIVE_MINUTES_MS = 5 * 60_000;
const ONE_HOUR_MS = 60 * 60_000;
const DEFAULT_REGION_LIMIT = 100;

export type AciQuotaKind = "creates" | "deletes";
const CONTAINER_GROUP =
  "/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.ContainerInstance/containerGroups";

interface Operation {
  id: string;
  location: string;
  group: ContainerGroupRecord;
  /** Pending until it ends: no InProgress or Running (recordings/2023-05-01/recording_containergroups_create_test.json, entries 2-11). */
  status: "Pending" | "Succeeded" | "Failed" | "Canceled";
  startTime: string;
  error?: { code: string; message: string };
}

interface SimulatedAgent {
  poolName: string;
  agentName: string;
  unregistered: boolean;
}

function armError(status: number, code: string, message: string, headers?: Record<string, string>): Reply {
  return { status, headers, body: { error: { code, message } } };
}

function event(name: string, message: string, type = "Normal"): ContainerEvent {
  const now = new Date().toISOString();
  return { count: 1, firstTimestamp: now, lastTimestamp: now, name, message, type };
}

class TokenBucket {
  private tokens: number;
  private refilledAt = performance.now();

  constructor(
    private readonly perSecond: number,
    private readonly capacity: number,
  ) {
    this.tokens = capacity;
  }

  /** Takes a token; when none is left, how many ms until one is. */
  take(): { taken: true; remaining: number } | { taken: false; waitMs: number } {
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { taken: true, remaining: Math.floor(this.tokens) };
    }
    return { taken: false, waitMs: ((1 - this.tokens) / this.perSecond) * 1000 };
  }
}

function requestClass(method: string): RequestClass {
  if (method === "GET" || method === "HEAD") return "reads";
  return method === "DELETE" ? "deletes" : "writes";
}

function groupKey(resourceGroup: string, name: string): string {
  return `${resourceGroup}/${name}`.toLowerCase();
}

/** Environment variables become agent capabilities, as the real agent reports them; the start script hides AZP_* and secure values. */
function agentCapabilities(request: ContainerGroupRequest, agentName: string): Record<string, string> {
  const capabilities: Record<string, string> = {};
  for (const variable of request.properties?.containers?.[0]?.properties?.environmentVariables ?? []) {
    const hidden = variable.secureValue !== undefined || variable.name.startsWith("AZP_");
    if (!hidden && variable.value !== undefined) capabilities[variable.name] = variable.value;
  }
  return { ...capabilities, "Agent.Name": agentName, "Agent.OS": "Linux", "Agent.OSArchitecture": "X64" };
}

export async function startArm(options: ArmStandinOptions): Promise<ArmStandin> {
  const subscriptionId = options.subscriptionId ?? "00000000-0000-0000-0000-000000000001";
  const resourceGroups = { ...(options.resourceGroups ?? { "rg-agents": "westeurope" }) };
  const subnets = [...(options.subnets ?? [])];
  const permissions = [...(options.permissions ?? CONTRIBUTOR_PERMISSIONS)];
  const behaviours = [...(options.behaviours ?? [])];
  const provisioningDelayMs = options.provisioningDelayMs ?? 200;
  const deletionDelayMs = options.deletionDelayMs ?? 0;
  const groups = new Map<string, ContainerGroupRecord>();
  const operations = new Map<string, Operation>();
  const simulatedAgents = new Map<ContainerGroupRecord, SimulatedAgent>();
  const pendingProvisioning = new Map<ContainerGroupRecord, () => void>();
  const createListeners: Array<(group: ContainerGroupRecord) => void> = [];
  const deleteListeners: Array<(group: ContainerGroupRecord) => Promise<void>> = [];
  const configMapListeners: Array<(group: ContainerGroupRecord, container: string) => void> = [];
  /** The public key (modulus) each simulated pooled container printed. */
  const warmKeys = new WeakMap<ContainerGroupRecord, string>();
  const timers = new Set<NodeJS.Timeout>();
  const throttling = options.throttling === false ? undefined : { ...ARM_THROTTLING, ...options.throttling };
  const buckets = new Map<string, TokenBucket>();
  const throttled: Record<RequestClass, number> = { reads: 0, writes: 0, deletes: 0 };
  const aciQuotas = options.aciQuotas === false ? undefined : { ...ACI_REQUEST_QUOTAS, ...options.aciQuotas };
  const aciQuotaUse: Record<AciQuotaKind, number[]> = { creates: [], deletes: [] };
  const quotaRefusals: Record<AciQuotaKind, number> = { creates: 0, deletes: 0 };
  const regionUsage = { ...options.regionUsage };
  let origin = "";

  function bucket(subscription: string, kind: RequestClass, limits: ArmThrottling): TokenBucket {
    const key = `${subscription.toLowerCase()}/${kind}`;
    let found = buckets.get(key);
    if (!found) {
      const perSecond = limits[`${kind}PerSecond`];
      found = new TokenBucket(perSecond, Math.max(1, perSecond * limits.burstSeconds));
      buckets.set(key, found);
    }
    return found;
  }

  function schedule(delayMs: number, action: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      action();
    }, delayMs);
    timers.add(timer);
  }

  function findResourceGroup(name: string): string | undefined {
    return Object.keys(resourceGroups).find((candidate) => candidate.toLowerCase() === name.toLowerCase());
  }

  /** Listed under its name, or still in a standby pool, where no API addresses it. */
  function isCurrent(group: ContainerGroupRecord): boolean {
    if (group.standby?.pooled) return true;
    return groups.get(groupKey(group.resourceGroup, group.name)) === group;
  }

  function operationUrl(operation: Operation): string {
    return `${origin}/subscriptions/${subscriptionId}/providers/Microsoft.ContainerInstance/locations/${operation.location}/operations/${operation.id}?api-version=${OPERATION_API_VERSION}`;
  }

  function startOperation(group: ContainerGroupRecord): Operation {
    const operation: Operation = {
      id: randomUUID(),
      location: group.location,
      group,
      status: "Pending",
      startTime: new Date().toISOString(),
    };
    operations.set(operation.id, operation);
    return operation;
  }

  function endOperation(operation: Operation, status: Operation["status"], error?: Operation["error"]): void {
    operation.status = status;
    operation.error = error;
  }

  function behaviourFor(group: ContainerGroupRecord): ContainerGroupBehaviour {
    const found = behaviours.find(({ match }) => {
      if (typeof match === "string") return match.toLowerCase() === group.name.toLowerCase();
      if (match instanceof RegExp) return match.test(group.name);
      return match(group);
    });
    return found ?? { match: group.name };
  }

  function lookup(
    name: string,
    where: ContainerGroupLookup = {},
  ): { group: ContainerGroupRecord; index: number } {
    const group = [...groups.values()].find(
      (candidate) =>
        candidate.name.toLowerCase() === name.toLowerCase() &&
        (where.resourceGroup === undefined ||
          candidate.resourceGroup.toLowerCase() === where.resourceGroup.toLowerCase()),
    );
    if (!group) throw new Error(`No container group named ${name}`);
    const index = where.container
      ? group.containers.findIndex((container) => container.name === where.container)
      : 0;
    if (index < 0) throw new Error(`Container group ${name} has no container ${where.container}`);
    return { group, index };
  }

  function setContainerState(
    group: ContainerGroupRecord,
    index: number,
    update: Partial<ContainerState> & { state: string },
  ): void {
    const container = group.containers[index];
    const now = new Date().toISOString();
    const terminated = update.state === "Terminated";
    container.previousState = container.currentState;
    container.currentState = {
      state: update.state,
      exitCode: update.exitCode ?? (terminated ? 0 : undefined),
      detailStatus:
        update.detailStatus ?? (terminated ? ((update.exitCode ?? 0) === 0 ? "Completed" : "Error") : ""),
      startTime: update.startTime ?? container.previousState?.startTime ?? now,
      finishTime: update.finishTime ?? (terminated ? now : undefined),
    };
    if (terminated) {
      container.events.push(event("Killing", `Killing container with id ${randomUUID()}.`));
      if (index === 0) takeAgentOffline(group);
    }
  }

  function takeAgentOffline(group: ContainerGroupRecord): void {
    const simulated = simulatedAgents.get(group);
    const devops = options.simulateAgents?.devops;
    if (!simulated || simulated.unregistered || !devops) return;
    if (devops.agent(simulated.poolName, simulated.agentName))
      devops.simulateAgent.offline(simulated.poolName, simulated.agentName);
  }

  function startSimulatedAgent(group: ContainerGroupRecord): void {
    const simulation = options.simulateAgents;
    const poolName = group.environment.AZP_POOL;
    const agentName = group.environment.AZP_AGENT_NAME;
    if (!simulation || !poolName || !agentName) return;
    schedule(simulation.delayMs ?? 50, () => {
      if (!isCurrent(group) || group.containers[0].currentState?.state !== "Running") return;
      const logs = group.containers[0];
      try {
        if (group.environment.AZP_AGENT_CREDENTIAL) {
          // The agent's own credential (registration agentCredential): the start task registered the agent; the
          // container only signs in, which fails once the registration is gone (standins/devops-oauth.ts).
          if (!simulation.devops.agent(poolName, agentName))
            throw new Error("the token exchange failed with HTTP 401: the agent's registration is gone");
        } else {
          simulation.devops.simulateAgent.register({
            poolName,
            name: agentName,
            token: group.environment.AZP_TOKEN,
            systemCapabilities: agentCapabilities(group.request, agentName),
          });
        }
      } catch (error) {
        logs.logs += `Failed to register the agent: ${(error as Error).message}\n`;
        setContainerState(group, 0, { state: "Terminated", exitCode: 1 });
        return;
      }
      simulatedAgents.set(group, { poolName, agentName, unregistered: false });
      simulation.devops.simulateAgent.online(poolName, agentName);
      // The listener's words, with the UTC time as "{0:u}" formats it (ListenForJobs, azure-pipelines-agent's strings.json).
      const now = new Date().toISOString().replace("T", " ").slice(0, 19);
      logs.logs += `Connecting to the server.\n${now}Z: Listening for Jobs\n`;
    });
  }

  /**
   * A pooled group's container in warm mode (images/agent/start.sh) prints its public key at boot; the simulation
   * prints one made for it, and stands in for its agent once the claim's config map brings the agent's settings.
   */
  function printWarmKey(group: ContainerGroupRecord): void {
    void generateAgentKey().then((key) => {
      warmKeys.set(group, key.publicKey.modulus);
      group.containers[0].logs += `${PUBLIC_KEY_MARKER} ${JSON.stringify(key.publicKey)}\nwaiting for the agent's settings in /mnt/configmap/${group.containers[0].name}\n`;
    });
  }

  /**
   * Why the listener of a claimed container could not sign in, as the stand-in's token endpoint would refuse it:
   * no registration, a registration holding another public key than the one this container made, or a
   * .credentials file of another OAuth client (standins/devops-oauth.ts). Undefined when it can.
   */
  function warmSignInRefusal(group: ContainerGroupRecord, devops: DevOpsStandin): string | undefined {
    const settings = group.containers[0].configMap ?? {};
    const agentFile = JSON.parse(settings.agent ?? "{}") as { agentName?: string; poolName?: string };
    const credentials = JSON.parse(settings.credentials ?? "{}") as { data?: { clientId?: string } };
    const agent = devops.agent(agentFile.poolName ?? "", agentFile.agentName ?? "");
    if (!agent) return "the agent's registration is gone";
    const authorization = devops.agentOAuth.authorizationOf(agent);
    if (!authorization || authorization.publicKey.modulus !== warmKeys.get(group))
      return "the registration holds another public key than the one this container made";
    if (authorization.clientId !== credentials.data?.clientId)
      return "the .credentials file names another client";
    return undefined;
  }

  function startWarmSimulatedAgent(group: ContainerGroupRecord): void {
    const simulation = options.simulateAgents;
    const settings = group.containers[0]?.configMap ?? {};
    if (!simulation || !settings.agent || !settings.credentials || !settings.environment) return;
    if (simulatedAgents.has(group)) return;
    const agent = JSON.parse(settings.agent) as { agentName?: string; poolName?: string };
    const poolName = agent.poolName ?? "";
    const agentName = agent.agentName ?? "";
    group.environment = { ...(JSON.parse(settings.environment) as Record<string, string>) };
    schedule(simulation.delayMs ?? 50, () => {
      if (!isCurrent(group) || group.containers[0].currentState?.state !== "Running") return;
      const logs = group.containers[0];
      const refusal = warmSignInRefusal(group, simulation.devops);
      if (refusal) {
        logs.logs += `Failed to connect: the token exchange failed with HTTP 401: ${refusal}\n`;
        setContainerState(group, 0, { state: "Terminated", exitCode: 1 });
        return;
      }
      simulatedAgents.set(group, { poolName, agentName, unregistered: false });
      simulation.devops.simulateAgent.online(poolName, agentName);
      const now = new Date().toISOString().replace("T", " ").slice(0, 19);
      logs.logs += `the agent's settings arrived\nConnecting to the server.\n${now}Z: Listening for Jobs\n`;
    });
  }

  /** An agent that signs in with its own key, which cannot remove its registration: the teardown task does. */
  function hasOwnCredential(group: ContainerGroupRecord): boolean {
    return Boolean(group.environment.AZP_AGENT_CREDENTIAL) || group.standby !== undefined;
  }

  function simulatedGroupOf(agentName: string, poolId: number): ContainerGroupRecord | undefined {
    const devops = options.simulateAgents?.devops;
    for (const [group, simulated] of simulatedAgents) {
      if (
        simulated.agentName === agentName &&
        devops?.pool(simulated.poolName)?.id === poolId &&
        isCurrent(group)
      )
        return group;
    }
    return undefined;
  }

  const devopsEvents = options.simulateAgents?.devops.events;
  const onJobAssigned = (request: { jobName: string }, agent: { name: string; poolId: number }): void => {
    const group = simulatedGroupOf(agent.name, agent.poolId);
    if (!group) return;
    group.containers[0].logs += `Running job: ${request.jobName}\n`;
    const simulated = simulatedAgents.get(group) as SimulatedAgent;
    schedule(0, () =>
      options.simulateAgents?.devops.simulateAgent.takeJob(simulated.poolName, simulated.agentName),
    );
  };
  const onJobFinished = (
    request: { jobName: string; result?: string },
    agent?: { name: string; poolId: number },
  ): void => {
    const group = agent && simulatedGroupOf(agent.name, agent.poolId);
    if (!group) return;
    const simulated = simulatedAgents.get(group) as SimulatedAgent;
    const result = request.result ?? "";
    group.containers[0].logs += `Job ${request.jobName} completed with result: ${result.charAt(0).toUpperCase()}${result.slice(1)}\n`;
    const afterJob = options.simulateAgents?.afterJob ?? "unregister";
    if (afterJob === "stay") return;
    // An agent with its own credential cannot remove itself: the teardown task does.
    if (afterJob === "unregister" && !hasOwnCredential(group)) {
      // With the container's own token, as config.sh remove does: once that token expired, the registration stays.
      try {
        options.simulateAgents?.devops.simulateAgent.unregister(
          simulated.poolName,
          simulated.agentName,
          group.environment.AZP_TOKEN,
        );
        simulated.unregistered = true;
        group.containers[0].logs += "Removing agent from the server\n";
      } catch (error) {
        group.containers[0].logs += `Failed to remove the agent: ${(error as Error).message}\n`;
      }
    }
    setContainerState(group, 0, { state: "Terminated", exitCode: 0 });
  };
  devopsEvents?.on("jobAssigned", onJobAssigned);
  devopsEvents?.on("jobFinished", onJobFinished);

  function completeProvisioning(
    group: ContainerGroupRecord,
    behaviour: ContainerGroupBehaviour,
    operation: Operation,
  ): void {
    if (!isCurrent(group)) return endOperation(operation, "Canceled");
    const image = group.request.properties?.containers?.[0]?.properties?.image ?? "";
    const pullFails =
      behaviour.provisioning === "imagePullFailed" || behaviour.provisioning === "imagePullBackOff";
    for (const container of group.containers) {
      container.events.push(event("Pulling", `pulling image "${image}"`));
      if (!pullFails) container.events.push(event("Pulled", `Successfully pulled image "${image}"`));
    }
    if (behaviour.provisioning === "stuck") {
      group.provisioningState = "Creating";
      return;
    }
    if (pullFails) return failImagePull(group, behaviour, operation, image);
    if (behaviour.provisioning === "canceled") {
      // Not recorded: state and error code follow the spec's provisioningState and ARM's async operation format.
      const error = behaviour.error ?? {
        code: "Canceled",
        message: `The deployment of container group '${group.name}' was canceled.`,
      };
      group.provisioningState = "Canceled";
      group.provisioningError = error;
      for (const container of group.containers)
        container.currentState = { state: "Waiting", detailStatus: "", startTime: new Date().toISOString() };
      return endOperation(operation, "Canceled", error);
    }
    if (behaviour.provisioning === "fail") {
      const error = behaviour.error ?? {
        code: "ContainerGroupDeploymentFailed",
        message: `The container group '${group.name}' failed to deploy.`,
      };
      group.provisioningState = "Failed";
      group.provisioningError = error;
      group.events.push(event("Failed", error.message, "Warning"));
      for (const container of group.containers)
        container.currentState = { state: "Waiting", detailStatus: "", startTime: new Date().toISOString() };
      return endOperation(operation, "Failed", error);
    }
    group.provisioningState = "Succeeded";
    group.containers.forEach((container, index) => {
      container.events.push(event("Started", "Started container"));
      setContainerState(group, index, { state: "Running", detailStatus: "" });
    });
    group.containers[0].logs = behaviour.logs ?? "";
    endOperation(operation, "Succeeded");
    if (behaviour.container) setContainerState(group, 0, behaviour.container);
    if (group.standby) {
      if (options.simulateAgents && behaviour.agent !== false) printWarmKey(group);
    } else if (behaviour.agent !== false) startSimulatedAgent(group);
  }

  /**
   * An image that cannot be pulled. Microsoft's troubleshooting page shows the container's events Pulling,
   * Failed ("Failed to pull image …") and BackOff ("Back-off pulling image …"); the group-level events stay []
   * as in every recording. The container's `detailStatus` values (ErrImagePull, ImagePullBackOff, Kubernetes'
   * names) and the group staying Pending under back-off are not verified.
   */
  function failImagePull(
    group: ContainerGroupRecord,
    behaviour: ContainerGroupBehaviour,
    operation: Operation,
    image: string,
  ): void {
    const reason = behaviour.pullError ?? "unauthorized: authentication required";
    const pullError = `Failed to pull image "${image}": rpc error: code = Unknown desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": ${reason}`;
    const [first] = group.containers;
    first.events.push(event("Failed", pullError, "Warning"));
    const now = new Date().toISOString();
    first.currentState = { state: "Waiting", detailStatus: "ErrImagePull", startTime: now };
    if (behaviour.provisioning === "imagePullBackOff") {
      first.events.push(event("BackOff", `Back-off pulling image "${image}"`));
      first.previousState = first.currentState;
      first.currentState = { state: "Waiting", detailStatus: "ImagePullBackOff", startTime: now };
      return;
    }
    const error = behaviour.error ?? { code: "ContainerGroupDeploymentFailed", message: pullError };
    group.provisioningState = "Failed";
    group.provisioningError = error;
    endOperation(operation, "Failed", error);
  }

  function virtualNetworkOf(subnetId: string): string {
    return subnetId.replace(/\/subnets\/[^/]+$/i, "");
  }

  function subnetLocation(subnet: SubnetDefinition): string {
    if (subnet.location) return subnet.location;
    const resourceGroup = /\/resourceGroups\/([^/]+)\//i.exec(subnet.id)?.[1] ?? "";
    const known = findResourceGroup(resourceGroup);
    return known ? resourceGroups[known] : (Object.values(resourceGroups)[0] ?? "westeurope");
  }

  function subnetProblem(request: ContainerGroupRequest, groupName: string): Reply | undefined {
    for (const { id } of request.properties?.subnetIds ?? []) {
      const subnetSubscription = /^\/subscriptions\/([^/]+)\//i.exec(id)?.[1];
      if (subnetSubscription && subnetSubscription.toLowerCase() !== subscriptionId.toLowerCase()) {
        // The code is reported in MicrosoftDocs/azure-docs#94486; the status and message are not verified.
        return armError(
          400,
          "SubnetAndContainerGroupMustBeInSameSubscription",
          `The subnet '${id}' and the container group '${groupName}' must be in the same subscription.`,
        );
      }
      const subnet = subnets.find((candidate) => candidate.id.toLowerCase() === id.toLowerCase());
      if (!subnet) return armError(400, "InvalidSubnetId", `The subnet '${id}' could not be found.`);
      const networkLocation = subnetLocation(subnet);
      if (networkLocation.toLowerCase() !== String(request.location).toLowerCase()) {
        // ACI needs the group in its virtual network's region (issue 8); the code and message are not verified.
        return armError(
          400,
          "SubnetLocationMismatch",
          `The container group '${groupName}' is in location '${request.location}' but its subnet '${id}' belongs to a virtual network in location '${networkLocation}'. A container group must be in the same location as its virtual network.`,
        );
      }
      if (subnet.delegated === false) {
        return armError(
          400,
          "SubnetNotDelegated",
          `The subnet '${id}' is not delegated to 'Microsoft.ContainerInstance/containerGroups'.`,
        );
      }
    }
    return undefined;
  }

  function putContainerGroup(
    request: StandinRequest,
    params: Record<string, string>,
  ): Reply | Promise<Reply> {
    const resourceGroup = findResourceGroup(params.resourceGroup);
    if (!resourceGroup) {
      return armError(
        404,
        "ResourceGroupNotFound",
        `Resource group '${params.resourceGroup}' could not be found.`,
      );
    }
    const body = (
      typeof request.body === "object" && request.body !== null ? request.body : {}
    ) as ContainerGroupRequest;
    if (body.properties?.containerGroupProfile) return standby.claim(body, resourceGroup, params.name);
    const problems = requestProblems(body);
    if (problems.length > 0) return armError(400, "InvalidRequestContent", problems.join(" "));
    const subnetFailure = subnetProblem(body, params.name);
    if (subnetFailure) return subnetFailure;
    const key = groupKey(resourceGroup, params.name);
    const existed = groups.has(key);
    const quotaFailure = regionQuotaProblem(body, key);
    if (quotaFailure) return quotaFailure;
    const { group, operation } = provisionGroup(body, { resourceGroup, name: params.name }, undefined, true);
    if (!existed) for (const listener of createListeners) listener(group);
    // 201 with Azure-AsyncOperation only, no Location or Retry-After (recordings/2023-05-01/recording_containergroups_create_test.json, entry 1).
    return {
      status: existed ? 200 : 201,
      headers: { "azure-asyncoperation": operationUrl(operation) },
      body: containerGroupJson(group, true),
    };
  }

  /** Makes a group record and provisions it after the provisioning delay; `register` lists it among the groups. */
  function provisionGroup(
    body: ContainerGroupRequest,
    where: { resourceGroup: string; name: string },
    standby: StandbyOrigin | undefined,
    register: boolean,
  ): { group: ContainerGroupRecord; operation: Operation } {
    const group: ContainerGroupRecord = {
      subscriptionId,
      resourceGroup: where.resourceGroup,
      name: where.name,
      location: body.location as string,
      tags: body.tags,
      request: body,
      environment: environmentOf(body),
      provisioningState: "Pending",
      containers: (body.properties?.containers ?? []).map((container) => ({
        name: container.name as string,
        restartCount: 0,
        events: [],
        logs: "",
      })),
      events: [],
      createdAt: new Date(),
      standby,
    };
    if (register) groups.set(groupKey(where.resourceGroup, where.name), group);
    const operation = startOperation(group);
    const behaviour = behaviourFor(group);
    let provisioned = false;
    const provision = (): void => {
      if (provisioned) return;
      provisioned = true;
      pendingProvisioning.delete(group);
      completeProvisioning(group, behaviour, operation);
    };
    pendingProvisioning.set(group, provision);
    schedule(provisioningDelayMs, provision);
    return { group, operation };
  }

  /** Whether the caller's permissions (`permissions`, as Microsoft.Authorization/permissions lists them) grant the action. */
  function granted(action: string): boolean {
    const matches = (pattern: string) =>
      new RegExp(
        `^${pattern
          .split("*")
          .map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, "\\$&"))
          .join(".*")}$`,
        "i",
      ).test(action);
    return permissions.some(
      (permission) =>
        (permission.actions ?? []).some(matches) && !(permission.notActions ?? []).some(matches),
    );
  }

  const standbyHost: StandbyHost = {
    subscriptionId,
    granted,
    schedule,
    provision(request, where, standby, register) {
      const { group } = provisionGroup(request, where, standby, register);
      for (const listener of createListeners) listener(group);
      return group;
    },
    adopt(group, resourceGroup, name, tags) {
      group.resourceGroup = resourceGroup;
      group.name = name;
      group.tags = tags;
      groups.set(groupKey(resourceGroup, name), group);
    },
    existing: (resourceGroup, name) => groups.get(groupKey(resourceGroup, name)),
    json: (group) => containerGroupJson(group, true),
    configMapChanged(group, container) {
      for (const listener of configMapListeners) listener(group, container);
      startWarmSimulatedAgent(group);
    },
  };
  const standby = standbyPools(standbyHost, options.standbyPools);

  function groupCores(request: ContainerGroupRequest): number {
    return (request.properties?.containers ?? []).reduce((sum, container) => {
      const requests = (container.properties?.resources as { requests?: { cpu?: number } } | undefined)
        ?.requests;
      return sum + Number(requests?.cpu ?? 0);
    }, 0);
  }

  /** What locations/{location}/usages reports: the configured other use plus the stand-in's own groups. */
  function usagesIn(
    location: string,
    exceptKey?: string,
  ): { groups: number; cores: number; usage: RegionUsage } {
    const usage = regionUsage[location.toLowerCase()] ?? {};
    const own = [...groups.entries()].filter(
      ([key, group]) => key !== exceptKey && group.location.toLowerCase() === location.toLowerCase(),
    );
    return {
      usage,
      groups: (usage.containerGroups?.used ?? 0) + own.length,
      cores:
        (usage.standardCores?.used ?? 0) + own.reduce((sum, [, group]) => sum + groupCores(group.request), 0),
    };
  }

  /**
   * Message as users report it (MicrosoftDocs/azure-docs#51738; code ContainerGroupQuotaReached as quoted in
   * radius-project's error fixtures). The HTTP status is not verified.
   */
  function regionQuotaProblem(request: ContainerGroupRequest, key: string): Reply | undefined {
    const location = String(request.location);
    const { usage, groups: usedGroups, cores: usedCores } = usagesIn(location, key);
    const checks: Array<[string, number, number, number]> = [
      ["ContainerGroups", usage.containerGroups?.limit ?? DEFAULT_REGION_LIMIT, usedGroups, 1],
      ["StandardCores", usage.standardCores?.limit ?? DEFAULT_REGION_LIMIT, usedCores, groupCores(request)],
    ];
    for (const [quota, limit, used, requested] of checks) {
      if (used + requested > limit) {
        return armError(
          409,
          "ContainerGroupQuotaReached",
          `Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota '${quota}' exceeded in region '${location}'. Limit: '${limit}', Usage: '${used}' Requested: '${requested}'.`,
        );
      }
    }
    return undefined;
  }

  function listUsages(_request: StandinRequest, params: Record<string, string>): Reply {
    const { usage, groups: usedGroups, cores: usedCores } = usagesIn(params.location);
    // Usage items as the spec's UsageListResult defines them (containerInstance-2023-05-01.json, Location_ListUsage).
    const item = (value: string, localizedValue: string, currentValue: number, limit: number) => ({
      id: `/subscriptions/${subscriptionId}/providers/Microsoft.ContainerInstance/locations/${params.location}/usages/${value}`,
      unit: "Count",
      currentValue,
      limit,
      name: { value, localizedValue },
    });
    return {
      status: 200,
      body: {
        value: [
          item(
            "ContainerGroups",
            "Container Groups",
            usedGroups,
            usage.containerGroups?.limit ?? DEFAULT_REGION_LIMIT,
          ),
          item(
            "StandardCores",
            "Standard Cores",
            usedCores,
            usage.standardCores?.limit ?? DEFAULT_REGION_LIMIT,
          ),
        ],
      },
    };
  }

  function existingGroup(params: Record<string, string>): ContainerGroupRecord | undefined {
    return groups.get(groupKey(params.resourceGroup, params.name));
  }

  function groupNotFound(params: Record<string, string>): Reply {
    return armError(
      404,
      "ResourceNotFound",
      `The Resource 'Microsoft.ContainerInstance/containerGroups/${params.name}' under resource group '${params.resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
    );
  }

  function getContainerGroup(_request: StandinRequest, params: Record<string, string>): Reply {
    const group = existingGroup(params);
    return group ? { status: 200, body: containerGroupJson(group, true) } : groupNotFound(params);
  }

  /**
   * Synchronous: 200 with the group's last body, no Azure-AsyncOperation or Location, and a list right after no
   * longer shows it (recordings/2023-05-01/recording_containergroups_delete_test.json); 204 when absent (spec).
   * While the delete listeners and `deletionDelayMs` run, readers see "Deleting" (not verified).
   */
  async function deleteContainerGroup(
    _request: StandinRequest,
    params: Record<string, string>,
  ): Promise<Reply> {
    const group = existingGroup(params);
    if (!group) return { status: 204 };
    const body = containerGroupJson(group, true);
    group.provisioningState = "Deleting";
    takeAgentOffline(group);
    await Promise.allSettled(deleteListeners.map((listener) => listener(group)));
    if (deletionDelayMs > 0)
      await new Promise((resolve) => schedule(deletionDelayMs, () => resolve(undefined)));
    if (isCurrent(group)) groups.delete(groupKey(group.resourceGroup, group.name));
    return { status: 200, body };
  }

  function listContainerGroups(_request: StandinRequest, params: Record<string, string>): Reply {
    if (params.resourceGroup && !findResourceGroup(params.resourceGroup)) {
      return armError(
        404,
        "ResourceGroupNotFound",
        `Resource group '${params.resourceGroup}' could not be found.`,
      );
    }
    const value = [...groups.values()]
      .filter(
        (group) =>
          !params.resourceGroup || group.resourceGroup.toLowerCase() === params.resourceGroup.toLowerCase(),
      )
      .map((group) => containerGroupJson(group, false));
    return { status: 200, body: { value } };
  }

  function containerLogs(request: StandinRequest, params: Record<string, string>): Reply {
    const group = existingGroup(params);
    if (!group) return groupNotFound(params);
    const container = group.containers.find((candidate) => candidate.name === params.container);
    if (!container) {
      return armError(
        404,
        "ContainerNotFound",
        `The container '${params.container}' could not be found in container group '${group.name}'.`,
      );
    }
    const tail = Number(request.query.tail);
    const lines = container.logs.split("\n");
    const content =
      tail > 0 ? lines.slice(-(tail + (container.logs.endsWith("\n") ? 1 : 0))).join("\n") : container.logs;
    return { status: 200, body: { content } };
  }

  /**
   * ACI's operation body: `{id: <group id>, status, startTime, properties: {events}}`, no name or endTime, events
   * of the container once it ended (recordings/2023-05-01/recording_containergroups_create_test.json, entries
   * 2-11). `error` on Failed/Canceled follows ARM's async operation format (no failed operation was recorded).
   */
  function getOperation(_request: StandinRequest, params: Record<string, string>): Reply {
    const operation = operations.get(params.operationId);
    if (!operation)
      return armError(404, "OperationNotFound", `Operation '${params.operationId}' was not found.`);
    const ended = operation.status !== "Pending";
    return {
      status: 200,
      body: {
        id: containerGroupId(operation.group),
        status: operation.status,
        startTime: operation.startTime,
        properties: { events: ended ? (operation.group.containers[0]?.events ?? []) : [] },
        error: operation.error,
      },
    };
  }

  function getResourceGroup(_request: StandinRequest, params: Record<string, string>): Reply {
    const name = findResourceGroup(params.resourceGroup);
    if (!name)
      return armError(
        404,
        "ResourceGroupNotFound",
        `Resource group '${params.resourceGroup}' could not be found.`,
      );
    return {
      status: 200,
      body: {
        id: `/subscriptions/${subscriptionId}/resourceGroups/${name}`,
        name,
        type: "Microsoft.Resources/resourceGroups",
        location: resourceGroups[name],
        properties: { provisioningState: "Succeeded" },
      },
    };
  }

  function getSubnet(request: StandinRequest): Reply {
    const subnet = subnets.find(
      (candidate) => candidate.id.toLowerCase() === request.path.replace(/\/$/, "").toLowerCase(),
    );
    if (!subnet) return armError(404, "NotFound", `Resource ${request.path} not found.`);
    return { status: 200, body: subnetJson(subnet) };
  }

  /** A virtual network made of the configured subnets under it; its location is theirs (see SubnetDefinition). */
  function getVirtualNetwork(request: StandinRequest): Reply {
    const id = request.path.replace(/\/$/, "");
    const members = subnets.filter(
      (subnet) => virtualNetworkOf(subnet.id).toLowerCase() === id.toLowerCase(),
    );
    if (members.length === 0) return armError(404, "ResourceNotFound", `Resource ${request.path} not found.`);
    const networkId = virtualNetworkOf(members[0].id);
    return {
      status: 200,
      body: {
        name: networkId.split("/").pop(),
        id: networkId,
        etag: 'W/"00000000-0000-0000-0000-000000000000"',
        type: "Microsoft.Network/virtualNetworks",
        location: subnetLocation(members[0]),
        properties: {
          provisioningState: "Succeeded",
          addressSpace: { addressPrefixes: ["10.0.0.0/16"] },
          subnets: members.map(subnetJson),
          virtualNetworkPeerings: [],
          enableDdosProtection: false,
        },
      },
    };
  }

  function subnetJson(subnet: SubnetDefinition): Record<string, unknown> {
    const name = subnet.id.split("/").pop() as string;
    const delegations =
      subnet.delegated === false
        ? []
        : [
            {
              name: "aci-delegation",
              id: `${subnet.id}/delegations/aci-delegation`,
              etag: 'W/"00000000-0000-0000-0000-000000000000"',
              properties: {
                provisioningState: "Succeeded",
                serviceName: "Microsoft.ContainerInstance/containerGroups",
                actions: ["Microsoft.Network/virtualNetworks/subnets/action"],
              },
              type: "Microsoft.Network/virtualNetworks/subnets/delegations",
            },
          ];
    return {
      name,
      id: subnet.id,
      etag: 'W/"00000000-0000-0000-0000-000000000000"',
      properties: {
        provisioningState: "Succeeded",
        addressPrefix: subnet.addressPrefix ?? "10.0.0.0/24",
        // Network's Subnet carries attached resources as {id} references.
        natGateway: subnet.natGateway ? { id: subnet.natGateway } : undefined,
        routeTable: subnet.routeTable ? { id: subnet.routeTable } : undefined,
        delegations,
        privateEndpointNetworkPolicies: "Disabled",
        privateLinkServiceNetworkPolicies: "Enabled",
      },
      type: "Microsoft.Network/virtualNetworks/subnets",
    };
  }

  function listPermissions(): Reply {
    return { status: 200, body: { value: permissions } };
  }

  /**
   * ACI's create or delete quota: sliding 5-minute and 1-hour windows. Every answer carries what is left as
   * `x-ms-ratelimit-remaining-subscription-resource-requests-pt5m`/`-pt1h`, as recorded on PUT and DELETE
   * (recordings/2023-05-01/recording_containergroups_create_test.json and …_delete_test.json). A refusal is
   * 429 with Retry-After; its error code and message are not verified (no refusal was recorded).
   */
  function takeAciQuota(kind: AciQuotaKind, limits: AciRequestQuotas): Reply | Record<string, string> {
    const now = performance.now();
    const use = aciQuotaUse[kind].filter((at) => now - at < ONE_HOUR_MS);
    aciQuotaUse[kind] = use;
    const inFiveMinutes = use.filter((at) => now - at < FIVE_MINUTES_MS);
    const per5Minutes = kind === "creates" ? limits.createsPer5Minutes : limits.deletesPer5Minutes;
    const perHour = kind === "creates" ? limits.createsPerHour : limits.deletesPerHour;
    if (inFiveMinutes.length >= per5Minutes || use.length >= perHour) {
      quotaRefusals[kind] += 1;
      const freedAt =
        use.length >= perHour
          ? use[use.length - perHour] + ONE_HOUR_MS
          : inFiveMinutes[inFiveMinutes.length - per5Minutes] + FIVE_MINUTES_MS;
      const seconds = Math.max(1, Math.ceil((freedAt - now) / 1000));
      const operation = kind === "creates" ? "create or update" : "delete";
      return armError(
        429,
        "TooManyRequests",
        `The container group ${operation} requests of subscription '${subscriptionId}' exceeded the limit of ${per5Minutes} per 5 minutes and ${perHour} per hour. Please try again after '${seconds}' seconds.`,
        {
          "retry-after": String(seconds),
          "x-ms-ratelimit-remaining-subscription-resource-requests-pt5m": String(
            Math.max(0, per5Minutes - inFiveMinutes.length),
          ),
          "x-ms-ratelimit-remaining-subscription-resource-requests-pt1h": String(
            Math.max(0, perHour - use.length),
          ),
        },
      );
    }
    use.push(now);
    return {
      "x-ms-ratelimit-remaining-subscription-resource-requests-pt5m": String(
        per5Minutes - inFiveMinutes.length - 1,
      ),
      "x-ms-ratelimit-remaining-subscription-resource-requests-pt1h": String(perHour - use.length),
    };
  }

  /** Token, subscription and throttling checks every ARM route shares; `quota` adds ACI's create/delete quota. */
  function arm(handler: RouteHandler, quota?: AciQuotaKind): RouteHandler {
    return async (request, params) => {
      const token = bearerToken(request);
      if (!token) {
        return armError(
          401,
          "AuthenticationFailed",
          "Authentication failed. The 'Authorization' header is missing.",
        );
      }
      const issued = options.tokenValidator.validateToken(token);
      if (!issued) {
        return armError(401, "InvalidAuthenticationToken", "The access token is invalid.", {
          "www-authenticate": `Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="The access token is invalid."`,
        });
      }
      request.record.caller = {
        scheme: issued.scheme,
        clientId: issued.clientId,
        tenantId: issued.tenantId,
        scope: issued.scope,
      };
      if (params.subscriptionId.toLowerCase() !== subscriptionId.toLowerCase()) {
        return armError(
          404,
          "SubscriptionNotFound",
          `The subscription '${params.subscriptionId}' could not be found.`,
        );
      }
      if (!request.query["api-version"]) {
        return armError(
          400,
          "MissingApiVersionParameter",
          "The api-version query parameter (?api-version=) is required for all requests.",
        );
      }
      if (!throttling) return withAciQuota(request, params);
      const kind = requestClass(request.method);
      const allowance = bucket(subscriptionId, kind, throttling).take();
      if (!allowance.taken) {
        throttled[kind] += 1;
        const seconds = Math.max(1, Math.ceil(allowance.waitMs / 1000));
        return armError(
          429,
          "SubscriptionRequestsThrottled",
          `Number of '${kind.slice(0, -1)}' requests for subscription '${subscriptionId}' actor '${issued.clientId}' exceeded. Please try again after '${seconds}' seconds after the additional tokens are added.`,
          { "retry-after": String(seconds) },
        );
      }
      const reply = await withAciQuota(request, params);
      reply.headers = {
        ...reply.headers,
        [`x-ms-ratelimit-remaining-subscription-${kind}`]: String(allowance.remaining),
      };
      return reply;
    };

    async function withAciQuota(request: StandinRequest, params: Record<string, string>): Promise<Reply> {
      if (!quota || !aciQuotas) return handler(request, params);
      const taken = takeAciQuota(quota, aciQuotas);
      if ("status" in taken) return taken as Reply;
      const reply = await handler(request, params);
      reply.headers = { ...reply.headers, ...taken };
      return reply;
    }
  }

  const server = await startStandinServer({
    protocol: "https",
    routes: [
      {
        method: "GET",
        pattern: "/subscriptions/:subscriptionId/resourcegroups/:resourceGroup",
        handle: arm(getResourceGroup),
      },
      {
        method: "GET",
        pattern:
          "/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.Network/virtualNetworks/:vnet/subnets/:subnet",
        handle: arm(getSubnet),
      },
      {
        method: "GET",
        pattern:
          "/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.Network/virtualNetworks/:vnet",
        handle: arm(getVirtualNetwork),
      },
      {
        method: "GET",
        pattern:
          "/subscriptions/:subscriptionId/providers/Microsoft.ContainerInstance/locations/:location/usages",
        handle: arm(listUsages),
      },
      {
        method: "GET",
        pattern:
          "/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.Authorization/permissions",
        handle: arm(listPermissions),
      },
      {
        method: "GET",
        pattern:
          "/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.Network/virtualNetworks/:vnet/subnets/:subnet/providers/Microsoft.Authorization/permissions",
        handle: arm(listPermissions),
      },
      {
        // Permissions_ListForResource (Authorization REST API) at a user-assigned identity: the pull or the job
        // identity the container group is given. Whether the identity exists is not checked (not verified how ARM
        // answers for a missing one).
        method: "GET",
        pattern:
          "/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.ManagedIdentity/userAssignedIdentities/:identity/providers/Microsoft.Authorization/permissions",
        handle: arm(listPermissions),
      },
      { method: "PUT", pattern: PROFILE_PATH, handle: arm(standby.putProfile) },
      { method: "GET", pattern: PROFILE_PATH, handle: arm(standby.getProfile) },
      {
        method: "GET",
        pattern: `${PROFILE_PATH}/providers/Microsoft.Authorization/permissions`,
        handle: arm(listPermissions),
      },
      { method: "PUT", pattern: POOL_PATH, handle: arm(standby.putPool) },
      { method: "GET", pattern: POOL_PATH, handle: arm(standby.getPool) },
      { method: "GET", pattern: `${POOL_PATH}/runtimeViews/:view`, handle: arm(standby.getRuntimeView) },
      { method: "GET", pattern: CONTAINER_GROUP, handle: arm(listContainerGroups) },
      {
        method: "GET",
        pattern: "/subscriptions/:subscriptionId/providers/Microsoft.ContainerInstance/containerGroups",
        handle: arm(listContainerGroups),
      },
      { method: "PUT", pattern: `${CONTAINER_GROUP}/:name`, handle: arm(putContainerGroup, "creates") },
      { method: "GET", pattern: `${CONTAINER_GROUP}/:name`, handle: arm(getContainerGroup) },
      { method: "DELETE", pattern: `${CONTAINER_GROUP}/:name`, handle: arm(deleteContainerGroup, "deletes") },
      {
        method: "GET",
        pattern: `${CONTAINER_GROUP}/:name/containers/:container/logs`,
        handle: arm(containerLogs),
      },
      {
        method: "GET",
        pattern:
          "/subscriptions/:subscriptionId/providers/Microsoft.ContainerInstance/locations/:location/operations/:operationId",
        handle: arm(getOperation),
      },
    ],
    notFound: (request) =>
      armError(404, "NotFound", `The ARM stand-in has no route for ${request.method} ${request.path}.`),
  });
  origin = server.origin;

  return {
    url: origin,
    subscriptionId,
    requests: server.requests,
    resourceGroups,
    subnets,
    regionUsage,
    behaviours,
    permissions,
    containerGroups: () => [...groups.values()],
    containerGroup: (name, resourceGroup) => {
      try {
        return lookup(name, { resourceGroup }).group;
      } catch {
        return undefined;
      }
    },
    setContainerState(name, state, where) {
      const { group, index } = lookup(name, where);
      setContainerState(group, index, state);
    },
    finishProvisioning(name, resourceGroup) {
      const { group } = lookup(name, { resourceGroup });
      const provision = pendingProvisioning.get(group);
      if (!provision) throw new Error(`Container group ${name} is not provisioning`);
      provision();
    },
    setLogs(name, text, where) {
      const { group, index } = lookup(name, where);
      group.containers[index].logs = text;
    },
    appendLogs(name, text, where) {
      const { group, index } = lookup(name, where);
      group.containers[index].logs += text;
    },
    onCreate(listener) {
      createListeners.push(listener);
    },
    onDelete(listener) {
      deleteListeners.push(listener);
    },
    onConfigMap(listener) {
      configMapListeners.push(listener);
    },
    standbyPools: standby,
    intercept: server.intercept,
    throttled,
    quotaRefusals,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      devopsEvents?.off("jobAssigned", onJobAssigned);
      devopsEvents?.off("jobFinished", onJobFinished);
      await server.close();
    },
  };
}

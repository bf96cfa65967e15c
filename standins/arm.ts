import { randomUUID } from "node:crypto";
import {
  containerGroupJson,
  environmentOf,
  requestProblems,
  type ContainerEvent,
  type ContainerGroupRecord,
  type ContainerGroupRequest,
  type ContainerState,
} from "./arm-container-groups";
import type { DevOpsStandin } from "./devops";
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
  /** "succeed" (default): Succeeded after the provisioning delay; "fail": LRO ends Failed; "stuck": stays Creating. */
  provisioning?: "succeed" | "fail" | "stuck";
  /** Error of a failed provisioning; default {code: "ContainerGroupDeploymentFailed", ...}. */
  error?: { code: string; message: string };
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
  setLogs(name: string, text: string, lookup?: ContainerGroupLookup): void;
  appendLogs(name: string, text: string, lookup?: ContainerGroupLookup): void;
  /** Called for every accepted PUT of a new group. */
  onCreate(listener: (group: ContainerGroupRecord) => void): void;
  /** Called for every accepted DELETE of an existing group; the group stays "Deleting" until the promise settles. */
  onDelete(listener: (group: ContainerGroupRecord) => Promise<void>): void;
  intercept(interceptor: Interceptor): () => void;
  /** Requests answered 429 by the throttling (not by injected faults), per request class; live counters. */
  throttled: Record<RequestClass, number>;
  close(): Promise<void>;
}

const API_VERSION = "2023-05-01";
const CONTAINER_GROUP =
  "/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.ContainerInstance/containerGroups";

interface Operation {
  id: string;
  location: string;
  status: "InProgress" | "Succeeded" | "Failed" | "Canceled";
  startTime: string;
  endTime?: string;
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
  const createListeners: Array<(group: ContainerGroupRecord) => void> = [];
  const deleteListeners: Array<(group: ContainerGroupRecord) => Promise<void>> = [];
  const timers = new Set<NodeJS.Timeout>();
  const throttling = options.throttling === false ? undefined : { ...ARM_THROTTLING, ...options.throttling };
  const buckets = new Map<string, TokenBucket>();
  const throttled: Record<RequestClass, number> = { reads: 0, writes: 0, deletes: 0 };
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

  function isCurrent(group: ContainerGroupRecord): boolean {
    return groups.get(groupKey(group.resourceGroup, group.name)) === group;
  }

  function operationUrl(operation: Operation): string {
    return `${origin}/subscriptions/${subscriptionId}/providers/Microsoft.ContainerInstance/locations/${operation.location}/operations/${operation.id}?api-version=${API_VERSION}`;
  }

  function startOperation(location: string): Operation {
    const operation: Operation = {
      id: randomUUID(),
      location,
      status: "InProgress",
      startTime: new Date().toISOString(),
    };
    operations.set(operation.id, operation);
    return operation;
  }

  function endOperation(operation: Operation, status: Operation["status"], error?: Operation["error"]): void {
    operation.status = status;
    operation.error = error;
    operation.endTime = new Date().toISOString();
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
        simulation.devops.simulateAgent.register({
          poolName,
          name: agentName,
          token: group.environment.AZP_TOKEN,
          systemCapabilities: agentCapabilities(group.request, agentName),
        });
      } catch (error) {
        logs.logs += `Failed to register the agent: ${(error as Error).message}\n`;
        setContainerState(group, 0, { state: "Terminated", exitCode: 1 });
        return;
      }
      simulatedAgents.set(group, { poolName, agentName, unregistered: false });
      simulation.devops.simulateAgent.online(poolName, agentName);
      logs.logs += `Connecting to the server.\nListening for Jobs\n`;
    });
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
    if (afterJob === "unregister") {
      options.simulateAgents?.devops.simulateAgent.unregister(simulated.poolName, simulated.agentName);
      simulated.unregistered = true;
      group.containers[0].logs += "Removing agent from the server\n";
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
    for (const container of group.containers) {
      container.events.push(
        event("Pulling", `pulling image "${image}"`),
        event("Pulled", `Successfully pulled image "${image}"`),
      );
    }
    if (behaviour.provisioning === "stuck") {
      group.provisioningState = "Creating";
      return;
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
    if (behaviour.agent !== false) startSimulatedAgent(group);
  }

  function subnetProblem(request: ContainerGroupRequest): Reply | undefined {
    for (const { id } of request.properties?.subnetIds ?? []) {
      const subnet = subnets.find((candidate) => candidate.id.toLowerCase() === id.toLowerCase());
      if (!subnet) return armError(400, "InvalidSubnetId", `The subnet '${id}' could not be found.`);
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

  function putContainerGroup(request: StandinRequest, params: Record<string, string>): Reply {
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
    const problems = requestProblems(body);
    if (problems.length > 0) return armError(400, "InvalidRequestContent", problems.join(" "));
    const subnetFailure = subnetProblem(body);
    if (subnetFailure) return subnetFailure;
    const key = groupKey(resourceGroup, params.name);
    const existed = groups.has(key);
    const group: ContainerGroupRecord = {
      subscriptionId,
      resourceGroup,
      name: params.name,
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
    };
    groups.set(key, group);
    const operation = startOperation(group.location);
    const behaviour = behaviourFor(group);
    schedule(provisioningDelayMs, () => completeProvisioning(group, behaviour, operation));
    if (!existed) for (const listener of createListeners) listener(group);
    return {
      status: existed ? 200 : 201,
      headers: { "azure-asyncoperation": operationUrl(operation) },
      body: containerGroupJson(group, true),
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

  function deleteContainerGroup(_request: StandinRequest, params: Record<string, string>): Reply {
    const group = existingGroup(params);
    if (!group) return { status: 204 };
    const operation = startOperation(group.location);
    group.provisioningState = "Deleting";
    takeAgentOffline(group);
    const finish = (): void => {
      if (isCurrent(group)) groups.delete(groupKey(group.resourceGroup, group.name));
      endOperation(operation, "Succeeded");
    };
    const finishAfterDelay = (): void => {
      if (deletionDelayMs > 0) schedule(deletionDelayMs, finish);
      else finish();
    };
    if (deleteListeners.length === 0) finishAfterDelay();
    else void Promise.allSettled(deleteListeners.map((listener) => listener(group))).then(finishAfterDelay);
    return { status: 202, headers: { "azure-asyncoperation": operationUrl(operation) } };
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

  function getOperation(_request: StandinRequest, params: Record<string, string>): Reply {
    const operation = operations.get(params.operationId);
    if (!operation)
      return armError(404, "OperationNotFound", `Operation '${params.operationId}' was not found.`);
    return {
      status: 200,
      body: {
        id: `/subscriptions/${subscriptionId}/providers/Microsoft.ContainerInstance/locations/${operation.location}/operations/${operation.id}`,
        name: operation.id,
        status: operation.status,
        startTime: operation.startTime,
        endTime: operation.endTime,
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
      status: 200,
      body: {
        name,
        id: subnet.id,
        etag: 'W/"00000000-0000-0000-0000-000000000000"',
        properties: {
          provisioningState: "Succeeded",
          addressPrefix: subnet.addressPrefix ?? "10.0.0.0/24",
          delegations,
          privateEndpointNetworkPolicies: "Disabled",
          privateLinkServiceNetworkPolicies: "Enabled",
        },
        type: "Microsoft.Network/virtualNetworks/subnets",
      },
    };
  }

  function listPermissions(): Reply {
    return { status: 200, body: { value: permissions } };
  }

  /** Token, subscription and throttling checks every ARM route shares. */
  function arm(handler: RouteHandler): RouteHandler {
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
      if (!throttling) return handler(request, params);
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
      const reply = await handler(request, params);
      reply.headers = {
        ...reply.headers,
        [`x-ms-ratelimit-remaining-subscription-${kind}`]: String(allowance.remaining),
      };
      return reply;
    };
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
          "/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.Authorization/permissions",
        handle: arm(listPermissions),
      },
      {
        method: "GET",
        pattern:
          "/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.Network/virtualNetworks/:vnet/subnets/:subnet/providers/Microsoft.Authorization/permissions",
        handle: arm(listPermissions),
      },
      { method: "GET", pattern: CONTAINER_GROUP, handle: arm(listContainerGroups) },
      {
        method: "GET",
        pattern: "/subscriptions/:subscriptionId/providers/Microsoft.ContainerInstance/containerGroups",
        handle: arm(listContainerGroups),
      },
      { method: "PUT", pattern: `${CONTAINER_GROUP}/:name`, handle: arm(putContainerGroup) },
      { method: "GET", pattern: `${CONTAINER_GROUP}/:name`, handle: arm(getContainerGroup) },
      { method: "DELETE", pattern: `${CONTAINER_GROUP}/:name`, handle: arm(deleteContainerGroup) },
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
    intercept: server.intercept,
    throttled,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      devopsEvents?.off("jobAssigned", onJobAssigned);
      devopsEvents?.off("jobFinished", onJobFinished);
      await server.close();
    },
  };
}

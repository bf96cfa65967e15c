import {
  ContainerInstanceManagementClient,
  type ContainerGroup,
  type EnvironmentVariable,
  type Usage,
} from "@azure/arm-containerinstance";
import { createPipelineRequest, type PipelineResponse } from "@azure/core-rest-pipeline";
import {
  armScope,
  azurePipelineOptions,
  createCredential,
  retryingCredential,
  type AzureConnection,
} from "../../clients/entra";
import { ENV, identityFromTags, tagsFor } from "../../core/contract";
import { AccessError, InputError, UserError, errorMessage, httpStatusOf } from "../../core/errors";
import { formatDuration, type Log } from "../../core/log";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../../core/retry";
import { sleep } from "../../core/timing";
import { missingArmActions, type ArmPermission } from "./armPermissions";
import {
  AciQuotaRefusal,
  aciQuotaPolicy,
  armErrorCode,
  explainArmError,
  isSubnetBusy,
  narrowestRole,
} from "./armErrors";
import { billedSizeOfGroup } from "./billing";
import { ImagePullWatch, statusOfGroup } from "./groupStatus";
import { regionQuotaShortfall, sameRegion, subscriptionOf, virtualNetworkOf } from "./placement";
import { AciStandbyPool, type ArmAnswer, type StandbyPoolSettings } from "./standbyPool";
import {
  samePool,
  type AgentContainerSpec,
  type AgentProvider,
  type ContainerStatus,
  type LaunchPlan,
  type LaunchedContainer,
} from "../../core/ports";
import type { BilledSize } from "../../core/cost";

export { statusOfGroup } from "./groupStatus";

export type RegistryCredential =
  { server: string; username: string; password: string } | { server: string; identityId: string };

export interface AciSettings {
  connection: AzureConnection;
  resourceGroup: string;
  /** Azure region; the virtual network's with a subnet, else the resource group's, when undefined. */
  location?: string;
  subnetId?: string;
  dnsServers: readonly string[];
  cpu: number;
  memoryGB: number;
  osType: "Linux" | "Windows";
  registry?: RegistryCredential;
  /** User-assigned managed identity the container group pulls its image with. */
  registryIdentity?: string;
  /** User-assigned managed identity the container group carries for the job's own use; never pulls the image. */
  jobIdentity?: string;
  /** A warm start: agents are claimed from this standby pool, whose profile must run `image`. */
  standby?: StandbyPoolSettings & { image: string };
  /** How often a long-running delete is polled. */
  pollIntervalMs?: number;
  /** Also the unit of the provider's own waits (see ACI_WAITS): tests shorten them all through baseDelayMs. */
  retryPolicy?: RetryPolicy;
  /** Why the provider waits, and what it could not check. */
  log: Log;
  /** Ends waits between retries when the task is cancelled. */
  signal: AbortSignal;
}

/** The one container in each container group. */
export const AGENT_CONTAINER = "agent";
/**
 * The provider's waits, in units of the retry policy's base delay (1 s by default): a subnet that is not ready is
 * retried for up to 3 minutes; a container that cannot pull its image fails after 45 s; creations are spaced 3 s
 * apart (100 per 5 minutes, ACI's create quota) once the quota left is smaller than the creations still to come;
 * a quota refusal is waited out when it asks for at most 60 s.
 */
export const ACI_WAITS = {
  subnetBusyBudget: 180,
  subnetBusyLongestWait: 30,
  imagePullGrace: 45,
  pacedCreateSpacing: 3,
  longestQuotaWait: 60,
};
/** Container groups whose container state is read per polling round (the list call does not carry it). */
const DETAIL_READS_PER_ROUND = 3;
const RESOURCE_GROUP_API = "2021-04-01";
const NETWORK_API = "2023-09-01";
const AUTHORIZATION_API = "2022-04-01";
const ACI_DELEGATION = "Microsoft.ContainerInstance/containerGroups";
const REQUIRED_ACTIONS = [
  "Microsoft.ContainerInstance/containerGroups/write",
  "Microsoft.ContainerInstance/containerGroups/read",
  "Microsoft.ContainerInstance/containerGroups/delete",
];
const SUBNET_JOIN_ACTION = "Microsoft.Network/virtualNetworks/subnets/join/action";
const IDENTITY_ASSIGN_ACTION = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";
const QUOTA_LEFT_HEADER = "x-ms-ratelimit-remaining-subscription-resource-requests-pt5m";

/** The answer to a read made before anything is created: a 403 or 404 is the caller's to judge. */
type ArmRead<T> =
  { status: "ok"; body: T } | { status: "forbidden"; error: unknown } | { status: "missing"; error: unknown };

interface SubnetResource {
  properties?: {
    delegations?: { properties?: { serviceName?: string } }[];
    natGateway?: { id?: string };
    routeTable?: { id?: string };
  };
}

export class AciProvider implements AgentProvider {
  readonly warm?: AciStandbyPool;
  private readonly client: ContainerInstanceManagementClient;
  private readonly unitMs: number;
  private readonly pullWatch: ImagePullWatch;
  private location: string | undefined;
  private detailCursor = 0;
  private subnetWithoutOutbound = false;
  /** With a subnet, the first creation goes alone; the others wait for it (true once its PUT was accepted). */
  private firstCreate: Promise<boolean> | undefined;
  private plannedCreates = 0;
  private createsStarted = 0;
  private quotaLeft: number | undefined;
  private nextPacedCreateAt = 0;
  /** The containers' size: the inputs', or the container group profile's in a warm start. */
  private size: { cpu: number; memoryGB: number };

  constructor(private readonly settings: AciSettings) {
    const connection = settings.connection;
    const retry = settings.retryPolicy ?? DEFAULT_RETRY_POLICY;
    const credential = retryingCredential(() => createCredential(connection), retry, settings.signal);
    // The SDK retries throttling (honouring Retry-After), server errors and dropped connections itself.
    this.client = new ContainerInstanceManagementClient(credential, connection.subscriptionId, {
      endpoint: connection.armUrl,
      credentialScopes: [armScope(connection)],
      retryOptions: {
        maxRetries: retry.attempts - 1,
        retryDelayInMs: retry.baseDelayMs,
        maxRetryDelayInMs: retry.maxDelayMs,
      },
      additionalPolicies: [{ policy: aciQuotaPolicy, position: "perRetry" }],
      ...azurePipelineOptions(connection.agentHttp, connection.armUrl),
    });
    this.location = settings.location;
    this.size = { cpu: settings.cpu, memoryGB: settings.memoryGB };
    this.unitMs = retry.baseDelayMs;
    if (settings.standby) {
      this.warm = new AciStandbyPool(settings.standby, this.resourceGroupPath(), {
        send: (method, path, apiVersion, body) => this.armSend(method, path, apiVersion, body),
        checkPermissions: (scope, actions, scopeName) => this.checkPermissions(scope, actions, scopeName),
        explain: (answer, action) => this.explain(armFailure(answer), action),
        logs: (name) => this.logs(name),
        log: settings.log,
      });
    }
    this.pullWatch = new ImagePullWatch(ACI_WAITS.imagePullGrace * this.unitMs);
  }

  get description(): string {
    const network = this.warm
      ? this.warm.description
      : this.settings.subnetId
        ? `subnet ${this.settings.subnetId}`
        : "no virtual network";
    return `Azure Container Instances, resource group ${this.settings.resourceGroup} (${this.location ?? "its location"}, ${network})`;
  }

  get billedSize(): BilledSize | undefined {
    const { osType } = this.settings;
    const { cpu, memoryGB } = this.size;
    return this.location ? { region: this.location, cpu, memoryGB, osType } : undefined;
  }

  get timeoutHint(): string | undefined {
    if (!this.settings.subnetId) return undefined;
    const outbound = this.subnetWithoutOutbound
      ? "The subnet has neither a NAT gateway nor a route table: a container in a delegated subnet then has no way out, and the agent cannot reach Azure DevOps."
      : "In a subnet the agent needs a way out to Azure DevOps (a NAT gateway, or a route through a firewall that allows it).";
    return `${outbound} Check also that the DNS servers resolve dev.azure.com (see docs/virtual-network.md).`;
  }

  async prepare(plan?: LaunchPlan): Promise<void> {
    if (this.warm) return this.prepareWarm(plan?.count ?? 1);
    const { subnetId, location } = this.settings;
    this.plannedCreates = plan?.count ?? 0;
    const groupRegion = await this.resourceGroupRegion();
    if (subnetId) {
      const networkRegion = await this.virtualNetworkRegion(subnetId);
      if (location && networkRegion && !sameRegion(location, networkRegion)) {
        throw new InputError(
          "location",
          `is '${location}', but the subnet's virtual network ${virtualNetworkOf(subnetId)} is in '${networkRegion}': a container group must be in its virtual network's region. Clear location (the network's region is then used) or set it to '${networkRegion}'.`,
        );
      }
      this.location = location ?? networkRegion ?? groupRegion;
    } else {
      this.location = location ?? groupRegion;
    }
    if (!this.location) {
      throw new InputError(
        "location",
        `is empty and the region could not be read from resource group '${this.settings.resourceGroup}': set location.`,
      );
    }
    await this.checkPermissions(
      this.resourceGroupPath(),
      REQUIRED_ACTIONS,
      `resource group '${this.settings.resourceGroup}'`,
    );
    if (subnetId) await this.checkSubnet(subnetId);
    if (this.settings.registryIdentity) {
      await this.checkPermissions(
        this.settings.registryIdentity,
        [IDENTITY_ASSIGN_ACTION],
        `managed identity ${this.settings.registryIdentity}`,
      );
    }
    if (this.settings.jobIdentity) await this.checkJobIdentity(this.settings.jobIdentity);
    if (this.plannedCreates > 0) await this.checkRegionQuota(this.location, this.plannedCreates);
  }

  /** A warm start creates nothing itself: the checks are the resource group's and the standby pool's. */
  private async prepareWarm(count: number): Promise<void> {
    const standby = this.settings.standby!;
    await this.resourceGroupRegion();
    await this.checkPermissions(
      this.resourceGroupPath(),
      REQUIRED_ACTIONS,
      `resource group '${this.settings.resourceGroup}'`,
    );
    const plan = await this.warm!.prepare({
      image: standby.image,
      container: AGENT_CONTAINER,
      location: this.settings.location,
      count,
    });
    this.location = plan.location;
    if (plan.cpu !== undefined && plan.memoryGB !== undefined) {
      if (plan.cpu !== this.settings.cpu || plan.memoryGB !== this.settings.memoryGB) {
        this.settings.log.info(
          `The claimed containers have the container group profile's size, ${plan.cpu} CPU and ${plan.memoryGB} GB, not cpu ${this.settings.cpu} and memoryGB ${this.settings.memoryGB}.`,
        );
      }
      this.size = { cpu: plan.cpu, memoryGB: plan.memoryGB };
    }
  }

  async create(spec: AgentContainerSpec): Promise<void> {
    const name = spec.identity.name;
    if (!this.settings.subnetId) return this.createGroup(spec);
    if (!this.firstCreate) {
      const created = this.createGroup(spec);
      this.firstCreate = created.then(
        () => true,
        () => false,
      );
      return created;
    }
    if (!(await this.firstCreate)) {
      throw new UserError(`Container group ${name} was not created: the first container group failed.`);
    }
    return this.createGroup(spec);
  }

  async pollStatuses(names: readonly string[]): Promise<Map<string, ContainerStatus>> {
    const statuses = new Map<string, ContainerStatus>();
    const listed = new Map<string, ContainerGroup>();
    for await (const group of this.client.containerGroups.listByResourceGroup(this.settings.resourceGroup)) {
      if (group.name && names.includes(group.name)) listed.set(group.name, group);
    }
    const detailed: string[] = [];
    for (const name of names) {
      const group = listed.get(name);
      const status = group && statusOfGroup(group);
      // A failed group is read in full: its events, which say why, are not in the list.
      if (!status || status.state === "failed") detailed.push(name);
      else statuses.set(name, status);
    }
    // The list carries no container state (a running agent, or a container stuck pulling its image): read a few
    // groups in full each round, in turn.
    const unsettled = names.filter((name) => {
      const state = statuses.get(name)?.state;
      return state === "running" || state === "provisioning";
    });
    for (let i = 0; i < Math.min(DETAIL_READS_PER_ROUND, unsettled.length); i++) {
      detailed.push(unsettled[(this.detailCursor + i) % unsettled.length]);
    }
    this.detailCursor += DETAIL_READS_PER_ROUND;
    await Promise.all(detailed.map(async (name) => statuses.set(name, await this.status(name))));
    return statuses;
  }

  async status(name: string): Promise<ContainerStatus> {
    try {
      const group = await this.client.containerGroups.get(this.settings.resourceGroup, name);
      return this.pullWatch.judge(name, group, statusOfGroup(group));
    } catch (error) {
      if (httpStatusOf(error) === 404) return { state: "missing" };
      throw this.explain(error, `read container group ${name}`);
    }
  }

  async logs(name: string): Promise<string> {
    try {
      const logs = await this.client.containers.listLogs(this.settings.resourceGroup, name, AGENT_CONTAINER);
      return logs.content ?? "";
    } catch (error) {
      if (httpStatusOf(error) === 404) return "";
      throw this.explain(error, `read the log of container group ${name}`);
    }
  }

  async remove(name: string): Promise<boolean> {
    let existed = true;
    try {
      await this.withWaits(`delete container group ${name}`, async () => {
        const poller = await this.client.containerGroups.beginDelete(this.settings.resourceGroup, name, {
          updateIntervalInMs: this.settings.pollIntervalMs,
          onResponse: (response) => {
            if (response.status === 204 || response.status === 404) existed = false;
          },
        });
        await poller.pollUntilDone();
      });
      return existed;
    } catch (error) {
      if (httpStatusOf(error) === 404) return false;
      throw this.explain(error, `delete container group ${name}`);
    }
  }

  async list(pool: string): Promise<LaunchedContainer[]> {
    const launched: LaunchedContainer[] = [];
    try {
      for await (const group of this.client.containerGroups.listByResourceGroup(
        this.settings.resourceGroup,
      )) {
        const identity = identityFromTags(group.tags);
        if (identity && samePool(identity.pool, pool)) {
          launched.push({ identity, billedSize: billedSizeOfGroup(group) });
        }
      }
    } catch (error) {
      throw this.explain(error, `list container groups in resource group ${this.settings.resourceGroup}`);
    }
    return launched;
  }

  private async createGroup(spec: AgentContainerSpec): Promise<void> {
    const name = spec.identity.name;
    const environmentVariables: EnvironmentVariable[] = [
      ...Object.entries(spec.environment).map(([variable, value]) => ({ name: variable, value })),
      // Secure values are the one channel Resource Manager documents as never returned (Microsoft Learn, "Set
      // environment variables in container instances"; secureValue is x-ms-secret in the REST spec). Secret
      // volumes carry no such mark or statement, so the agent's credential travels as a secure value too.
      spec.agentCredential
        ? {
            name: ENV.agentCredential,
            secureValue: Buffer.from(JSON.stringify(spec.agentCredential)).toString("base64"),
          }
        : { name: ENV.token, secureValue: spec.token },
    ];
    const group: ContainerGroup = {
      location: this.location,
      tags: tagsFor(spec.identity),
      osType: this.settings.osType,
      restartPolicy: "Never",
      containers: [
        {
          name: AGENT_CONTAINER,
          image: spec.image,
          resources: { requests: { cpu: this.settings.cpu, memoryInGB: this.settings.memoryGB } },
          environmentVariables,
        },
      ],
      subnetIds: this.settings.subnetId ? [{ id: this.settings.subnetId }] : undefined,
      dnsConfig: this.settings.dnsServers.length ? { nameServers: [...this.settings.dnsServers] } : undefined,
      imageRegistryCredentials: this.registryCredentials(),
      identity: this.groupIdentity(),
    };
    await this.paceCreation();
    const action = `create container group ${name}`;
    try {
      // Only the creation request: readiness is watched through the agent pool and pollStatuses.
      await this.withWaits(action, () =>
        this.client.containerGroups.beginCreateOrUpdate(this.settings.resourceGroup, name, group, {
          onResponse: (response) => this.noteQuotaLeft(response),
        }),
      );
    } catch (error) {
      throw this.explain(error, action, spec.image);
    }
  }

  /** Once ACI's create quota left is smaller than the creations still to come, spaces them out. */
  private async paceCreation(): Promise<void> {
    const toCome = this.plannedCreates - this.createsStarted;
    this.createsStarted += 1;
    if (this.quotaLeft === undefined || this.quotaLeft >= toCome) return;
    const spacingMs = ACI_WAITS.pacedCreateSpacing * this.unitMs;
    if (this.nextPacedCreateAt === 0) {
      this.settings.log.info(
        `Azure Container Instances allows ${this.quotaLeft} more container group creations in this subscription for now (of about 100 per 5 minutes): spacing the remaining ${toCome} ${formatDuration(spacingMs)} apart.`,
      );
    }
    const now = Date.now();
    const at = Math.max(now, this.nextPacedCreateAt);
    this.nextPacedCreateAt = at + spacingMs;
    await sleep(at - now, this.settings.signal);
  }

  private noteQuotaLeft(response: { headers: { get(name: string): string | undefined } }): void {
    const left = Number(response.headers.get(QUOTA_LEFT_HEADER));
    if (response.headers.get(QUOTA_LEFT_HEADER) !== undefined && Number.isFinite(left)) this.quotaLeft = left;
  }

  /**
   * Runs a container group write, waiting out what passes by itself: a subnet that is not ready yet (409
   * ServiceAssociationLinkNotReady right after delegation, AnotherOperationInProgress while the network is busy)
   * and a short quota refusal. Everything else, and a wait beyond the budget, is thrown.
   */
  private async withWaits<T>(action: string, operation: () => Promise<T>): Promise<T> {
    const budgetEnds = Date.now() + ACI_WAITS.subnetBusyBudget * this.unitMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation();
      } catch (error) {
        const wait = this.waitBeforeRetry(error, attempt);
        if (!wait || Date.now() + wait.ms > budgetEnds) throw error;
        this.settings.log.info(`${wait.reason}: trying again to ${action} in ${formatDuration(wait.ms)}.`);
        await sleep(wait.ms, this.settings.signal);
      }
    }
  }

  private waitBeforeRetry(error: unknown, attempt: number): { ms: number; reason: string } | undefined {
    if (isSubnetBusy(error)) {
      const units = Math.min(ACI_WAITS.subnetBusyLongestWait, 5 * 2 ** (attempt - 1));
      const code = armErrorCode(error);
      const why =
        code === "ServiceAssociationLinkNotReady"
          ? "the subnet's link to Azure Container Instances is not ready yet (a subnet delegated moments ago)"
          : "another operation on the virtual network is in progress";
      return { ms: units * this.unitMs, reason: `Azure answered 409 ${code}: ${why}` };
    }
    if (error instanceof AciQuotaRefusal && error.retryAfterMs !== undefined) {
      if (error.retryAfterMs > ACI_WAITS.longestQuotaWait * this.unitMs) return undefined;
      return {
        ms: error.retryAfterMs,
        reason: "Azure Container Instances' quota of container group creates and deletes is used up for now",
      };
    }
    return undefined;
  }

  /** The pull identity and the job's identity; only the pull identity is named in the registry credentials. */
  private groupIdentity(): ContainerGroup["identity"] {
    const identities = [this.settings.registryIdentity, this.settings.jobIdentity].filter(
      (identity): identity is string => identity !== undefined,
    );
    if (identities.length === 0) return undefined;
    const userAssignedIdentities: Record<string, object> = {};
    for (const identity of identities) {
      const known = Object.keys(userAssignedIdentities).some((key) => sameResourceId(key, identity));
      if (!known) userAssignedIdentities[identity] = {};
    }
    return { type: "UserAssigned", userAssignedIdentities };
  }

  private async checkJobIdentity(jobIdentity: string): Promise<void> {
    const { registryIdentity } = this.settings;
    if (registryIdentity && sameResourceId(registryIdentity, jobIdentity)) {
      this.settings.log.warn(
        "jobIdentity is the same identity as registryIdentity: the container group carries it once, and the job may use every role it holds for as long as the agent lives. If the job needs more than AcrPull, give it an identity of its own rather than widening the pull identity, which other pipelines may share.",
      );
      return;
    }
    await this.checkPermissions(jobIdentity, [IDENTITY_ASSIGN_ACTION], `managed identity ${jobIdentity}`);
  }

  private registryCredentials(): ContainerGroup["imageRegistryCredentials"] {
    const registry = this.settings.registry;
    if (registry && "password" in registry) {
      return [{ server: registry.server, username: registry.username, password: registry.password }];
    }
    if (registry) return [{ server: registry.server, identity: registry.identityId }];
    return undefined;
  }

  private async resourceGroupRegion(): Promise<string | undefined> {
    const answer = await this.armRead<{ location?: string }>(this.resourceGroupPath(), RESOURCE_GROUP_API);
    if (answer.status === "missing") {
      throw new InputError(
        "resourceGroup",
        `resource group '${this.settings.resourceGroup}' does not exist in subscription ${this.settings.connection.subscriptionId}: create it or pick an existing one.`,
      );
    }
    if (answer.status === "forbidden") {
      this.cannotCheck(`that resource group '${this.settings.resourceGroup}' exists`, answer.error);
      return undefined;
    }
    return answer.body.location;
  }

  private async virtualNetworkRegion(subnetId: string): Promise<string | undefined> {
    const subnetSubscription = subscriptionOf(subnetId);
    const connectionSubscription = this.settings.connection.subscriptionId;
    if (subnetSubscription && subnetSubscription.toLowerCase() !== connectionSubscription.toLowerCase()) {
      throw new InputError(
        "subnetId",
        `the subnet is in subscription ${subnetSubscription}, the service connection in subscription ${connectionSubscription}: Azure Container Instances needs the subnet in the container group's subscription. Use a subnet of ${connectionSubscription}, or a service connection to ${subnetSubscription}.`,
      );
    }
    const network = virtualNetworkOf(subnetId);
    const answer = await this.armRead<{ location?: string }>(network, NETWORK_API);
    if (answer.status === "missing") {
      throw new InputError(
        "subnetId",
        `virtual network ${network} does not exist: copy the subnet's resource ID from its Properties page.`,
      );
    }
    if (answer.status === "forbidden") {
      this.cannotCheck(`the region of virtual network ${network}`, answer.error);
      return undefined;
    }
    return answer.body.location;
  }

  private async checkSubnet(subnetId: string): Promise<void> {
    const answer = await this.armRead<SubnetResource>(subnetId, NETWORK_API);
    if (answer.status === "missing") {
      throw new InputError(
        "subnetId",
        `subnet ${subnetId} does not exist: copy the subnet's resource ID from its Properties page.`,
      );
    }
    if (answer.status === "forbidden") {
      this.cannotCheck(`the delegation and outbound access of subnet ${subnetId}`, answer.error);
    } else {
      const properties = answer.body.properties ?? {};
      const delegated = (properties.delegations ?? []).some(
        (delegation) => delegation.properties?.serviceName === ACI_DELEGATION,
      );
      if (!delegated) {
        throw new InputError(
          "subnetId",
          `subnet ${subnetId} is not delegated to ${ACI_DELEGATION}: add that delegation to the subnet (Subnet > Delegate subnet to a service).`,
        );
      }
      if (!properties.natGateway?.id && !properties.routeTable?.id) {
        this.subnetWithoutOutbound = true;
        this.settings.log.warn(
          `Subnet ${subnetId} has neither a NAT gateway nor a route table: containers in a delegated subnet need one of them to reach the internet, or the agents never reach Azure DevOps (see docs/virtual-network.md).`,
        );
      }
    }
    await this.checkPermissions(subnetId, [SUBNET_JOIN_ACTION], `subnet ${subnetId}`);
  }

  private async checkRegionQuota(location: string, count: number): Promise<void> {
    const usages: Usage[] = [];
    try {
      for await (const usage of this.client.location.listUsage(location)) usages.push(usage);
    } catch (error) {
      if (error instanceof UserError) throw error;
      this.cannotCheck(`the Azure Container Instances quotas of region ${location}`, error);
      return;
    }
    const shortfall = regionQuotaShortfall(usages, location, count, this.settings.cpu);
    if (shortfall) {
      throw new UserError(
        `Not enough Azure Container Instances quota: ${shortfall}. Remove unused container groups, lower count or cpu, or request a quota increase (Subscription > Usage + quotas).`,
      );
    }
  }

  /** Fails only on a definite answer: a permissions list that lacks an action. */
  private async checkPermissions(
    scope: string,
    actions: readonly string[],
    scopeName: string,
  ): Promise<void> {
    const answer = await this.armRead<{ value?: ArmPermission[] }>(
      `${scope}/providers/Microsoft.Authorization/permissions`,
      AUTHORIZATION_API,
    );
    if (answer.status !== "ok") {
      this.cannotCheck(`the service connection's permissions on ${scopeName}`, answer.error);
      return;
    }
    const missing = missingArmActions(answer.body.value ?? [], actions);
    if (missing.length) {
      const roles = [...new Set(missing.map(narrowestRole))].map((role) => `'${role}'`).join(" and ");
      throw new AccessError(
        `The service connection's identity lacks ${missing.join(", ")} on ${scopeName}: grant it ${roles} there (or Contributor, which includes ${missing.length > 1 ? "them" : "it"}).`,
      );
    }
  }

  private cannotCheck(what: string, error: unknown): void {
    this.settings.log.warn(
      `Could not check ${what} (${errorMessage(this.explain(error, "read it"))}); going on: if something is missing, the creation's own error will say so.`,
    );
  }

  private resourceGroupPath(): string {
    return `/subscriptions/${this.settings.connection.subscriptionId}/resourceGroups/${this.settings.resourceGroup}`;
  }

  /** A raw Resource Manager request through the SDK client's pipeline, for what the SDK cannot send. */
  private async armSend(
    method: "GET" | "PUT",
    path: string,
    apiVersion: string,
    body?: object,
  ): Promise<ArmAnswer> {
    const url = new URL(path.replace(/^\/+/, ""), this.settings.connection.armUrl.replace(/\/*$/, "/"));
    url.searchParams.set("api-version", apiVersion);
    const request = createPipelineRequest({ url: url.toString(), method });
    if (body) {
      request.body = JSON.stringify(body);
      request.headers.set("Content-Type", "application/json");
    }
    let response: PipelineResponse;
    try {
      response = await this.client.sendRequest(request);
    } catch (error) {
      throw this.explain(error, `${method === "GET" ? "read" : "write"} ${path}`);
    }
    const text = response.bodyAsText ?? "";
    return { status: response.status, body: parseJson(text) as Record<string, unknown>, text };
  }

  private async armRead<T extends object>(path: string, apiVersion: string): Promise<ArmRead<T>> {
    const answer = await this.armSend("GET", path, apiVersion);
    const failure = armFailure(answer);
    if (answer.status === 404) return { status: "missing", error: failure };
    if (answer.status === 403) return { status: "forbidden", error: failure };
    if (answer.status >= 400) throw this.explain(failure, `read ${path}`);
    return { status: "ok", body: answer.body as T };
  }

  private explain(error: unknown, action: string, image?: string): Error {
    return explainArmError(error, { action, resourceGroup: this.settings.resourceGroup, image });
  }
}

/** An ARM error answer in the shape explainArmError reads (the SDK's RestError). */
function armFailure(answer: ArmAnswer): object {
  return { statusCode: answer.status, details: answer.body, message: answer.text };
}

/** Resource IDs compare without regard to case (Azure Resource Manager treats them so). */
function sameResourceId(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function parseJson(text: string | null | undefined): object {
  try {
    const parsed: unknown = JSON.parse(text ?? "{}");
    return typeof parsed === "object" && parsed !== null ? parsed : {};
  } catch {
    return {};
  }
}

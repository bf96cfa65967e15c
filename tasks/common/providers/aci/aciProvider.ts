import {
  ContainerInstanceManagementClient,
  type ContainerGroup,
  type EnvironmentVariable,
} from "@azure/arm-containerinstance";
import { createPipelineRequest } from "@azure/core-rest-pipeline";
import { armScope, createCredential, retryingCredential, type AzureConnection } from "../../clients/entra";
import { ENV, identityFromTags, tagsFor } from "../../core/contract";
import { AccessError, InputError, UserError, errorMessage, httpStatusOf } from "../../core/errors";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../../core/retry";
import { missingArmActions, type ArmPermission } from "./armPermissions";
import {
  samePool,
  type AgentContainerSpec,
  type AgentProvider,
  type ContainerStatus,
  type LaunchedContainer,
} from "../../core/ports";

export type RegistryCredential =
  { server: string; username: string; password: string } | { server: string; identityId: string };

export interface AciSettings {
  connection: AzureConnection;
  resourceGroup: string;
  /** Azure region; the resource group's when undefined. */
  location?: string;
  subnetId?: string;
  dnsServers: readonly string[];
  cpu: number;
  memoryGB: number;
  osType: "Linux" | "Windows";
  registry?: RegistryCredential;
  /** User-assigned managed identity the container group pulls its image with. */
  registryIdentity?: string;
  /** How often a long-running delete is polled. */
  pollIntervalMs?: number;
  retryPolicy?: RetryPolicy;
  /** Ends waits between retries when the task is cancelled. */
  signal: AbortSignal;
}

/** The one container in each container group. */
export const AGENT_CONTAINER = "agent";
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

export class AciProvider implements AgentProvider {
  private readonly client: ContainerInstanceManagementClient;
  private location: string | undefined;
  private detailCursor = 0;

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
    });
    this.location = settings.location;
  }

  get description(): string {
    const network = this.settings.subnetId ? `subnet ${this.settings.subnetId}` : "no virtual network";
    return `Azure Container Instances, resource group ${this.settings.resourceGroup} (${this.location ?? "its location"}, ${network})`;
  }

  async prepare(): Promise<void> {
    const resourceGroup = await this.armGet<{ location?: string }>(
      this.resourceGroupPath(),
      RESOURCE_GROUP_API,
      {
        notFound: () =>
          new InputError(
            "resourceGroup",
            `resource group '${this.settings.resourceGroup}' does not exist in subscription ${this.settings.connection.subscriptionId}: create it or pick an existing one.`,
          ),
      },
    );
    this.location ??= resourceGroup.location;
    await this.checkPermissions(
      this.resourceGroupPath(),
      REQUIRED_ACTIONS,
      `resource group '${this.settings.resourceGroup}'`,
    );
    if (this.settings.subnetId) await this.checkSubnet(this.settings.subnetId);
  }

  async create(spec: AgentContainerSpec): Promise<void> {
    const name = spec.identity.name;
    const environmentVariables: EnvironmentVariable[] = [
      ...Object.entries(spec.environment).map(([variable, value]) => ({ name: variable, value })),
      { name: ENV.token, secureValue: spec.token },
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
      identity: this.settings.registryIdentity
        ? { type: "UserAssigned", userAssignedIdentities: { [this.settings.registryIdentity]: {} } }
        : undefined,
    };
    try {
      // Only the creation request: readiness is watched through the agent pool and pollStatuses.
      await this.client.containerGroups.beginCreateOrUpdate(this.settings.resourceGroup, name, group);
    } catch (error) {
      throw this.explain(error, `create container group ${name}`);
    }
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
      if (!group) detailed.push(name);
      else statuses.set(name, statusOfGroup(group));
    }
    // The list carries no container state: read a few groups in full each round, in turn.
    const provisioned = names.filter((name) => statuses.get(name)?.state === "running");
    for (let i = 0; i < Math.min(DETAIL_READS_PER_ROUND, provisioned.length); i++) {
      detailed.push(provisioned[(this.detailCursor + i) % provisioned.length]);
    }
    this.detailCursor += DETAIL_READS_PER_ROUND;
    await Promise.all(detailed.map(async (name) => statuses.set(name, await this.status(name))));
    return statuses;
  }

  async status(name: string): Promise<ContainerStatus> {
    try {
      return statusOfGroup(await this.client.containerGroups.get(this.settings.resourceGroup, name));
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
      const poller = await this.client.containerGroups.beginDelete(this.settings.resourceGroup, name, {
        updateIntervalInMs: this.settings.pollIntervalMs,
        onResponse: (response) => {
          if (response.status === 204 || response.status === 404) existed = false;
        },
      });
      await poller.pollUntilDone();
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
        if (identity && samePool(identity.pool, pool)) launched.push({ identity });
      }
    } catch (error) {
      throw this.explain(error, `list container groups in resource group ${this.settings.resourceGroup}`);
    }
    return launched;
  }

  private registryCredentials(): ContainerGroup["imageRegistryCredentials"] {
    const registry = this.settings.registry;
    if (registry && "password" in registry) {
      return [{ server: registry.server, username: registry.username, password: registry.password }];
    }
    if (registry) return [{ server: registry.server, identity: registry.identityId }];
    return undefined;
  }

  private async checkSubnet(subnetId: string): Promise<void> {
    const subnet = await this.armGet<{
      properties?: { delegations?: { properties?: { serviceName?: string } }[] };
    }>(subnetId, NETWORK_API, {
      notFound: () =>
        new InputError(
          "subnetId",
          `subnet ${subnetId} does not exist: copy the subnet's resource ID from its Properties page.`,
        ),
    });
    const delegated = (subnet.properties?.delegations ?? []).some(
      (delegation) => delegation.properties?.serviceName === ACI_DELEGATION,
    );
    if (!delegated) {
      throw new InputError(
        "subnetId",
        `subnet ${subnetId} is not delegated to ${ACI_DELEGATION}: add that delegation to the subnet (Subnet > Delegate subnet to a service).`,
      );
    }
    await this.checkPermissions(subnetId, [SUBNET_JOIN_ACTION], `subnet ${subnetId}`);
  }

  private async checkPermissions(
    scope: string,
    actions: readonly string[],
    scopeName: string,
  ): Promise<void> {
    const answer = await this.armGet<{ value?: ArmPermission[] }>(
      `${scope}/providers/Microsoft.Authorization/permissions`,
      AUTHORIZATION_API,
      {
        notFound: () =>
          new UserError(`Cannot read the permissions of the service connection on ${scopeName}.`),
      },
    );
    const missing = missingArmActions(answer.value ?? [], actions);
    if (missing.length) {
      throw new AccessError(
        `The service connection's identity lacks ${missing.join(", ")} on ${scopeName}: grant it a role with these actions there (Contributor, or for a subnet Network Contributor).`,
      );
    }
  }

  private resourceGroupPath(): string {
    return `/subscriptions/${this.settings.connection.subscriptionId}/resourceGroups/${this.settings.resourceGroup}`;
  }

  private async armGet<T extends object>(
    path: string,
    apiVersion: string,
    on: { notFound: () => Error },
  ): Promise<T> {
    const url = new URL(path.replace(/^\/+/, ""), this.settings.connection.armUrl.replace(/\/*$/, "/"));
    url.searchParams.set("api-version", apiVersion);
    const response = await this.client
      .sendRequest(createPipelineRequest({ url: url.toString(), method: "GET" }))
      .catch((error: unknown) => {
        throw this.explain(error, `read ${path}`);
      });
    if (response.status === 404) throw on.notFound();
    if (response.status >= 400)
      throw this.explain({ statusCode: response.status, message: response.bodyAsText }, `read ${path}`);
    return JSON.parse(response.bodyAsText ?? "{}") as T;
  }

  /** Turns an ARM failure into an error that says who lacks what, without echoing request bodies. */
  private explain(error: unknown, action: string): Error {
    if (error instanceof UserError) return error;
    const status = httpStatusOf(error);
    const detail = armErrorMessage(error);
    if (status === 401) {
      return new AccessError(
        `Azure refused the service connection's credentials when trying to ${action} (HTTP 401): check the connection (secret or certificate expired, federated credential missing). ${detail}`,
      );
    }
    if (status === 403) {
      return new AccessError(
        `The service connection's identity may not ${action} (HTTP 403): grant it Contributor on resource group '${this.settings.resourceGroup}'${this.settings.subnetId ? " and Network Contributor (subnets/join/action) on the subnet" : ""}. ${detail}`,
      );
    }
    return new Error(`Could not ${action}${status ? ` (HTTP ${status})` : ""}: ${detail}`);
  }
}

function armErrorMessage(error: unknown): string {
  const body = (error as { details?: { error?: { code?: string; message?: string } } }).details?.error;
  if (body?.code) return `${body.code}: ${body.message ?? ""}`.trim();
  return errorMessage(error);
}

const PROVISIONING = ["Pending", "Creating", "Accepted", "Repairing", "Updating"];

/** Maps an ACI container group onto our container states. */
export function statusOfGroup(
  group: Pick<ContainerGroup, "provisioningState" | "containers" | "instanceView">,
): ContainerStatus {
  const provisioning = group.provisioningState ?? "Pending";
  if (provisioning === "Failed" || provisioning === "Unhealthy") {
    const events = group.instanceView?.events ?? group.containers[0]?.instanceView?.events ?? [];
    const detail = events.map((event) => `${event.name ?? ""}: ${event.message ?? ""}`).join("; ");
    return { state: "failed", detail: detail || `provisioning state ${provisioning}` };
  }
  if (provisioning === "Deleting") return { state: "missing", detail: "being deleted" };
  if (PROVISIONING.includes(provisioning)) return { state: "provisioning", detail: provisioning };
  const current = group.containers[0]?.instanceView?.currentState;
  if (current?.state === "Terminated") {
    return { state: "exited", exitCode: current.exitCode, detail: current.detailStatus || undefined };
  }
  if (current?.state === "Waiting")
    return { state: "provisioning", detail: current.detailStatus || "Waiting" };
  return { state: "running" };
}

/** Container group records of the ARM stand-in and their wire shape (Microsoft.ContainerInstance 2023-05-01). */

export interface ContainerState {
  state: string;
  exitCode?: number;
  detailStatus?: string;
  startTime?: string;
  finishTime?: string;
}

export interface ContainerEvent {
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  name: string;
  message: string;
  type: string;
}

export interface ContainerRecord {
  name: string;
  /** Config map key/values (2024-05-01-preview and later): plain text, returned by GET, files in the container. */
  configMap?: Record<string, string>;
  currentState?: ContainerState;
  previousState?: ContainerState;
  restartCount: number;
  events: ContainerEvent[];
  logs: string;
}

export interface ContainerGroupRecord {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  tags?: Record<string, string>;
  /** The PUT body exactly as received (secure values included; never sent back). */
  request: ContainerGroupRequest;
  /** Environment of the first container, secure values included. */
  environment: Record<string, string>;
  provisioningState: string;
  provisioningError?: { code: string; message: string };
  containers: ContainerRecord[];
  /** Group-level instanceView events (e.g. a failed mount or deployment). */
  events: ContainerEvent[];
  createdAt: Date;
  /** A group made from a container group profile: by a standby pool (claimed or not yet), or cold at a claim. */
  standby?: StandbyOrigin;
}

export interface StandbyOrigin {
  profile: { id: string; revision: number };
  /** The pool it was made in, or whose claim created it cold. */
  poolId: string;
  /** true: taken ready from the pool; false: created cold because the pool had none ready. */
  fromPool: boolean;
  /** Still in the pool: no API lists or addresses it. */
  pooled: boolean;
}

interface EnvironmentVariable {
  name: string;
  value?: string;
  secureValue?: string;
}

export interface ContainerGroupRequest {
  location?: string;
  tags?: Record<string, string>;
  zones?: string[];
  identity?: unknown;
  properties?: {
    containers?: Array<{
      name?: string;
      properties?: {
        image?: string;
        environmentVariables?: EnvironmentVariable[];
        resources?: unknown;
      } & Record<string, unknown>;
    }>;
    subnetIds?: Array<{ id: string; name?: string }>;
    ipAddress?: Record<string, unknown>;
    imageRegistryCredentials?: Array<Record<string, unknown>>;
    volumes?: Array<Record<string, unknown>>;
    diagnostics?: { logAnalytics?: Record<string, unknown> };
  } & Record<string, unknown>;
}

export function containerGroupId(
  group: Pick<ContainerGroupRecord, "subscriptionId" | "resourceGroup" | "name">,
): string {
  return `/subscriptions/${group.subscriptionId}/resourceGroups/${group.resourceGroup}/providers/Microsoft.ContainerInstance/containerGroups/${group.name}`;
}

export function environmentOf(request: ContainerGroupRequest): Record<string, string> {
  const variables = request.properties?.containers?.[0]?.properties?.environmentVariables ?? [];
  return Object.fromEntries(
    variables.map((variable) => [variable.name, variable.secureValue ?? variable.value ?? ""]),
  );
}

/** Problems that make ARM reject the PUT body outright (400 InvalidRequestContent). */
export function requestProblems(request: ContainerGroupRequest): string[] {
  const problems: string[] = [];
  if (!request.location) problems.push("The 'location' property is required.");
  const containers = request.properties?.containers ?? [];
  if (containers.length === 0) problems.push("The container group must have at least one container.");
  for (const container of containers) {
    if (!container.name) problems.push("Each container needs a 'name'.");
    if (!container.properties?.image) problems.push(`Container '${container.name}' needs an 'image'.`);
    if (!container.properties?.resources) problems.push(`Container '${container.name}' needs 'resources'.`);
  }
  if (!request.properties?.osType) problems.push("The 'osType' property is required.");
  return problems;
}

/** Group-level instanceView.state as ACI derives it from its containers. */
export function groupState(group: ContainerGroupRecord): string {
  const states = group.containers.map((container) => container.currentState?.state);
  if (states.some((state) => state === undefined || state === "Waiting")) return "Pending";
  if (states.some((state) => state === "Running")) return "Running";
  const failed = group.containers.some((container) => (container.currentState?.exitCode ?? 0) !== 0);
  return failed ? "Failed" : "Succeeded";
}

function withoutSecrets(
  properties: NonNullable<ContainerGroupRequest["properties"]>,
): Record<string, unknown> {
  return {
    ...properties,
    imageRegistryCredentials: properties.imageRegistryCredentials?.map((credential) => ({
      ...credential,
      password: undefined,
    })),
    volumes: properties.volumes?.map((volume) => ({
      ...volume,
      azureFile: volume.azureFile && { ...volume.azureFile, storageAccountKey: undefined },
      secret: undefined,
    })),
    diagnostics: properties.diagnostics && {
      logAnalytics: properties.diagnostics.logAnalytics && {
        ...properties.diagnostics.logAnalytics,
        workspaceKey: undefined,
      },
    },
  };
}

/**
 * The ContainerGroup body; `withInstanceView` is false for list results, as in real ACI
 * (recordings/2023-05-01/recording_containergroups_list_test.json: no instanceView at group or container level).
 */
export function containerGroupJson(
  group: ContainerGroupRecord,
  withInstanceView: boolean,
): Record<string, unknown> {
  const requested = group.request.properties ?? {};
  const containers = (requested.containers ?? []).map((container, index) => {
    const record = group.containers[index];
    const environmentVariables = (container.properties?.environmentVariables ?? []).map((variable) =>
      variable.secureValue !== undefined
        ? { name: variable.name }
        : { name: variable.name, value: variable.value },
    );
    const instanceView =
      withInstanceView && record.currentState
        ? {
            restartCount: record.restartCount,
            currentState: record.currentState,
            previousState: record.previousState,
            events: record.events,
          }
        : undefined;
    // Config maps come back in plain text (Microsoft Learn, "Config maps in Azure Container Instances").
    const configMap = group.standby ? { keyValuePairs: record.configMap ?? {} } : undefined;
    return {
      name: container.name,
      properties: { ...container.properties, environmentVariables, configMap, instanceView },
    };
  });
  const ipAddress = requested.ipAddress && {
    ...requested.ipAddress,
    ip: group.provisioningState === "Succeeded" ? "10.0.0.4" : undefined,
  };
  return {
    id: containerGroupId(group),
    name: group.name,
    type: "Microsoft.ContainerInstance/containerGroups",
    location: group.location,
    tags: group.tags,
    zones: group.request.zones,
    identity: group.request.identity,
    properties: {
      // Defaults the service adds (recordings/2023-05-01/recording_containergroups_create_test.json, PUT answer).
      sku: "Standard",
      provisioningTimeoutInSeconds: 1800,
      isCustomProvisioningTimeout: false,
      ...withoutSecrets(requested),
      provisioningState: group.provisioningState,
      containers,
      initContainers: requested.initContainers ?? [],
      ipAddress,
      instanceView: withInstanceView ? { events: group.events, state: groupState(group) } : undefined,
      // As the recorded claim answers (reference/aci/standby/recording_container_reuse_from_standbypool.json).
      ...(group.standby
        ? { isCreatedFromStandbyPool: group.standby.fromPool, containerGroupProfile: group.standby.profile }
        : {}),
    },
  };
}

import { PULL_POLICIES, type PullPolicy } from "../core/dockerEngine";
import { RESERVED_ENVIRONMENT, type RegistrationMode } from "../core/contract";
import { InputError } from "../core/errors";
import {
  optional,
  parseBoolean,
  parseChoice,
  parseDecimal,
  parseEnvironment,
  parseInteger,
  parseRunKey,
  required,
  type RawInputs,
} from "./parse";
import { parseAgentNamePrefix } from "../core/naming";
import {
  parseDnsServers,
  parseImage,
  parseJobIdentity,
  parseRegistryIdentity,
  parseSubnetId,
  type ImageReference,
} from "./references";
import { OS_TYPES, PROVIDERS, parseResourceGroup, type OsType } from "./providers";
import { parseStandbyPoolInputs, type StandbyPoolInputs } from "./standbyPool";

/** Everything the start task's inputs say, checked; connections are resolved by the caller. */
export type StartInputs = StartCommonInputs &
  ({ provider: "aci"; aci: AciStartInputs } | { provider: "docker"; docker: DockerStartInputs });

interface StartCommonInputs {
  image: ImageReference;
  registryConnection?: string;
  agentPool: string;
  agentNamePrefix: string;
  count: number;
  runKey: string;
  token?: string;
  /** Windows containers always register with the token: the agent keeps its key in DPAPI there. */
  registration: RegistrationMode;
  environment: Record<string, string>;
  onlineTimeoutMinutes: number;
  maxLifetimeMinutes: number;
  keepOnFailure: boolean;
  /** Look up the containers' price (Azure Retail Prices API) for the summary. */
  estimateCost: boolean;
}

interface AciStartInputs {
  azureSubscription: string;
  /** Set for a warm start: agents are claimed from this standby pool instead of created. */
  standby?: StandbyPoolInputs;
  resourceGroup: string;
  location?: string;
  subnetId?: string;
  dnsServers: string[];
  registryIdentity?: string;
  /** User-assigned managed identity the container group carries for the job's own use. */
  jobIdentity?: string;
  cpu: number;
  memoryGB: number;
  osType: OsType;
}

interface DockerStartInputs {
  dockerEndpoint?: string;
  dockerNetwork?: string;
  pullPolicy: PullPolicy;
  /** Mount the engine's Unix socket into each agent's container, for jobs that run docker. */
  shareDockerEngine: boolean;
}

/** ACI limits for one container group in most regions. */
export const ACI_LIMITS = {
  cpu: { min: 0.1, max: 4, step: 0.1 },
  memoryGB: { min: 0.1, max: 16, step: 0.1 },
};
export const MAX_AGENTS = 50;
export const REGISTRATION_MODES: readonly RegistrationMode[] = ["agentCredential", "token"];

export function parseStartInputs(raw: RawInputs): StartInputs {
  const provider = parseChoice("provider", optional(raw, "provider") ?? "aci", PROVIDERS);
  const common: StartCommonInputs = {
    image: parseImage(
      required(raw, "image", "the agent image, such as myregistry.azurecr.io/ephemeral-agent:1"),
    ),
    registryConnection: optional(raw, "registryConnection"),
    agentPool: required(raw, "agentPool", "the name of a self-hosted agent pool"),
    agentNamePrefix: parseAgentNamePrefix(optional(raw, "agentNamePrefix") ?? "ephemeral"),
    count: parseInteger("count", optional(raw, "count") ?? "1", { min: 1, max: MAX_AGENTS }),
    runKey: parseRunKey(required(raw, "runKey", "a key for this run, such as $(Build.BuildId)")),
    token: optional(raw, "token"),
    registration: parseChoice(
      "registration",
      optional(raw, "registration") ?? "agentCredential",
      REGISTRATION_MODES,
    ),
    environment: parseEnvironment(raw.environment, RESERVED_ENVIRONMENT),
    onlineTimeoutMinutes: parseDecimal(
      "onlineTimeoutMinutes",
      optional(raw, "onlineTimeoutMinutes") ?? "10",
      {
        min: 0.05,
        max: 60,
      },
    ),
    maxLifetimeMinutes: parseInteger("maxLifetimeMinutes", optional(raw, "maxLifetimeMinutes") ?? "120", {
      min: 5,
      max: 7 * 24 * 60,
    }),
    keepOnFailure: parseBoolean("keepOnFailure", raw.keepOnFailure, false),
    estimateCost: parseBoolean("estimateCost", raw.estimateCost, true),
  };
  if (common.maxLifetimeMinutes <= common.onlineTimeoutMinutes) {
    throw new InputError(
      "maxLifetimeMinutes",
      `${common.maxLifetimeMinutes} leaves no time for a job after an online timeout of ${common.onlineTimeoutMinutes} minutes: make it longer than onlineTimeoutMinutes.`,
    );
  }
  if (provider === "docker") {
    parseStandbyPoolInputs(raw, { provider, registration: common.registration });
    return { ...common, provider, docker: parseDockerInputs(raw) };
  }
  if (parseBoolean("shareDockerEngine", raw.shareDockerEngine, false)) {
    throw new InputError(
      "shareDockerEngine",
      "Azure Container Instances has no Docker engine to share: build the image with ACR Tasks (az acr build) signed in with jobIdentity (README: Build images with ACR Tasks), or use provider docker, or clear shareDockerEngine.",
    );
  }
  const aci = parseAciInputs(raw);
  aci.standby = parseStandbyPoolInputs(raw, {
    provider,
    registration: common.registration,
    osType: aci.osType,
  });
  if (aci.registryIdentity) parseRegistryIdentity(aci.registryIdentity, common.image);
  const registration = aci.osType === "Windows" ? "token" : common.registration;
  return { ...common, registration, provider, aci };
}

function parseAciInputs(raw: RawInputs): AciStartInputs {
  const subnetId = optional(raw, "subnetId");
  // Windows container groups may join a virtual network: ACI's virtual network deployment is generally available
  // for Linux and Windows containers (learn.microsoft.com, container-instances-virtual-network-concepts).
  const osType = parseChoice("osType", optional(raw, "osType") ?? "Linux", OS_TYPES);
  const dnsServers = parseDnsServers(raw.dnsServers);
  if (dnsServers.length && !subnetId) {
    throw new InputError(
      "dnsServers",
      "DNS servers apply only to container groups in a subnet: set subnetId, or clear dnsServers.",
    );
  }
  const jobIdentity = optional(raw, "jobIdentity");
  return {
    azureSubscription: required(raw, "azureSubscription", "an Azure Resource Manager service connection"),
    resourceGroup: parseResourceGroup(
      required(raw, "resourceGroup", "the resource group the containers are created in"),
    ),
    location: optional(raw, "location"),
    subnetId: subnetId === undefined ? undefined : parseSubnetId(subnetId),
    dnsServers,
    registryIdentity: optional(raw, "registryIdentity"),
    jobIdentity: jobIdentity === undefined ? undefined : parseJobIdentity(jobIdentity, { osType, subnetId }),
    cpu: parseDecimal("cpu", optional(raw, "cpu") ?? "1", ACI_LIMITS.cpu),
    memoryGB: parseDecimal("memoryGB", optional(raw, "memoryGB") ?? "2", ACI_LIMITS.memoryGB),
    osType,
  };
}

function parseDockerInputs(raw: RawInputs): DockerStartInputs {
  return {
    dockerEndpoint: optional(raw, "dockerEndpoint"),
    dockerNetwork: optional(raw, "dockerNetwork"),
    pullPolicy: parseChoice("pullPolicy", optional(raw, "pullPolicy") ?? "ifNotPresent", PULL_POLICIES),
    shareDockerEngine: parseBoolean("shareDockerEngine", raw.shareDockerEngine, false),
  };
}

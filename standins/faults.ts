import { randomUUID } from "node:crypto";
import type { ContainerGroupBehaviour } from "./arm";
import { wait, type Interceptor, type Reply, type StandinRequest } from "./http-server";
import type { Standins } from "./index";

export interface Fault {
  /** Which requests the fault hits; default every request. */
  match?: (request: StandinRequest) => boolean;
  /** How many matching requests fail before the fault wears off; default 1. */
  times?: number;
  /** The answer instead of the real one; "reset" drops the connection. */
  reply: Reply | "reset";
}

/** An interceptor for `standin.intercept()` that answers the first `times` matching requests with `reply`. */
export function fault({ match = () => true, times = 1, reply }: Fault): Interceptor {
  let remaining = times;
  return (request) => {
    if (remaining <= 0 || !match(request)) return undefined;
    remaining -= 1;
    return reply;
  };
}

/** ARM's throttling answer: 429 with Retry-After. */
export function tooManyRequests(retryAfterSeconds = 1): Reply {
  return {
    status: 429,
    headers: { "retry-after": String(retryAfterSeconds) },
    body: {
      error: {
        code: "TooManyRequests",
        message: "The request is being throttled as the limit has been reached for operation type.",
      },
    },
  };
}

/** An interceptor that holds the first `times` matching requests for `delayMs`, then lets them pass. */
export function slowAnswer({
  match = () => true,
  times = 1,
  delayMs,
}: {
  match?: (request: StandinRequest) => boolean;
  times?: number;
  delayMs: number;
}): Interceptor {
  let remaining = times;
  return async (request) => {
    if (remaining <= 0 || !match(request)) return undefined;
    remaining -= 1;
    await wait(delayMs, request.signal);
    return undefined;
  };
}

export type Service = "arm" | "entra" | "devops";

/** What a failing request can meet: answered at once, dropped, or answered late. */
export type RequestFaultKind = "throttled" | "serverError" | "unavailable" | "reset" | "slow";
/** A container group whose long-running creation ends Failed (ARM only). */
export type FaultKind = RequestFaultKind | "provisioningFailed";

export const ALL_FAULT_KINDS: readonly FaultKind[] = [
  "throttled",
  "serverError",
  "unavailable",
  "reset",
  "slow",
  "provisioningFailed",
];

function vssBody(message: string, typeKey: string): Record<string, unknown> {
  return {
    $id: "1",
    innerException: null,
    message,
    typeName: `Microsoft.VisualStudio.Services.WebApi.${typeKey}, Microsoft.VisualStudio.Services.WebApi`,
    typeKey,
    errorCode: 0,
    eventId: 3000,
  };
}

function aadBody(error: string, code: number, message: string): Record<string, unknown> {
  return { error, error_description: `AADSTS${code}: ${message}`, error_codes: [code] };
}

/** The answer each service gives for a failure of that kind, in its own error format. */
export function faultReply(
  service: Service,
  kind: "throttled" | "serverError" | "unavailable",
  retryAfterSeconds = 1,
): Reply {
  const retryAfter = { "retry-after": String(retryAfterSeconds) };
  if (kind === "throttled") {
    if (service === "arm") return tooManyRequests(retryAfterSeconds);
    if (service === "devops") {
      return {
        status: 429,
        headers: { ...retryAfter, "x-ratelimit-resource": "ATCPU", "x-ratelimit-delay": "1" },
        body: vssBody("Request was blocked due to exceeding usage of resource 'ATCPU'.", "RequestBlocked"),
      };
    }
    return {
      status: 429,
      headers: retryAfter,
      body: aadBody(
        "temporarily_unavailable",
        50196,
        "The server terminated an operation because it encountered a client request loop.",
      ),
    };
  }
  const status = kind === "serverError" ? 500 : 503;
  const headers = kind === "unavailable" ? retryAfter : undefined;
  if (service === "arm") {
    const code = kind === "serverError" ? "InternalServerError" : "ServiceUnavailable";
    return {
      status,
      headers,
      body: { error: { code, message: `The stand-in injected a transient ${code}.` } },
    };
  }
  if (service === "devops") {
    return {
      status,
      headers,
      body: vssBody("The stand-in injected a transient failure.", "VssServiceException"),
    };
  }
  return {
    status,
    headers,
    body: aadBody("temporarily_unavailable", 90033, "A transient error has occurred. Please try again."),
  };
}

/** A small deterministic PRNG (mulberry32): the same seed gives the same sequence in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type FaultTally = Record<FaultKind, number>;

export function emptyTally(): FaultTally {
  return { throttled: 0, serverError: 0, unavailable: 0, reset: 0, slow: 0, provisioningFailed: 0 };
}

export interface RandomFaultOptions {
  seed: number;
  /** Share of requests (and of container creations) that meet a fault, 0..1. */
  rate: number;
  /** Kinds to draw from, evenly; default all. */
  kinds?: readonly FaultKind[];
  /** Whose error format the answers take; default "arm". */
  service?: Service;
  /** Retry-After of throttled and unavailable answers; default 1. */
  retryAfterSeconds?: number;
  /** Delay of a slow answer, drawn evenly from [min, max] ms; default [1000, 3000]. */
  slowMs?: readonly [number, number];
  /** Which requests may meet a fault; default all. */
  match?: (request: StandinRequest) => boolean;
}

/** An interceptor that also counts what it injected. */
export type CountingInterceptor = Interceptor & { readonly injected: FaultTally };

/**
 * Seeded random faults for one stand-in: each matching request meets a fault with probability `rate`, its kind
 * drawn evenly from the request kinds among `kinds` ("provisioningFailed" is a container group behaviour; see
 * randomProvisioningFailures). The same seed gives the same decisions for the same order of requests.
 */
export function randomFaults(options: RandomFaultOptions): CountingInterceptor {
  const random = mulberry32(options.seed);
  const kinds = (options.kinds ?? ALL_FAULT_KINDS).filter(
    (kind): kind is RequestFaultKind => kind !== "provisioningFailed",
  );
  const service = options.service ?? "arm";
  const [slowMin, slowMax] = options.slowMs ?? [1000, 3000];
  const injected = emptyTally();
  const interceptor = async (request: StandinRequest): Promise<Reply | "reset" | undefined> => {
    if (kinds.length === 0 || (options.match && !options.match(request))) return undefined;
    if (random() >= options.rate) return undefined;
    const kind = kinds[Math.floor(random() * kinds.length)];
    const delayMs = slowMin + random() * (slowMax - slowMin);
    injected[kind] += 1;
    if (kind === "reset") return "reset";
    if (kind === "slow") {
      await wait(delayMs, request.signal);
      return undefined;
    }
    return faultReply(service, kind, options.retryAfterSeconds);
  };
  return Object.assign(interceptor, { injected });
}

/**
 * A container group behaviour (put it first in `arm.behaviours`) under which each new group fails to provision
 * with probability `rate` divided by the number of kinds, when "provisioningFailed" is among them.
 */
export function randomProvisioningFailures(
  options: Pick<RandomFaultOptions, "seed" | "rate" | "kinds">,
  injected: FaultTally,
): ContainerGroupBehaviour {
  const random = mulberry32(options.seed);
  const kinds = options.kinds ?? ALL_FAULT_KINDS;
  const share = kinds.includes("provisioningFailed") ? options.rate / kinds.length : 0;
  return {
    match: () => {
      const fails = random() < share;
      if (fails) injected.provisioningFailed += 1;
      return fails;
    },
    provisioning: "fail",
    error: {
      code: "InjectedProvisioningFailure",
      message: "The stand-in failed this container group on purpose.",
    },
  };
}

export interface AttachedFaults {
  /** What was injected so far, per stand-in. */
  injected: Record<Service, FaultTally>;
  /** All stand-ins together. */
  total(): FaultTally;
  remove(): void;
}

const SERVICE_SEED_OFFSETS: Record<Service, number> = { entra: 0x1000, arm: 0x2000, devops: 0x3000 };

/** Attaches seeded random faults to Entra, ARM and DevOps (each with its own stream) and to ARM provisioning. */
export function attachRandomFaults(
  standins: Pick<Standins, "arm" | "entra" | "devops">,
  options: Omit<RandomFaultOptions, "service">,
): AttachedFaults {
  const injected = {} as Record<Service, FaultTally>;
  const removals: (() => void)[] = [];
  for (const service of ["entra", "arm", "devops"] as const) {
    const interceptor = randomFaults({
      ...options,
      service,
      seed: options.seed + SERVICE_SEED_OFFSETS[service],
    });
    injected[service] = interceptor.injected;
    removals.push(standins[service].intercept(interceptor));
  }
  const behaviour = randomProvisioningFailures({ ...options, seed: options.seed + 0x4000 }, injected.arm);
  standins.arm.behaviours.unshift(behaviour);
  removals.push(() => {
    const index = standins.arm.behaviours.indexOf(behaviour);
    if (index >= 0) standins.arm.behaviours.splice(index, 1);
  });
  return {
    injected,
    total() {
      const sum = emptyTally();
      for (const tally of Object.values(injected))
        for (const kind of ALL_FAULT_KINDS) sum[kind] += tally[kind];
      return sum;
    },
    remove: () => removals.forEach((remove) => remove()),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Azure Container Instances faults: interceptors for `arm.intercept()` that answer as ARM does in situations the
// recordings do not cover. Each message's source is named beside it; README lists what is not verified.

/** The ARM requests a fault can target. */
export type ArmTarget =
  | "createContainerGroup"
  | "deleteContainerGroup"
  | "readContainerGroup"
  | "listContainerGroups"
  | "readResourceGroup"
  | "readVirtualNetwork"
  | "readSubnet"
  | "readPermissions"
  | "readUsages";

const ARM_TARGETS: Record<ArmTarget, { method: string; path: RegExp; action: string }> = {
  createContainerGroup: {
    method: "PUT",
    path: /\/providers\/Microsoft\.ContainerInstance\/containerGroups\/[^/]+$/i,
    action: "Microsoft.ContainerInstance/containerGroups/write",
  },
  deleteContainerGroup: {
    method: "DELETE",
    path: /\/providers\/Microsoft\.ContainerInstance\/containerGroups\/[^/]+$/i,
    action: "Microsoft.ContainerInstance/containerGroups/delete",
  },
  readContainerGroup: {
    method: "GET",
    path: /\/providers\/Microsoft\.ContainerInstance\/containerGroups\/[^/]+$/i,
    action: "Microsoft.ContainerInstance/containerGroups/read",
  },
  listContainerGroups: {
    method: "GET",
    path: /\/providers\/Microsoft\.ContainerInstance\/containerGroups$/i,
    action: "Microsoft.ContainerInstance/containerGroups/read",
  },
  readResourceGroup: {
    method: "GET",
    path: /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+$/i,
    action: "Microsoft.Resources/subscriptions/resourceGroups/read",
  },
  readVirtualNetwork: {
    method: "GET",
    path: /\/providers\/Microsoft\.Network\/virtualNetworks\/[^/]+$/i,
    action: "Microsoft.Network/virtualNetworks/read",
  },
  readSubnet: {
    method: "GET",
    path: /\/providers\/Microsoft\.Network\/virtualNetworks\/[^/]+\/subnets\/[^/]+$/i,
    action: "Microsoft.Network/virtualNetworks/subnets/read",
  },
  readPermissions: {
    method: "GET",
    path: /\/providers\/Microsoft\.Authorization\/permissions$/i,
    action: "Microsoft.Authorization/permissions/read",
  },
  readUsages: {
    method: "GET",
    path: /\/providers\/Microsoft\.ContainerInstance\/locations\/[^/]+\/usages$/i,
    action: "Microsoft.ContainerInstance/locations/usages/read",
  },
};

const SUBNET_JOIN_ACTION = "Microsoft.Network/virtualNetworks/subnets/join/action";
const IDENTITY_ASSIGN_ACTION = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";
/** The client id of the stand-ins' default app registration (STANDIN_DEFAULTS.clientId). */
const DEFAULT_PRINCIPAL_ID = "22222222-2222-4222-8222-222222222222";

/** An interceptor that counts the requests it answered. */
export type ArmFault = Interceptor & { readonly answered: number };

export function isArmTarget(request: StandinRequest, target: ArmTarget): boolean {
  const { method, path } = ARM_TARGETS[target];
  return request.method === method && path.test(request.path.replace(/\/$/, ""));
}

function armFault(times: number, reply: (request: StandinRequest) => Reply | undefined): ArmFault {
  let answered = 0;
  const interceptor = (request: StandinRequest): Reply | undefined => {
    if (answered >= times) return undefined;
    const answer = reply(request);
    if (answer) answered += 1;
    return answer;
  };
  return Object.defineProperty(interceptor, "answered", { get: () => answered }) as ArmFault;
}

function armErrorReply(
  status: number,
  code: string,
  message: string,
  extra?: Record<string, unknown>,
): Reply {
  return { status, body: { error: { code, message, ...extra } } };
}

interface PutBody {
  location?: string;
  identity?: { userAssignedIdentities?: Record<string, unknown> };
  properties?: {
    subnetIds?: { id: string }[];
    containers?: { properties?: { image?: string } }[];
  };
}

function putBody(request: StandinRequest): PutBody {
  return typeof request.body === "object" && request.body !== null ? request.body : {};
}

function resourceName(request: StandinRequest): string {
  return request.path.replace(/\/$/, "").split("/").pop() ?? "";
}

function subscriptionOf(request: StandinRequest): string {
  return /^\/subscriptions\/([^/]+)/i.exec(request.path)?.[1] ?? "";
}

export interface SubnetConflictOptions {
  /** How many matching requests are refused before the condition clears; default 1. */
  times?: number;
  /** Only PUTs into this subnet (resource id, case-insensitive); default any PUT that joins a subnet. */
  subnetId?: string;
  /** Which container group requests meet it: PUTs into a subnet (default), DELETEs, or both. */
  on?: "create" | "delete" | "both";
  /** Only container groups with this name, or whose name matches; default all. */
  group?: string | RegExp;
}

function subnetConflict(options: SubnetConflictOptions, reply: (request: StandinRequest) => Reply): ArmFault {
  const on = options.on ?? "create";
  const groupMatches = (request: StandinRequest): boolean => {
    const name = resourceName(request);
    if (options.group === undefined) return true;
    return typeof options.group === "string"
      ? options.group.toLowerCase() === name.toLowerCase()
      : options.group.test(name);
  };
  return armFault(options.times ?? 1, (request) => {
    if (!groupMatches(request)) return undefined;
    if (on !== "delete" && isArmTarget(request, "createContainerGroup")) {
      const subnets = (putBody(request).properties?.subnetIds ?? []).map(({ id }) => id.toLowerCase());
      const joins = options.subnetId ? subnets.includes(options.subnetId.toLowerCase()) : subnets.length > 0;
      return joins ? reply(request) : undefined;
    }
    // A DELETE carries no body: `subnetId` cannot narrow it, `group` can.
    if (on !== "create" && isArmTarget(request, "deleteContainerGroup")) return reply(request);
    return undefined;
  });
}

/**
 * 409 ServiceAssociationLinkNotReady, for the first `times` container group PUTs into a subnet (a subnet
 * delegated moments ago). Status, code and message as reported in Azure-Samples/jmeter-aci-terraform#81
 * ("StatusCode=409 … Code="ServiceAssociationLinkNotReady" Message="Network is not ready for container group
 * '…'. Please try again."); also seen in hashicorp/terraform-provider-azurerm#15025 for parallel creates.
 */
export function serviceAssociationLinkNotReady(options: SubnetConflictOptions = {}): ArmFault {
  return subnetConflict(options, (request) =>
    armErrorReply(
      409,
      "ServiceAssociationLinkNotReady",
      `Network is not ready for container group '${resourceName(request)}'. Please try again.`,
    ),
  );
}

/**
 * 409 AnotherOperationInProgress, for the first `times` container group PUTs into a subnet (or DELETEs): the
 * network is busy with another operation. Message as Microsoft.Network words it (pulumi/pulumi-azure-native#1024,
 * Azure-Samples/azuresandbox#51); that ACI passes it on with status 409 is not verified.
 */
export function anotherOperationInProgress(options: SubnetConflictOptions = {}): ArmFault {
  return subnetConflict(options, (request) => {
    const location = putBody(request).location ?? "westeurope";
    return armErrorReply(
      409,
      "AnotherOperationInProgress",
      `Another operation on this or dependent resource is in progress. To retrieve status of the operation use uri: https://management.azure.com/subscriptions/${subscriptionOf(request)}/providers/Microsoft.Network/locations/${location}/operations/${randomUUID()}?api-version=2023-09-01.`,
    );
  });
}

/**
 * 400 InaccessibleImage at PUT: ACI could not reach the image with the given credentials. Message as users report
 * it (Azure/azure-cli#18596, CompositionalIT/farmer#210 with the `{error: {code, message}}` body); 'BadRequest'
 * is the status azure/docker-login#65 shows with it.
 */
export function inaccessibleImage(options: { image?: string | RegExp; times?: number } = {}): ArmFault {
  return armFault(options.times ?? Infinity, (request) => {
    if (!isArmTarget(request, "createContainerGroup")) return undefined;
    const image = putBody(request).properties?.containers?.[0]?.properties?.image ?? "";
    const wanted = options.image;
    if (wanted !== undefined && (typeof wanted === "string" ? wanted !== image : !wanted.test(image)))
      return undefined;
    return armErrorReply(
      400,
      "InaccessibleImage",
      `The image '${image}' in container group '${resourceName(request)}' is not accessible. Please check the image and registry credential.`,
    );
  });
}

export interface AuthorizationFaultOptions {
  /** Which requests are refused; default the container group PUT. */
  target?: ArmTarget;
  /** The action named in the message; default the target's (e.g. Microsoft.ContainerInstance/containerGroups/write). */
  action?: string;
  /** Object id of the caller named in the message; default the stand-ins' app registration. */
  principalId?: string;
  /** Default: every matching request. */
  times?: number;
}

/**
 * 403 AuthorizationFailed: the caller lacks the action on the request's scope. Wording as ARM answers it
 * ("The client '…' with object id '…' does not have authorization to perform action '…' over scope '…'",
 * Azure/azure-cli#6343); the closing sentences are ARM's current wording, not checked against a recording.
 */
export function authorizationFailed(options: AuthorizationFaultOptions = {}): ArmFault {
  const target = options.target ?? "createContainerGroup";
  const action = options.action ?? ARM_TARGETS[target].action;
  const principal = options.principalId ?? DEFAULT_PRINCIPAL_ID;
  return armFault(options.times ?? Infinity, (request) => {
    if (!isArmTarget(request, target)) return undefined;
    const scope = request.path.replace(/\/providers\/Microsoft\.Authorization\/permissions\/?$/i, "");
    return armErrorReply(
      403,
      "AuthorizationFailed",
      `The client '${principal}' with object id '${principal}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
    );
  });
}

/**
 * 403 LinkedAuthorizationFailed at the container group PUT: the caller may write the group but not join its
 * subnet (`subnetJoin`) or assign its user-assigned identity (`identityAssign`). Only PUTs that carry such a
 * linked resource are refused. Wording as ARM answers it (hashicorp/terraform-provider-azurerm#12134,
 * openshift/release#76853: "has permission to perform action '…' on scope '…'; however, it does not have
 * permission to perform action(s) '…' on the linked scope(s) '…' or the linked scope(s) are invalid.").
 */
export function linkedAuthorizationFailed(options: {
  linked: "subnetJoin" | "identityAssign";
  principalId?: string;
  times?: number;
}): ArmFault {
  const principal = options.principalId ?? DEFAULT_PRINCIPAL_ID;
  return armFault(options.times ?? Infinity, (request) => {
    if (!isArmTarget(request, "createContainerGroup")) return undefined;
    const body = putBody(request);
    const linkedScopes =
      options.linked === "subnetJoin"
        ? (body.properties?.subnetIds ?? []).map(({ id }) => id)
        : Object.keys(body.identity?.userAssignedIdentities ?? {});
    if (linkedScopes.length === 0) return undefined;
    const linkedAction = options.linked === "subnetJoin" ? SUBNET_JOIN_ACTION : IDENTITY_ASSIGN_ACTION;
    return armErrorReply(
      403,
      "LinkedAuthorizationFailed",
      `The client '${principal}' with object id '${principal}' has permission to perform action '${ARM_TARGETS.createContainerGroup.action}' on scope '${request.path}'; however, it does not have permission to perform action(s) '${linkedAction}' on the linked scope(s) '${linkedScopes.join(",")}' or the linked scope(s) are invalid.`,
    );
  });
}

export interface PolicyDenyOptions {
  /** Name of the policy assignment that denies. */
  policyAssignmentName: string;
  /** Name (id segment) of its policy definition; default "<assignment>-definition". */
  policyDefinitionName?: string;
  /** Display name of the definition, as additionalInfo carries it; default the assignment name. */
  policyDefinitionDisplayName?: string;
  /** Which requests are denied; default the container group PUT. */
  target?: ArmTarget;
  times?: number;
}

/**
 * 403 RequestDisallowedByPolicy: an Azure Policy deny. The message names the assignment and definition as ARM
 * words it ("Resource '…' was disallowed by policy. Policy identifiers: '[{"policyAssignment":{"name":…,"id":…},
 * "policyDefinition":{"name":…,"id":…}}]'.", microsoft/vscode-apimanagement#348). The `additionalInfo`
 * PolicyViolation entry follows ARM's error format; its exact fields are not verified.
 */
export function requestDisallowedByPolicy(options: PolicyDenyOptions): ArmFault {
  const target = options.target ?? "createContainerGroup";
  const definitionName = options.policyDefinitionName ?? `${options.policyAssignmentName}-definition`;
  return armFault(options.times ?? Infinity, (request) => {
    if (!isArmTarget(request, target)) return undefined;
    const subscription = subscriptionOf(request);
    const assignmentId = `/subscriptions/${subscription}/providers/Microsoft.Authorization/policyAssignments/${options.policyAssignmentName}`;
    const definitionId = `/subscriptions/${subscription}/providers/Microsoft.Authorization/policyDefinitions/${definitionName}`;
    const identifiers = JSON.stringify([
      {
        policyAssignment: { name: options.policyAssignmentName, id: assignmentId },
        policyDefinition: { name: definitionName, id: definitionId },
      },
    ]);
    return armErrorReply(
      403,
      "RequestDisallowedByPolicy",
      `Resource '${resourceName(request)}' was disallowed by policy. Policy identifiers: '${identifiers}'.`,
      {
        target: resourceName(request),
        additionalInfo: [
          {
            type: "PolicyViolation",
            info: {
              policyDefinitionDisplayName:
                options.policyDefinitionDisplayName ?? options.policyAssignmentName,
              policyDefinitionId: definitionId,
              policyDefinitionName: definitionName,
              policyAssignmentId: assignmentId,
              policyAssignmentName: options.policyAssignmentName,
              policyDefinitionEffect: "deny",
            },
          },
        ],
      },
    );
  });
}

import type { PipelinePolicy } from "@azure/core-rest-pipeline";
import { AccessError, UserError, errorMessage, httpStatusOf } from "../../core/errors";

/** The `error` object of a Resource Manager error answer. */
export interface ArmErrorBody {
  code?: string;
  message?: string;
}

/** What an explanation may name besides the failed action. */
export interface ArmErrorContext {
  /** What was being done, as "create container group x". */
  action: string;
  resourceGroup: string;
  image?: string;
}

/**
 * The narrowest built-in role for an action, by its provider. Role names as Microsoft's built-in roles list them
 * ("Azure Container Instances Contributor Role", 5d977122-f97e-4b4d-a52f-6b43003ddb4d; "Managed Identity
 * Operator" holds userAssignedIdentities/*\/assign/action; "Network Contributor" holds subnets/join/action).
 */
export function narrowestRole(action: string): string {
  // A claim from a standby pool only reads the container group profile: Reader on the profile is enough.
  if (/^Microsoft\.ContainerInstance\/containerGroupProfiles\/read$/i.test(action)) return "Reader";
  if (/^Microsoft\.ContainerInstance\//i.test(action)) return "Azure Container Instances Contributor Role";
  if (/^Microsoft\.Network\/virtualNetworks\/subnets\/join\/action$/i.test(action))
    return "Network Contributor";
  if (/^Microsoft\.ManagedIdentity\/userAssignedIdentities\/.*assign\/action$/i.test(action))
    return "Managed Identity Operator";
  if (/\/read$/i.test(action)) return "Reader";
  return "Contributor";
}

/** The error body of an ARM failure: the SDK's RestError keeps it under `details.error`. */
export function armErrorBody(error: unknown): ArmErrorBody | undefined {
  const details = (error as { details?: { error?: ArmErrorBody } } | undefined)?.details;
  return details?.error?.code ? details.error : undefined;
}

export function armErrorCode(error: unknown): string | undefined {
  return armErrorBody(error)?.code;
}

function armErrorDetail(error: unknown): string {
  const body = armErrorBody(error);
  if (body?.code) return `${body.code}: ${body.message ?? ""}`.trim();
  return errorMessage(error);
}

/**
 * Policy assignments (and their definitions) named in a RequestDisallowedByPolicy message: ARM writes
 * "Policy identifiers: '[{"policyAssignment":{"name":…},"policyDefinition":{"name":…}}]'." (the SDK drops the
 * additionalInfo entries, so the message is what is left to read).
 */
export function deniedByPolicies(message: string): string[] {
  const json = /Policy identifiers: '(\[.*\])'/s.exec(message)?.[1];
  if (!json) return [];
  try {
    const identifiers = JSON.parse(json) as {
      policyAssignment?: { name?: string };
      policyDefinition?: { name?: string };
    }[];
    return identifiers.map((identifier) => {
      const assignment = identifier.policyAssignment?.name ?? "unnamed assignment";
      const definition = identifier.policyDefinition?.name;
      return definition ? `'${assignment}' (definition '${definition}')` : `'${assignment}'`;
    });
  } catch {
    return [];
  }
}

/** The action and linked scope of a LinkedAuthorizationFailed message. */
export function linkedPermission(message: string): { action: string; scope: string } | undefined {
  const match = /perform action\(s\) '([^']+)' on the linked scope\(s\) '([^']+)'/.exec(message);
  return match ? { action: match[1], scope: match[2] } : undefined;
}

/** The action and scope of an AuthorizationFailed message. */
export function missingPermission(message: string): { action: string; scope: string } | undefined {
  const match = /perform action '([^']+)' over scope '([^']+)'/.exec(message);
  return match ? { action: match[1], scope: match[2] } : undefined;
}

/** Codes ACI answers with 409 while a subnet is being prepared or is busy: worth waiting for. */
export const SUBNET_BUSY_CODES = ["ServiceAssociationLinkNotReady", "AnotherOperationInProgress"];

export function isSubnetBusy(error: unknown): boolean {
  return httpStatusOf(error) === 409 && SUBNET_BUSY_CODES.includes(armErrorCode(error) ?? "");
}

const QUOTA_HEADERS = [
  "x-ms-ratelimit-remaining-subscription-resource-requests-pt5m",
  "x-ms-ratelimit-remaining-subscription-resource-requests-pt1h",
];

/** A 429 from ACI's own create/delete quota, stopped before the SDK waits out its Retry-After (often minutes). */
export class AciQuotaRefusal extends Error {
  readonly statusCode = 429;
  constructor(
    readonly details: { error?: ArmErrorBody },
    readonly retryAfterMs: number | undefined,
  ) {
    super(
      details.error?.message ?? "Azure Container Instances refused the request: quota used up (HTTP 429).",
    );
    this.name = "AciQuotaRefusal";
  }
}

/**
 * ACI's own create/delete quota per subscription answers 429 with what is left in
 * x-ms-ratelimit-remaining-subscription-resource-requests-pt5m/-pt1h (recorded on every PUT and DELETE);
 * Resource Manager's request throttling does not carry them. Placed per retry, this policy turns such an answer
 * into an AciQuotaRefusal, which the SDK's retry policy passes on at once (it only retries its own errors), so
 * that the provider decides whether the wait is worth it.
 */
export const aciQuotaPolicy: PipelinePolicy = {
  name: "aciQuotaRefusal",
  async sendRequest(request, next) {
    const response = await next(request);
    if (
      response.status !== 429 ||
      !QUOTA_HEADERS.some((header) => response.headers.get(header) !== undefined)
    )
      return response;
    let body: { error?: ArmErrorBody } = {};
    try {
      body = JSON.parse(response.bodyAsText ?? "{}") as { error?: ArmErrorBody };
    } catch {
      // An answer without a JSON body is still the quota's refusal.
    }
    const seconds = Number(response.headers.get("retry-after"));
    throw new AciQuotaRefusal(body, Number.isFinite(seconds) ? seconds * 1000 : undefined);
  },
};

/** Turns an ARM failure into an error that says what is wrong and what to do, without echoing request bodies. */
export function explainArmError(error: unknown, context: ArmErrorContext): Error {
  if (error instanceof UserError) return error;
  const status = httpStatusOf(error);
  const code = armErrorCode(error);
  const message = armErrorBody(error)?.message ?? "";
  const detail = armErrorDetail(error);
  const { action, resourceGroup } = context;
  if (status === 401) {
    return new AccessError(
      `Azure refused the service connection's credentials when trying to ${action} (HTTP 401): check the connection (secret or certificate expired, federated credential missing). ${detail}`,
    );
  }
  if (code === "RequestDisallowedByPolicy") {
    const policies = deniedByPolicies(message);
    return new AccessError(
      `An Azure Policy denies the request to ${action}${policies.length ? `: policy assignment ${policies.join(", ")}` : ""}. No role assignment lifts a policy deny: change the settings the policy objects to, or ask the policy's owner for an exemption for resource group '${resourceGroup}'. ${detail}`,
    );
  }
  if (code === "LinkedAuthorizationFailed") {
    const linked = linkedPermission(message);
    if (linked) {
      return new AccessError(
        `The service connection's identity may ${action} but lacks ${linked.action} on the linked resource ${linked.scope}: grant it '${narrowestRole(linked.action)}' (or a custom role with that action) on that resource. ${detail}`,
      );
    }
  }
  if (status === 403) {
    const missing = missingPermission(message);
    if (missing) {
      return new AccessError(
        `The service connection's identity lacks ${missing.action} on ${missing.scope}: grant it '${narrowestRole(missing.action)}' there (Contributor includes it too). ${detail}`,
      );
    }
    return new AccessError(
      `The service connection's identity may not ${action} (HTTP 403): grant it 'Azure Container Instances Contributor Role' (or Contributor) on resource group '${resourceGroup}'. ${detail}`,
    );
  }
  if (code === "InaccessibleImage") {
    return new UserError(
      `Azure Container Instances cannot reach the image${context.image ? ` ${context.image}` : ""}: check that the image name and tag exist in the registry; that the registry credentials (registryConnection) are right or, with registryIdentity, that the identity has AcrPull on the registry; and, if the registry restricts network access, that it allows trusted Azure services or is reachable from the subnet. ${detail}`,
    );
  }
  if (code === "SubnetAndContainerGroupMustBeInSameSubscription") {
    return new UserError(
      `The subnet must be in the service connection's subscription: use a subnet of that subscription, or a connection to the subnet's. ${detail}`,
    );
  }
  if (error instanceof AciQuotaRefusal) {
    return new UserError(
      `Azure Container Instances' quota of container group creates and deletes per subscription (about 100 per 5 minutes and 300 per hour) is used up, so Azure refused to ${action}: wait a few minutes, lower count, or spread the runs; a quota increase can be requested through Azure support. ${detail}`,
    );
  }
  if (code === "ContainerGroupQuotaReached") {
    return new UserError(
      `The region's Azure Container Instances quota is used up, so Azure refused to ${action}: remove unused container groups, lower count or cpu, or request a quota increase. ${detail}`,
    );
  }
  return new Error(`Could not ${action}${status ? ` (HTTP ${status})` : ""}: ${detail}`);
}

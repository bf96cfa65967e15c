import type { Agent, JobRequest, Pool } from "./devops-state";

/** Wire shapes of the Azure DevOps stand-in (taskAgent 7.1); enums are strings, as the service sends them. */

export interface AgentDetail {
  includeCapabilities?: boolean;
  includeAssignedRequest?: boolean;
  includeLastCompletedRequest?: boolean;
}

export function poolJson(
  pool: Pool,
  size: number,
  owner: { id: string; displayName: string },
): Record<string, unknown> {
  const identity = { displayName: owner.displayName, id: owner.id, uniqueName: owner.displayName };
  return {
    createdOn: pool.createdOn.toISOString(),
    autoProvision: false,
    autoUpdate: true,
    autoSize: true,
    createdBy: identity,
    owner: identity,
    id: pool.id,
    scope: pool.scope,
    name: pool.name,
    isHosted: false,
    poolType: "automation",
    size,
    isLegacy: false,
    options: "none",
  };
}

export function jobRequestJson(request: JobRequest): Record<string, unknown> {
  return {
    requestId: request.requestId,
    queueTime: request.queueTime.toISOString(),
    assignTime: request.assignTime?.toISOString(),
    receiveTime: request.receiveTime?.toISOString(),
    finishTime: request.finishTime?.toISOString(),
    lockedUntil: request.finishTime ? undefined : request.lockedUntil?.toISOString(),
    result: request.result,
    serviceOwner: "00025394-6065-48ca-87d9-7f5672854ef7",
    hostId: request.hostId,
    scopeId: request.scopeId,
    planType: request.planType,
    planId: request.planId,
    jobId: request.jobId,
    jobName: request.jobName,
    demands: request.demands,
    reservedAgent: request.reservedAgent,
    poolId: request.poolId,
    definition: { id: request.definition.id, name: request.definition.name },
    owner: { id: request.owner.id, name: request.owner.name },
    data: { ParallelismTag: "Private", IsScheduledKey: "False" },
    matchesAllAgentsInPool: false,
    priority: 0,
  };
}

export function agentJson(agent: Agent, detail: AgentDetail = {}): Record<string, unknown> {
  return {
    createdOn: agent.createdOn.toISOString(),
    statusChangedOn: agent.statusChangedOn.toISOString(),
    maxParallelism: 1,
    authorization: { clientId: agent.authorizationClientId },
    systemCapabilities: detail.includeCapabilities ? agent.systemCapabilities : undefined,
    userCapabilities: detail.includeCapabilities ? agent.userCapabilities : undefined,
    assignedRequest:
      detail.includeAssignedRequest && agent.assignedRequest
        ? jobRequestJson(agent.assignedRequest)
        : undefined,
    lastCompletedRequest:
      detail.includeLastCompletedRequest && agent.lastCompletedRequest
        ? jobRequestJson(agent.lastCompletedRequest)
        : undefined,
    id: agent.id,
    name: agent.name,
    version: agent.version,
    osDescription: agent.osDescription,
    enabled: agent.enabled,
    status: agent.status,
    provisioningState: "Provisioned",
    accessPoint: "CodexAccessMapping",
  };
}

/** The error body Azure DevOps sends with 4xx answers. */
export function vssError(message: string, typeKey: string): Record<string, unknown> {
  return {
    $id: "1",
    innerException: null,
    message,
    typeName: `Microsoft.TeamFoundation.DistributedTask.WebApi.${typeKey}, Microsoft.TeamFoundation.DistributedTask.WebApi`,
    typeKey,
    errorCode: 0,
    eventId: 3000,
  };
}

import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";

export type TaskResult =
  "succeeded" | "succeededWithIssues" | "failed" | "canceled" | "skipped" | "abandoned";

export interface Pool {
  id: number;
  name: string;
  scope: string;
  createdOn: Date;
}

export interface JobRequest {
  requestId: number;
  poolId: number;
  jobId: string;
  jobName: string;
  planId: string;
  planType: string;
  hostId: string;
  scopeId: string;
  // TaskAgentJobRequest in taskAgent-7.1.json: when the request was queued, assigned, "receieved by an agent"
  // (its first delivery to the agent's message poll) and finished.
  queueTime: Date;
  assignTime?: Date;
  receiveTime?: Date;
  finishTime?: Date;
  lockedUntil?: Date;
  result?: TaskResult;
  /** Demands as the service lists them, e.g. "EPHEMERAL_AGENT_RUN -equals 42" or "docker". */
  demands: string[];
  definition: { id: number; name: string };
  owner: { id: number; name: string };
  reservedAgent?: { id: number; name: string };
  /** What the job message carries to the agent: the pipeline's variables and the job's script steps. */
  variables: Record<string, JobVariable>;
  steps: ScriptStep[];
}

/** A pipeline variable as the job message carries it (VariableValue: value, isSecret). */
export interface JobVariable {
  value: string;
  isSecret?: boolean;
}

/**
 * A `script` step: the CmdLine@2 task, its `script` input, and the step's `env` mapping. A secret variable reaches
 * a script's environment only through that mapping (Microsoft's docs, "Set secret variables": secret variables are
 * not decrypted into environment variables for scripts unless the step maps them).
 */
export interface ScriptStep {
  displayName?: string;
  script: string;
  env?: Record<string, string>;
}

export interface AgentMessage {
  messageId: number;
  messageType: string;
  body: string;
}

export interface Agent {
  id: number;
  poolId: number;
  name: string;
  version: string;
  osDescription: string;
  enabled: boolean;
  status: "online" | "offline";
  createdOn: Date;
  /** "Date on which the last connectivity status change occurred" (TaskAgent in taskAgent-7.1.json). */
  statusChangedOn: Date;
  systemCapabilities: Record<string, string>;
  userCapabilities: Record<string, string>;
  authorizationClientId: string;
  assignedRequest?: JobRequest;
  lastCompletedRequest?: JobRequest;
  sessionId?: string;
  /** Messages waiting for the agent's long poll; removed when the agent acknowledges them. */
  pendingMessages: AgentMessage[];
}

export interface AgentRegistration {
  name: string;
  version?: string;
  osDescription?: string;
  enabled?: boolean;
  systemCapabilities?: Record<string, string>;
  userCapabilities?: Record<string, string>;
}

export interface JobToQueue {
  poolName: string;
  /** Capability name -> required value ("-equals"), or true for "capability exists". */
  demands?: Record<string, string | true>;
  jobName?: string;
  definition?: { id: number; name: string };
  variables?: Record<string, JobVariable>;
  /** Without steps the fake agent's job only sleeps FAKE_AGENT_JOB_SECONDS. */
  steps?: ScriptStep[];
}

export interface DevOpsEvents {
  agentRegistered: [agent: Agent];
  agentDeleted: [agent: Agent];
  agentStatusChanged: [agent: Agent];
  jobAssigned: [request: JobRequest, agent: Agent];
  jobFinished: [request: JobRequest, agent: Agent | undefined];
}

const EQUALS_DEMAND = /^(\S+)\s+-equals\s+(.*)$/i;

/** True when the agent's capabilities satisfy every demand ("NAME" or "NAME -equals VALUE", names and values case-insensitive). */
export function satisfiesDemands(agent: Agent, demands: string[]): boolean {
  const capabilities = new Map<string, string>();
  for (const [name, value] of Object.entries({ ...agent.systemCapabilities, ...agent.userCapabilities })) {
    capabilities.set(name.toLowerCase(), value);
  }
  return demands.every((demand) => {
    const equals = EQUALS_DEMAND.exec(demand.trim());
    if (!equals) return capabilities.has(demand.trim().toLowerCase());
    const actual = capabilities.get(equals[1].toLowerCase());
    return actual !== undefined && actual.toLowerCase() === equals[2].trim().toLowerCase();
  });
}

/** Pools, agents, sessions and job requests of the Azure DevOps stand-in, independent of HTTP. */
/**
 * The service checks a job's demands against the agents registered in the pool when the job is queued, and fails
 * the job at once when none satisfies them, online or not: "##[error]No agent found in pool BUZ-MYB which
 * satisfies the following demand: agent.name. All demands: agent.name -equals 'ecom-app02-test', Agent.Version
 * -gtVersion 2.163.1" (microsoft/azure-pipelines-agent#2996). This is why the start task may not finish before its
 * agents are registered.
 */
export class JobRejectedError extends Error {
  constructor(
    readonly poolName: string,
    readonly demands: string[],
    unmet: string | undefined,
  ) {
    super(
      unmet
        ? `No agent found in pool ${poolName} which satisfies the following demand: ${unmet.split(" ")[0]}. All demands: ${demands.join(", ")}`
        : `No agent found in pool ${poolName}.`,
    );
  }
}

export class AgentPoolState {
  readonly pools: Pool[] = [];
  readonly agents: Agent[] = [];
  readonly jobRequests: JobRequest[] = [];
  readonly events = new EventEmitter<DevOpsEvents>();
  private nextAgentId = 1;
  private nextRequestId = 1000;
  private nextMessageId = 1;

  addPool(name: string, id?: number): Pool {
    const pool: Pool = {
      id: id ?? Math.max(0, ...this.pools.map((existing) => existing.id)) + 1,
      name,
      scope: randomUUID(),
      createdOn: new Date(),
    };
    this.pools.push(pool);
    return pool;
  }

  findPool(idOrName: number | string): Pool | undefined {
    return typeof idOrName === "number"
      ? this.pools.find((pool) => pool.id === idOrName)
      : this.pools.find((pool) => pool.name.toLowerCase() === idOrName.toLowerCase());
  }

  agentsIn(poolId: number): Agent[] {
    return this.agents.filter((agent) => agent.poolId === poolId);
  }

  findAgent(poolId: number, idOrName: number | string): Agent | undefined {
    return this.agentsIn(poolId).find((agent) =>
      typeof idOrName === "number"
        ? agent.id === idOrName
        : agent.name.toLowerCase() === idOrName.toLowerCase(),
    );
  }

  /** Adds an agent; returns undefined when the name is taken in the pool. */
  addAgent(poolId: number, registration: AgentRegistration): Agent | undefined {
    if (this.findAgent(poolId, registration.name)) return undefined;
    const now = new Date();
    const agent: Agent = {
      id: this.nextAgentId++,
      poolId,
      name: registration.name,
      version: registration.version ?? "4.260.0",
      osDescription: registration.osDescription ?? "Linux (stand-in)",
      enabled: registration.enabled ?? true,
      status: "offline",
      createdOn: now,
      statusChangedOn: now,
      systemCapabilities: { ...registration.systemCapabilities },
      userCapabilities: { ...registration.userCapabilities },
      authorizationClientId: randomUUID(),
      pendingMessages: [],
    };
    this.agents.push(agent);
    this.events.emit("agentRegistered", agent);
    return agent;
  }

  /** PUT semantics: the registration replaces name, version and capabilities; the id stays. */
  replaceAgent(agent: Agent, registration: AgentRegistration): Agent {
    agent.name = registration.name;
    agent.version = registration.version ?? agent.version;
    agent.osDescription = registration.osDescription ?? agent.osDescription;
    agent.enabled = registration.enabled ?? agent.enabled;
    agent.systemCapabilities = { ...registration.systemCapabilities };
    agent.userCapabilities = { ...registration.userCapabilities };
    this.events.emit("agentRegistered", agent);
    return agent;
  }

  deleteAgent(agent: Agent): void {
    this.agents.splice(this.agents.indexOf(agent), 1);
    if (agent.assignedRequest) this.finishJob(agent.assignedRequest.requestId, "abandoned");
    this.events.emit("agentDeleted", agent);
  }

  /** Starts a session (the agent goes online); undefined when the agent already has one. */
  createSession(agent: Agent): string | undefined {
    if (agent.sessionId) return undefined;
    agent.sessionId = randomUUID();
    this.setStatus(agent, "online");
    this.assignQueuedJobs();
    return agent.sessionId;
  }

  agentForSession(sessionId: string): Agent | undefined {
    return this.agents.find((agent) => agent.sessionId === sessionId);
  }

  /**
   * The agent goes offline; messages it has not acknowledged stay queued for its next session, so a job assigned
   * just before an agent restarts (after a self-update, say) still reaches it. The agent's message poll carries
   * lastMessageId, a sequence of the agent's, not of the session (MessageListener.cs in
   * microsoft/azure-pipelines-agent); that the service keeps them across sessions is not verified.
   */
  endSession(agent: Agent): void {
    agent.sessionId = undefined;
    this.setStatus(agent, "offline");
  }

  queueJob(job: JobToQueue): JobRequest {
    const pool = this.findPool(job.poolName);
    if (!pool) throw new Error(`No agent pool named ${job.poolName}`);
    const demands = Object.entries(job.demands ?? {}).map(([name, value]) =>
      value === true ? name : `${name} -equals ${value}`,
    );
    const agents = this.agentsIn(pool.id);
    if (!agents.some((agent) => satisfiesDemands(agent, demands))) {
      const unmet = demands.find((demand) => !agents.some((agent) => satisfiesDemands(agent, [demand])));
      throw new JobRejectedError(pool.name, demands, unmet ?? demands[0]);
    }
    const request: JobRequest = {
      requestId: this.nextRequestId++,
      poolId: pool.id,
      jobId: randomUUID(),
      jobName: job.jobName ?? "Job",
      planId: randomUUID(),
      planType: "Build",
      hostId: randomUUID(),
      scopeId: randomUUID(),
      queueTime: new Date(),
      demands,
      definition: job.definition ?? { id: 1, name: "pipeline" },
      owner: { id: 1, name: "20240101.1" },
      variables: job.variables ?? {},
      steps: job.steps ?? [],
    };
    this.jobRequests.push(request);
    this.assignQueuedJobs();
    return request;
  }

  findJob(requestId: number): JobRequest | undefined {
    return this.jobRequests.find((request) => request.requestId === requestId);
  }

  /** Marks a job finished; the agent that ran it gets it as lastCompletedRequest. */
  finishJob(requestId: number, result: TaskResult): JobRequest | undefined {
    const request = this.findJob(requestId);
    if (!request || request.finishTime) return request;
    request.finishTime = new Date();
    request.result = result;
    const agent = this.agents.find((candidate) => candidate.assignedRequest === request);
    if (agent) {
      agent.assignedRequest = undefined;
      agent.lastCompletedRequest = request;
      agent.pendingMessages = agent.pendingMessages.filter(
        (message) => !message.body.includes(request.jobId),
      );
    }
    this.events.emit("jobFinished", request, agent);
    this.assignQueuedJobs();
    return request;
  }

  /** Hands the first unacknowledged message to the agent's long poll; the first delivery of a job sets receiveTime. */
  takeMessage(agent: Agent): AgentMessage | undefined {
    const message = agent.pendingMessages[0];
    if (message && agent.assignedRequest && !agent.assignedRequest.receiveTime) {
      agent.assignedRequest.receiveTime = new Date();
    }
    return message;
  }

  acknowledgeMessage(agent: Agent, messageId: number): boolean {
    const before = agent.pendingMessages.length;
    agent.pendingMessages = agent.pendingMessages.filter((message) => message.messageId !== messageId);
    return agent.pendingMessages.length < before;
  }

  private setStatus(agent: Agent, status: Agent["status"]): void {
    if (agent.status === status) return;
    agent.status = status;
    agent.statusChangedOn = new Date();
    this.events.emit("agentStatusChanged", agent);
  }

  private assignQueuedJobs(): void {
    for (const request of this.jobRequests) {
      if (request.assignTime || request.finishTime) continue;
      const agent = this.agentsIn(request.poolId).find(
        (candidate) =>
          candidate.status === "online" &&
          candidate.enabled &&
          !candidate.assignedRequest &&
          satisfiesDemands(candidate, request.demands),
      );
      if (!agent) continue;
      request.assignTime = new Date();
      request.lockedUntil = new Date(Date.now() + 5 * 60_000);
      request.reservedAgent = { id: agent.id, name: agent.name };
      agent.assignedRequest = request;
      agent.pendingMessages.push({
        messageId: this.nextMessageId++,
        messageType: "PipelineAgentJobRequest",
        body: JSON.stringify({
          messageType: "PipelineAgentJobRequest",
          requestId: request.requestId,
          jobId: request.jobId,
          jobDisplayName: request.jobName,
          jobName: request.jobName,
          plan: { planId: request.planId, planType: request.planType, scopeIdentifier: request.scopeId },
          variables: request.variables,
          steps: request.steps.map(scriptStepMessage),
        }),
      });
      this.events.emit("jobAssigned", request, agent);
    }
  }
}

/**
 * A script step as the job message's steps list carries it (TaskStep in microsoft/azure-pipelines-agent's
 * Pipelines model: type, reference to the task, inputs, environment); `script:` in YAML is the CmdLine@2 task.
 */
function scriptStepMessage(step: ScriptStep, index: number): Record<string, unknown> {
  return {
    type: "task",
    id: randomUUID(),
    name: `CmdLine${index + 1}`,
    displayName: step.displayName ?? "CmdLine",
    reference: { id: "d9bafed4-0b18-4f58-968d-86655b4d2ce9", name: "CmdLine", version: "2.250.1" },
    inputs: { script: step.script },
    environment: step.env ?? {},
  };
}

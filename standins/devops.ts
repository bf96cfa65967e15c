import { createHash, generateKeyPairSync, randomUUID, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import type { FederatedCredential, TrustedIssuer } from "./entra";
import { agentJson, jobRequestJson, poolJson, vssError, type AgentDetail } from "./devops-json";
import { areaLocationsResponse, resourceAreasResponse } from "./devops-locations";
import {
  AgentPoolState,
  satisfiesDemands,
  type Agent,
  type AgentRegistration,
  type DevOpsEvents,
  type JobRequest,
  type JobToQueue,
  type Pool,
  type TaskResult,
} from "./devops-state";
import {
  startStandinServer,
  wait,
  type Interceptor,
  type RecordedRequest,
  type Reply,
  type RouteHandler,
  type StandinRequest,
} from "./http-server";
import { AgentOAuth } from "./devops-oauth";
import { signJwt, type JwtClaims } from "./jwt";

export type PoolRight = "none" | "view" | "manage";

export interface DevOpsIdentity {
  id: string;
  displayName: string;
}

/** A credential the stand-in accepts, as a Bearer token or as the password of Basic auth (PAT). */
export interface DevOpsToken {
  token: string;
  identity?: Partial<DevOpsIdentity>;
  /** Rights per pool name; pools not listed get defaultPoolRight. */
  poolRights?: Record<string, PoolRight>;
  /** Defaults to "view". */
  defaultPoolRight?: PoolRight;
  /** An expired token is refused like an unknown one (see expireToken). */
  expired?: boolean;
}

export interface ServiceConnection {
  id: string;
  name: string;
  project: string;
}

export interface DevOpsStandinOptions {
  organization?: string;
  /** Defaults to "http"; "https" uses the test certificate. */
  protocol?: "http" | "https";
  /** Defaults to [{ name: "Default", id: 1 }]. */
  pools?: Array<{ name: string; id?: number }>;
  tokens?: DevOpsToken[];
  serviceConnections?: ServiceConnection[];
  /** tar.gz served as the agent package; without it the package list is empty. */
  agentPackagePath?: string;
  agentPackageVersion?: string;
  agentPackagePlatform?: string;
  /** How long GET messages waits for a message before answering 202; default 2000 ms. */
  longPollMs?: number;
  /**
   * The newest REST API version the server supports, e.g. "7.0" for Azure DevOps Server 2022; unset means Azure
   * DevOps Services (7.1 released, 7.2 in preview).
   */
  maxApiVersion?: string;
}

export interface SimulatedRegistration extends AgentRegistration {
  poolName: string;
  /** When given, the registration is authorised like POST agents: the token needs Manage on the pool. */
  token?: string;
}

export interface IssuedOidcToken {
  serviceConnectionId: string;
  claims: JwtClaims;
  oidcToken: string;
}

export interface DevOpsStandin {
  /** Collection URL with a trailing slash, e.g. http://127.0.0.1:41234/myorg/ */
  url: string;
  origin: string;
  organization: string;
  organizationId: string;
  requests: RecordedRequest[];
  state: AgentPoolState;
  events: AgentPoolState["events"];
  tokens: DevOpsToken[];
  serviceConnections: ServiceConnection[];
  /** Issuer and public key of the OIDC tokens; give it to entra.trustIssuer(). */
  oidcIssuer: TrustedIssuer;
  issuedOidcTokens: IssuedOidcToken[];
  /** The agents' own OAuth credentials (registrations with a public key, their token endpoint, issued tokens). */
  agentOAuth: AgentOAuth;
  /** Issuer/subject pair an Entra app needs to accept OIDC tokens for this service connection. */
  federatedCredentialFor(serviceConnectionId: string): FederatedCredential;
  /** Value for SYSTEM_OIDCREQUESTURI (AzurePipelinesCredential appends ?api-version=7.1&serviceConnectionId=...). */
  oidcRequestUri(project: string): string;
  addPool(name: string, id?: number): Pool;
  pool(name: string): Pool | undefined;
  agents(poolName: string): Agent[];
  agent(poolName: string, agentName: string): Agent | undefined;
  /** Queues a job; throws JobRejectedError when no agent registered in the pool satisfies its demands. */
  queueJob(job: JobToQueue): JobRequest;
  finishJob(requestId: number, result?: TaskResult): JobRequest | undefined;
  /** Makes a token expire: from now on it is refused like an unknown one. */
  expireToken(token: string): void;
  simulateAgent: {
    register(registration: SimulatedRegistration): Agent;
    online(poolName: string, agentName: string): string;
    offline(poolName: string, agentName: string): void;
    /** With a token, authorised like DELETE agents: throws unless the token is valid and has Manage. */
    unregister(poolName: string, agentName: string, token?: string): void;
    /** Delivers and acknowledges the agent's pending job message; returns the assigned job, if any. */
    takeJob(poolName: string, agentName: string): JobRequest | undefined;
    finish(poolName: string, agentName: string, result?: TaskResult): JobRequest;
  };
  intercept(interceptor: Interceptor): () => void;
  close(): Promise<void>;
}

const DISTRIBUTED_TASK_NAMESPACE = "101eae8c-1709-47f9-b228-0e476c35b3ba";

const SIGN_IN_PAGE = `<!DOCTYPE html>
<html><head><title>Azure DevOps Services | Sign In</title></head>
<body><p>Sign in to your account</p></body></html>
`;

/** The version a request asks for, from its api-version query parameter or its Accept header (node-api's way). */
function requestedApiVersion(request: StandinRequest): string | undefined {
  const fromAccept = /api-version=([0-9][^;,\s]*)/i.exec(String(request.headers.accept ?? ""))?.[1];
  return request.query["api-version"] ?? fromAccept;
}

/**
 * A server with an API-version ceiling answers a newer version with 400 VssVersionOutOfRangeException. Azure
 * DevOps Server 2022 supports up to 7.0: "The requested REST API version of 100.0 is out of range for this server.
 * The latest REST API version this server supports is 7.0." (MicrosoftDocs/azure-devops-docs#13083); a 7.1
 * request is answered 400 (Tiberriver256/mcp-server-azure-devops#326, checked with curl on a server).
 */
function versionOutOfRange(request: StandinRequest, maxApiVersion: string): Reply | undefined {
  const requested = requestedApiVersion(request);
  const number = requested && /^\d+(\.\d+)?/.exec(requested)?.[0];
  if (!number || Number(number) <= Number(maxApiVersion)) return undefined;
  return {
    status: 400,
    body: {
      ...vssError(
        `VS800071: The requested REST API version of ${number} is out of range for this server. The latest REST API version this server supports is ${maxApiVersion}.`,
        "VssVersionOutOfRangeException",
      ),
      typeName:
        "Microsoft.VisualStudio.Services.WebApi.VssVersionOutOfRangeException, Microsoft.VisualStudio.Services.WebApi",
      errorCode: 800071,
    },
  };
}
const RIGHT_BITS: Record<PoolRight, number> = { none: 0, view: 1 | 16, manage: 63 };
export const POOL_PERMISSION = { view: 1, manage: 2, listen: 4, administer: 8, use: 16, create: 32 } as const;

interface Caller {
  identity: DevOpsIdentity;
  token: DevOpsToken;
}

class DevOpsAccessError extends Error {}

function credentialFrom(request: StandinRequest): string | undefined {
  const header = request.headers.authorization ?? "";
  const bearer = /^Bearer\s+(.+)$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+(.+)$/i.exec(header);
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1], "base64").toString("utf8");
  return decoded.slice(decoded.indexOf(":") + 1);
}

function flag(value: string | undefined): boolean {
  return value?.toLowerCase() === "true";
}

interface SigningKeys {
  privateKey: KeyObject;
  publicKeyPem: string;
}

let sharedSigningKeys: SigningKeys | undefined;

/**
 * The key pair that signs OIDC tokens, generated once per process: an RSA-2048 key takes tens of milliseconds
 * of blocking work, and a test run starts a stand-in for nearly every test. Each stand-in still has an issuer
 * of its own (its organization id), and the Entra stand-in trusts a key for one issuer only.
 */
function oidcSigningKeys(): SigningKeys {
  if (!sharedSigningKeys) {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    sharedSigningKeys = {
      privateKey,
      publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    };
  }
  return sharedSigningKeys;
}

export async function startDevOps(options: DevOpsStandinOptions = {}): Promise<DevOpsStandin> {
  const organization = options.organization ?? "myorg";
  const organizationId = randomUUID();
  const protocol = options.protocol ?? "http";
  const longPollMs = options.longPollMs ?? 2000;
  const tokens = [...(options.tokens ?? [])];
  const serviceConnections = [...(options.serviceConnections ?? [])];
  const state = new AgentPoolState();
  const agentOAuth = new AgentOAuth(state, () => origin, organizationId);
  for (const pool of options.pools ?? [{ name: "Default", id: 1 }]) state.addPool(pool.name, pool.id);
  const signingKeys = oidcSigningKeys();
  const signingKeyId = randomUUID();
  const oidcIssuer: TrustedIssuer = {
    issuer: `https://vstoken.dev.azure.com/${organizationId}`,
    publicKeyPem: signingKeys.publicKeyPem,
  };
  const issuedOidcTokens: IssuedOidcToken[] = [];
  const agentPackage = options.agentPackagePath ? readFileSync(options.agentPackagePath) : undefined;
  const agentPackageVersion = options.agentPackageVersion ?? "4.260.0";
  const agentPackagePlatform = options.agentPackagePlatform ?? "linux-x64";
  let origin = "";
  let collectionUrl = "";

  function identityOf(token: DevOpsToken): DevOpsIdentity {
    return {
      id: token.identity?.id ?? createHash("sha256").update(token.token).digest("hex").slice(0, 32),
      displayName: token.identity?.displayName ?? "Stand-in User",
    };
  }

  function callerFor(credential: string | undefined): Caller | undefined {
    const token =
      tokens.find((candidate) => candidate.token === credential && !candidate.expired) ??
      agentOAuth.callerFor(credential, state.pools);
    return token && { identity: identityOf(token), token };
  }

  /** The caller a token authorises for a change in the pool; throws as the service would answer. */
  function managerOf(token: string, pool: Pool): Caller {
    const caller = callerFor(token);
    if (!caller)
      throw new DevOpsAccessError("VS30063: You are not authorized to access the organization (401).");
    if (rightOn(caller, pool) !== "manage") {
      throw new DevOpsAccessError(
        `Access denied. ${caller.identity.displayName} needs Manage permissions for pool ${pool.name} to perform the action.`,
      );
    }
    return caller;
  }

  function rightOn(caller: Caller, pool: Pool): PoolRight {
    return caller.token.poolRights?.[pool.name] ?? caller.token.defaultPoolRight ?? "view";
  }

  /**
   * A request whose credential is missing, unknown or expired. Azure DevOps answers a GET without
   * `X-TFS-FedAuthRedirect: Suppress` with 203 and its HTML sign-in page instead of 401: Azure SDK for C++ added
   * the header to its OIDC request for this reason (github.com/Azure/azure-sdk-for-cpp/pull/6019), and users of
   * PATs report 203 answers for expired tokens (Stack Overflow 78298298, "Azure DevOps PAT Authentication Issue -
   * 403/203 Errors").
   */
  function unauthorized(request: StandinRequest): Reply {
    const suppressed = String(request.headers["x-tfs-fedauthredirect"] ?? "").toLowerCase() === "suppress";
    if (request.method === "GET" && !suppressed) {
      return {
        status: 203,
        headers: { "content-type": "text/html; charset=utf-8", "x-tfs-fedauthredirect": "true" },
        body: SIGN_IN_PAGE,
      };
    }
    return {
      status: 401,
      headers: {
        "www-authenticate": `Bearer authorization_uri=https://login.microsoftonline.com/${organizationId}, Basic realm="${origin}/", TFS-Federated`,
        "x-tfs-fedauthrealm": origin,
        "x-vss-resourcetenant": organizationId,
      },
    };
  }

  type CallerHandler = (
    request: StandinRequest,
    params: Record<string, string>,
    caller: Caller,
  ) => Reply | Promise<Reply>;

  function authenticated(handler: CallerHandler): RouteHandler {
    return (request, params) => {
      const caller = callerFor(credentialFrom(request));
      if (!caller) return unauthorized(request);
      request.record.caller = { identity: caller.identity };
      return handler(request, params, caller);
    };
  }

  function poolNotFound(poolId: string): Reply {
    return {
      status: 404,
      body: vssError(`Agent pool ${poolId} could not be found.`, "TaskAgentPoolNotFoundException"),
    };
  }

  function accessDenied(caller: Caller, pool: Pool): Reply {
    return {
      status: 403,
      body: vssError(
        `Access denied. ${caller.identity.displayName} needs Manage permissions for pool ${pool.name} to perform the action. For more information, contact the Azure DevOps Server administrator.`,
        "AccessDeniedException",
      ),
    };
  }

  type PoolHandler = (
    request: StandinRequest,
    params: Record<string, string>,
    pool: Pool,
    caller: Caller,
  ) => Reply | Promise<Reply>;

  /** Resolves {poolId} and checks the caller's right on it (pools the caller cannot view do not exist for it). */
  function onPool(required: "view" | "manage", handler: PoolHandler): RouteHandler {
    return authenticated((request, params, caller) => {
      const pool = state.findPool(Number(params.poolId));
      if (!pool || rightOn(caller, pool) === "none") return poolNotFound(params.poolId);
      if (required === "manage" && rightOn(caller, pool) !== "manage") return accessDenied(caller, pool);
      return handler(request, params, pool, caller);
    });
  }

  function agentNotFound(agentId: string, pool: Pool): Reply {
    return {
      status: 404,
      body: vssError(
        `Agent ${agentId} could not be found in pool ${pool.name}.`,
        "TaskAgentNotFoundException",
      ),
    };
  }

  function registrationFrom(body: unknown): AgentRegistration | undefined {
    const agent = body as Partial<AgentRegistration> | undefined;
    if (!agent || typeof agent.name !== "string" || agent.name === "") return undefined;
    return agent as AgentRegistration;
  }

  function agentExists(name: string, pool: Pool): Reply {
    return {
      status: 409,
      body: vssError(
        `An agent named ${name} already exists in the pool ${pool.name}.`,
        "TaskAgentExistsException",
      ),
    };
  }

  function detailFrom(query: Record<string, string>): AgentDetail {
    return {
      includeCapabilities: flag(query.includeCapabilities),
      includeAssignedRequest: flag(query.includeAssignedRequest),
      includeLastCompletedRequest: flag(query.includeLastCompletedRequest),
    };
  }

  function listPools(request: StandinRequest, _params: Record<string, string>, caller: Caller): Reply {
    const name = request.query.poolName;
    const needsManage = ["2", "manage"].includes((request.query.actionFilter ?? "").toLowerCase());
    const pools = state.pools
      .filter((pool) => name === undefined || pool.name.toLowerCase() === name.toLowerCase())
      .filter((pool) => rightOn(caller, pool) !== "none")
      .filter((pool) => !needsManage || rightOn(caller, pool) === "manage")
      .map((pool) => poolJson(pool, state.agentsIn(pool.id).length, caller.identity));
    return { status: 200, body: { count: pools.length, value: pools } };
  }

  function listAgents(request: StandinRequest, _params: Record<string, string>, pool: Pool): Reply {
    const { agentName, demands } = request.query;
    const demandList = demands ? demands.split(",").filter((demand) => demand.trim() !== "") : [];
    const agents = state
      .agentsIn(pool.id)
      .filter((agent) => agentName === undefined || agent.name.toLowerCase() === agentName.toLowerCase())
      .filter((agent) => satisfiesDemands(agent, demandList))
      .map((agent) => agentJson(agent, detailFrom(request.query)));
    return { status: 200, body: { count: agents.length, value: agents } };
  }

  function getAgent(request: StandinRequest, params: Record<string, string>, pool: Pool): Reply {
    const agent = state.findAgent(pool.id, Number(params.agentId));
    return agent
      ? { status: 200, body: agentJson(agent, detailFrom(request.query)) }
      : agentNotFound(params.agentId, pool);
  }

  function addAgent(request: StandinRequest, _params: Record<string, string>, pool: Pool): Reply {
    const registration = registrationFrom(request.body);
    if (!registration)
      return { status: 400, body: vssError("The agent name is required.", "ArgumentException") };
    const agent = state.addAgent(pool.id, registration);
    if (!agent) return agentExists(registration.name, pool);
    const authorization = agentOAuth.register(agent, request.body);
    return {
      status: 200,
      body: { ...agentJson(agent, { includeCapabilities: true }), ...(authorization && { authorization }) },
    };
  }

  function replaceAgent(request: StandinRequest, params: Record<string, string>, pool: Pool): Reply {
    const agent = state.findAgent(pool.id, Number(params.agentId));
    if (!agent) return agentNotFound(params.agentId, pool);
    const registration = registrationFrom(request.body);
    if (!registration)
      return { status: 400, body: vssError("The agent name is required.", "ArgumentException") };
    const sameName = state.findAgent(pool.id, registration.name);
    if (sameName && sameName !== agent) return agentExists(registration.name, pool);
    state.replaceAgent(agent, registration);
    const authorization = agentOAuth.register(agent, request.body);
    return {
      status: 200,
      body: { ...agentJson(agent, { includeCapabilities: true }), ...(authorization && { authorization }) },
    };
  }

  function updateAgent(request: StandinRequest, params: Record<string, string>, pool: Pool): Reply {
    const agent = state.findAgent(pool.id, Number(params.agentId));
    if (!agent) return agentNotFound(params.agentId, pool);
    const patch = (request.body ?? {}) as Partial<AgentRegistration>;
    if (typeof patch.enabled === "boolean") agent.enabled = patch.enabled;
    if (patch.userCapabilities) agent.userCapabilities = { ...patch.userCapabilities };
    return { status: 200, body: agentJson(agent, { includeCapabilities: true }) };
  }

  function deleteAgent(_request: StandinRequest, params: Record<string, string>, pool: Pool): Reply {
    const agent = state.findAgent(pool.id, Number(params.agentId));
    if (!agent) return agentNotFound(params.agentId, pool);
    state.deleteAgent(agent);
    return { status: 204 };
  }

  function createSession(request: StandinRequest, _params: Record<string, string>, pool: Pool): Reply {
    const body = (request.body ?? {}) as { agent?: { id?: number; name?: string }; ownerName?: string };
    const agent = state.findAgent(pool.id, body.agent?.id ?? body.agent?.name ?? "");
    if (!agent) return agentNotFound(String(body.agent?.id ?? body.agent?.name), pool);
    const refused = agentOAuth.refuseOtherCallers(agent, credentialFrom(request));
    if (refused) return refused;
    const sessionId = state.createSession(agent);
    if (sessionId === undefined) {
      return {
        status: 409,
        body: vssError(
          `A session for agent ${agent.name} already exists.`,
          "TaskAgentSessionConflictException",
        ),
      };
    }
    return { status: 200, body: { sessionId, ownerName: body.ownerName, agent: agentJson(agent) } };
  }

  function sessionExpired(sessionId: string | undefined): Reply {
    return {
      status: 404,
      body: vssError(`Session ${sessionId} was not found.`, "TaskAgentSessionExpiredException"),
    };
  }

  function deleteSession(_request: StandinRequest, params: Record<string, string>): Reply {
    const agent = state.agentForSession(params.sessionId);
    if (!agent) return sessionExpired(params.sessionId);
    state.endSession(agent);
    return { status: 204 };
  }

  async function getMessage(request: StandinRequest): Promise<Reply> {
    const sessionId = request.query.sessionId;
    const deadline = Date.now() + longPollMs;
    for (;;) {
      const agent = state.agentForSession(sessionId);
      if (!agent) return sessionExpired(sessionId);
      const refused = agentOAuth.refuseOtherCallers(agent, credentialFrom(request));
      if (refused) return refused;
      const message = state.takeMessage(agent);
      if (message) return { status: 200, body: message };
      if (Date.now() >= deadline || request.signal.aborted) return { status: 202 };
      await wait(Math.min(20, deadline - Date.now()), request.signal);
    }
  }

  function deleteMessage(request: StandinRequest, params: Record<string, string>): Reply {
    const agent = state.agentForSession(request.query.sessionId);
    if (!agent) return sessionExpired(request.query.sessionId);
    state.acknowledgeMessage(agent, Number(params.messageId));
    return { status: 204 };
  }

  function jobRequestIn(pool: Pool, requestId: string): JobRequest | undefined {
    const job = state.findJob(Number(requestId));
    return job?.poolId === pool.id ? job : undefined;
  }

  function jobRequestNotFound(requestId: string): Reply {
    return {
      status: 404,
      body: vssError(`Job request ${requestId} was not found.`, "TaskAgentJobNotFoundException"),
    };
  }

  function getJobRequest(_request: StandinRequest, params: Record<string, string>, pool: Pool): Reply {
    const job = jobRequestIn(pool, params.requestId);
    return job ? { status: 200, body: jobRequestJson(job) } : jobRequestNotFound(params.requestId);
  }

  function updateJobRequest(request: StandinRequest, params: Record<string, string>, pool: Pool): Reply {
    const job = jobRequestIn(pool, params.requestId);
    if (!job) return jobRequestNotFound(params.requestId);
    const body = (request.body ?? {}) as { result?: TaskResult; finishTime?: string };
    if (body.result) {
      state.finishJob(job.requestId, body.result);
      if (body.finishTime) job.finishTime = new Date(body.finishTime);
    } else if (!job.finishTime) {
      job.lockedUntil = new Date(Date.now() + 5 * 60_000);
    }
    return { status: 200, body: jobRequestJson(job) };
  }

  function listPackages(request: StandinRequest, params: Record<string, string>): Reply {
    const platform = params.platform ?? request.query.platform;
    const matches =
      agentPackage && params.packageType === "agent" && (!platform || platform === agentPackagePlatform);
    if (!matches) return { status: 200, body: { count: 0, value: [] } };
    const [major, minor, patch] = agentPackageVersion.split(".").map(Number);
    const filename = `vsts-agent-${agentPackagePlatform}-${agentPackageVersion}.tar.gz`;
    const metadata = {
      type: "agent",
      platform: agentPackagePlatform,
      createdOn: new Date(0).toISOString(),
      version: { major, minor, patch },
      downloadUrl: `${origin}/_standin/agent-packages/${filename}`,
      infoUrl: "https://go.microsoft.com/fwlink/?LinkId=798199",
      filename,
      hashValue: createHash("sha256").update(agentPackage).digest("hex"),
    };
    return { status: 200, body: { count: 1, value: [metadata] } };
  }

  function downloadPackage(_request: StandinRequest, params: Record<string, string>): Reply {
    if (!agentPackage || !params.filename.includes(agentPackageVersion)) return { status: 404 };
    return { status: 200, headers: { "content-type": "application/octet-stream" }, body: agentPackage };
  }

  function createOidcToken(request: StandinRequest, params: Record<string, string>): Reply {
    const connection = serviceConnections.find(
      (candidate) => candidate.id === request.query.serviceConnectionId,
    );
    if (!connection) {
      return {
        status: 404,
        body: vssError(
          `Service connection ${request.query.serviceConnectionId} was not found.`,
          "ServiceEndpointNotFoundException",
        ),
      };
    }
    const now = Math.floor(Date.now() / 1000);
    const claims: JwtClaims = {
      jti: randomUUID(),
      sub: federatedCredentialFor(connection.id).subject,
      aud: "api://AzureADTokenExchange",
      iss: oidcIssuer.issuer,
      nbf: now,
      iat: now,
      exp: now + 600,
      job_id: params.jobId,
      plan_id: params.planId,
    };
    const oidcToken = signJwt(claims, signingKeys.privateKey, { kid: signingKeyId });
    issuedOidcTokens.push({ serviceConnectionId: connection.id, claims, oidcToken });
    return { status: 200, body: { oidcToken } };
  }

  function hasPermissions(request: StandinRequest, params: Record<string, string>, caller: Caller): Reply {
    const requested = Number(params.permissions);
    const securityTokens = (request.query.tokens ?? "").split(request.query.delimiter ?? ",").filter(Boolean);
    const value = securityTokens.map((securityToken) => {
      if (params.namespaceId.toLowerCase() !== DISTRIBUTED_TASK_NAMESPACE) return false;
      const match = /^AgentPools(?:\/(\d+))?$/i.exec(securityToken);
      if (!match) return false;
      const pool = match[1] ? state.findPool(Number(match[1])) : undefined;
      const right = pool
        ? rightOn(caller, pool)
        : match[1]
          ? "none"
          : (caller.token.defaultPoolRight ?? "view");
      return (RIGHT_BITS[right] & requested) === requested;
    });
    return { status: 200, body: { count: value.length, value } };
  }

  function connectionData(_request: StandinRequest, _params: Record<string, string>, caller: Caller): Reply {
    const user = {
      id: caller.identity.id,
      descriptor: `Microsoft.IdentityModel.Claims.ClaimsIdentity;${caller.identity.id}`,
      subjectDescriptor: `aad.${Buffer.from(caller.identity.id).toString("base64url")}`,
      providerDisplayName: caller.identity.displayName,
      isActive: true,
      properties: { Account: { $type: "System.String", $value: caller.identity.displayName } },
      resourceVersion: 2,
      metaTypeId: 0,
    };
    return {
      status: 200,
      body: {
        authenticatedUser: user,
        authorizedUser: user,
        instanceId: organizationId,
        deploymentId: organizationId,
        deploymentType: options.maxApiVersion ? "onPremises" : "hosted",
        locationServiceData: {
          serviceOwner: "00025394-6065-48ca-87d9-7f5672854ef7",
          defaultAccessMappingMoniker: "PublicAccessMapping",
          lastChangeId: 1,
          lastChangeId64: 1,
        },
      },
    };
  }

  function federatedCredentialFor(serviceConnectionId: string): FederatedCredential {
    const connection = serviceConnections.find((candidate) => candidate.id === serviceConnectionId);
    if (!connection) throw new Error(`Unknown service connection ${serviceConnectionId}`);
    return {
      issuer: oidcIssuer.issuer,
      subject: `sc://${organization}/${connection.project}/${connection.name}`,
    };
  }

  const org = `/${organization}`;
  const taskApis = `${org}/_apis/distributedtask`;
  const server = await startStandinServer({
    protocol,
    routes: [
      {
        method: "OPTIONS",
        pattern: `${org}/_apis/:area`,
        handle: (_request, params) => {
          const locations = areaLocationsResponse(params.area, options.maxApiVersion);
          return locations ? { status: 200, body: locations } : { status: 404 };
        },
      },
      {
        method: "GET",
        pattern: `${org}/_apis/ResourceAreas`,
        handle: () => ({ status: 200, body: resourceAreasResponse(collectionUrl) }),
      },
      { method: "GET", pattern: `${org}/_apis/connectionData`, handle: authenticated(connectionData) },
      {
        method: "GET",
        pattern: `${org}/_apis/permissions/:namespaceId/:permissions`,
        handle: authenticated(hasPermissions),
      },
      { method: "GET", pattern: `${taskApis}/pools`, handle: authenticated(listPools) },
      {
        method: "GET",
        pattern: `${taskApis}/pools/:poolId`,
        handle: onPool("view", (_request, _params, pool, caller) => ({
          status: 200,
          body: poolJson(pool, state.agentsIn(pool.id).length, caller.identity),
        })),
      },
      { method: "GET", pattern: `${taskApis}/pools/:poolId/agents`, handle: onPool("view", listAgents) },
      { method: "POST", pattern: `${taskApis}/pools/:poolId/agents`, handle: onPool("manage", addAgent) },
      {
        method: "GET",
        pattern: `${taskApis}/pools/:poolId/agents/:agentId`,
        handle: onPool("view", getAgent),
      },
      {
        method: "PUT",
        pattern: `${taskApis}/pools/:poolId/agents/:agentId`,
        handle: onPool("manage", replaceAgent),
      },
      {
        method: "PATCH",
        pattern: `${taskApis}/pools/:poolId/agents/:agentId`,
        handle: onPool("manage", updateAgent),
      },
      {
        method: "DELETE",
        pattern: `${taskApis}/pools/:poolId/agents/:agentId`,
        handle: onPool("manage", deleteAgent),
      },
      {
        method: "POST",
        pattern: `${taskApis}/pools/:poolId/sessions`,
        handle: onPool("view", createSession),
      },
      {
        method: "DELETE",
        pattern: `${taskApis}/pools/:poolId/sessions/:sessionId`,
        handle: onPool("view", deleteSession),
      },
      { method: "GET", pattern: `${taskApis}/pools/:poolId/messages`, handle: onPool("view", getMessage) },
      {
        method: "DELETE",
        pattern: `${taskApis}/pools/:poolId/messages/:messageId`,
        handle: onPool("view", deleteMessage),
      },
      {
        method: "GET",
        pattern: `${taskApis}/pools/:poolId/jobrequests/:requestId`,
        handle: onPool("view", getJobRequest),
      },
      {
        method: "PATCH",
        pattern: `${taskApis}/pools/:poolId/jobrequests/:requestId`,
        handle: onPool("view", updateJobRequest),
      },
      { method: "GET", pattern: `${taskApis}/packages/:packageType`, handle: authenticated(listPackages) },
      {
        method: "GET",
        pattern: `${taskApis}/packages/:packageType/:platform`,
        handle: authenticated(listPackages),
      },
      { method: "GET", pattern: "/_standin/agent-packages/:filename", handle: downloadPackage },
      {
        method: "POST",
        pattern: `${org}/:project/_apis/distributedtask/hubs/:hubName/plans/:planId/jobs/:jobId/oidctoken`,
        handle: authenticated(createOidcToken),
      },
      { method: "POST", pattern: agentOAuth.tokenPath, handle: (request) => agentOAuth.exchange(request) },
    ],
    notFound: (request) => ({
      status: 404,
      body: vssError(`The stand-in has no route for ${request.method} ${request.path}.`, "NotFoundException"),
    }),
  });
  origin = server.origin;
  collectionUrl = `${origin}/${organization}/`;
  const maxApiVersion = options.maxApiVersion;
  if (maxApiVersion) server.intercept((request) => versionOutOfRange(request, maxApiVersion));

  function requirePool(poolName: string): Pool {
    const pool = state.findPool(poolName);
    if (!pool) throw new Error(`No agent pool named ${poolName}`);
    return pool;
  }

  function requireAgent(poolName: string, agentName: string): Agent {
    const agent = state.findAgent(requirePool(poolName).id, agentName);
    if (!agent) throw new Error(`No agent named ${agentName} in pool ${poolName}`);
    return agent;
  }

  const simulateAgent: DevOpsStandin["simulateAgent"] = {
    register(registration) {
      const pool = requirePool(registration.poolName);
      if (registration.token !== undefined) managerOf(registration.token, pool);
      const existing = state.findAgent(pool.id, registration.name);
      if (existing) {
        if (existing.sessionId) state.endSession(existing);
        return state.replaceAgent(existing, registration);
      }
      return state.addAgent(pool.id, registration) as Agent;
    },
    online(poolName, agentName) {
      const agent = requireAgent(poolName, agentName);
      return agent.sessionId ?? (state.createSession(agent) as string);
    },
    offline(poolName, agentName) {
      const agent = requireAgent(poolName, agentName);
      if (agent.sessionId) state.endSession(agent);
    },
    unregister(poolName, agentName, token) {
      if (token !== undefined) managerOf(token, requirePool(poolName));
      state.deleteAgent(requireAgent(poolName, agentName));
    },
    takeJob(poolName, agentName) {
      const agent = requireAgent(poolName, agentName);
      const message = state.takeMessage(agent);
      if (message) state.acknowledgeMessage(agent, message.messageId);
      return agent.assignedRequest;
    },
    finish(poolName, agentName, result = "succeeded") {
      const job = simulateAgent.takeJob(poolName, agentName);
      if (!job) throw new Error(`Agent ${agentName} has no assigned job`);
      return state.finishJob(job.requestId, result) as JobRequest;
    },
  };

  return {
    url: collectionUrl,
    origin,
    organization,
    organizationId,
    requests: server.requests,
    state,
    events: state.events,
    tokens,
    serviceConnections,
    oidcIssuer,
    issuedOidcTokens,
    agentOAuth,
    federatedCredentialFor,
    oidcRequestUri(project) {
      return `${origin}/${organization}/${project}/_apis/distributedtask/hubs/build/plans/${randomUUID()}/jobs/${randomUUID()}/oidctoken`;
    },
    addPool: (name, id) => state.addPool(name, id),
    pool: (name) => state.findPool(name),
    agents: (poolName) => state.agentsIn(requirePool(poolName).id),
    agent: (poolName, agentName) => {
      const pool = state.findPool(poolName);
      return pool && state.findAgent(pool.id, agentName);
    },
    queueJob: (job) => state.queueJob(job),
    expireToken(token) {
      for (const candidate of tokens) if (candidate.token === token) candidate.expired = true;
    },
    finishJob: (requestId, result = "succeeded") => state.finishJob(requestId, result),
    simulateAgent,
    intercept: server.intercept,
    close: server.close,
  };
}

export type { Agent, DevOpsEvents, JobRequest, JobToQueue, Pool, TaskResult };

import { createPublicKey, randomBytes, type KeyObject } from "node:crypto";
import { vssError } from "./devops-json";
import type { Agent, AgentPoolState, Pool } from "./devops-state";
import type { Reply, StandinRequest } from "./http-server";
import { decodeJwt, hasValidSignature } from "./jwt";

/**
 * The agents' own OAuth credentials in the Azure DevOps stand-in: a registration that carries
 * `authorization.publicKey` gets a client id and an authorization URL; the token endpoint at that URL exchanges a
 * JWT client assertion signed with the registered key for an access token that acts as that one agent.
 *
 * What the client sends is read from the agent's source (standins/reference/agent-registration.md):
 * ConfigurationManager.cs (the registration and its answer), OAuthCredential.cs (the grant), and the VSS client
 * library as published in actions/runner src/Sdk: VssOAuthConstants.cs (grant_type client_credentials,
 * client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-bearer), VssOAuthJwtBearerAssertion.cs and
 * JsonWebToken.cs (RS256; iss = sub = client id, aud = the token endpoint, jti, nbf, exp = nbf + 5 minutes).
 * The service's answers to a refused assertion (status and error codes) are not verified; the stand-in answers
 * as RFC 6749 section 5.2 says.
 */

export const JWT_BEARER_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/** The agent renews its token on 401; the service's tokens last about 50 minutes (agent-registration.md). */
const ACCESS_TOKEN_SECONDS = 3000;
/** Allowance for clocks that differ between agent and service on nbf (not verified: the service's value is unknown). */
const CLOCK_SKEW_SECONDS = 300;

export interface AgentPublicKeyJson {
  exponent: string;
  modulus: string;
}

export interface AgentAuthorizationJson {
  clientId: string;
  authorizationUrl: string;
  publicKey: AgentPublicKeyJson;
}

export interface IssuedAgentToken {
  accessToken: string;
  agent: Agent;
  clientId: string;
  expiresAt: number;
  /** The registered key the assertion was signed with: a new key (PUT) ends the tokens of the old one. */
  modulus: string;
}

/** A credential the stand-in's routes accept: what devops.ts calls a DevOpsToken. */
export interface AgentCaller {
  token: string;
  identity: { id: string; displayName: string };
  poolRights: Record<string, "view">;
  defaultPoolRight: "none";
}

interface RegisteredKey {
  publicKey: KeyObject;
  publicKeyJson: AgentPublicKeyJson;
}

export class AgentOAuth {
  readonly issuedTokens: IssuedAgentToken[] = [];
  private readonly keys = new Map<Agent, RegisteredKey>();
  private readonly usedAssertionIds = new Set<string>();

  constructor(
    private readonly state: AgentPoolState,
    private readonly origin: () => string,
    private readonly organizationId: string,
  ) {
    state.events.on("agentDeleted", (agent) => this.keys.delete(agent));
  }

  /** The agents' token endpoint; also the JWT audience, and what the agent writes as oauthEndpointUrl. */
  get authorizationUrl(): string {
    return `${this.origin()}${this.tokenPath}`;
  }

  get tokenPath(): string {
    return `/_standin/vstoken/${this.organizationId}/oauth2/token`;
  }

  /**
   * Records the public key of a POST or PUT agents body (a PUT with a new key makes the old one stop working, as
   * config.sh --replace relies on) and returns the `authorization` the answer carries; undefined without a key.
   */
  register(agent: Agent, body: unknown): AgentAuthorizationJson | undefined {
    const publicKeyJson = (
      body as { authorization?: { publicKey?: Partial<AgentPublicKeyJson> } } | undefined
    )?.authorization?.publicKey;
    if (typeof publicKeyJson?.exponent !== "string" || typeof publicKeyJson.modulus !== "string") {
      this.keys.delete(agent);
      return undefined;
    }
    const key = { exponent: publicKeyJson.exponent, modulus: publicKeyJson.modulus };
    const publicKey = createPublicKey({
      format: "jwk",
      key: {
        kty: "RSA",
        n: Buffer.from(key.modulus, "base64").toString("base64url"),
        e: Buffer.from(key.exponent, "base64").toString("base64url"),
      },
    });
    this.keys.set(agent, { publicKey, publicKeyJson: key });
    return this.authorizationOf(agent);
  }

  authorizationOf(agent: Agent): AgentAuthorizationJson | undefined {
    const key = this.keys.get(agent);
    return (
      key && {
        clientId: agent.authorizationClientId,
        authorizationUrl: this.authorizationUrl,
        publicKey: key.publicKeyJson,
      }
    );
  }

  /** True when the agent was registered with a public key: then only its own token may open its session. */
  holdsKey(agent: Agent): boolean {
    return this.keys.has(agent);
  }

  /** The caller an agent access token stands for: view on the agent's own pool only; undefined when not valid. */
  callerFor(accessToken: string | undefined, pools: readonly Pool[]): AgentCaller | undefined {
    const issued = this.validToken(accessToken);
    const pool = issued && pools.find((candidate) => candidate.id === issued.agent.poolId);
    if (!issued || !pool) return undefined;
    return {
      token: issued.accessToken,
      identity: { id: issued.clientId, displayName: `Agent ${issued.agent.name}` },
      poolRights: { [pool.name]: "view" },
      defaultPoolRight: "none",
    };
  }

  /**
   * Refuses, with 403, a session or message request for an agent with a registered key unless the caller is that
   * agent's own token. Undefined lets the request through.
   */
  refuseOtherCallers(agent: Agent | undefined, accessToken: string | undefined): Reply | undefined {
    if (!agent || !this.holdsKey(agent)) return undefined;
    if (this.validToken(accessToken)?.agent === agent) return undefined;
    return {
      status: 403,
      body: vssError(
        `Access denied. Only agent ${agent.name}'s own credential may open or use its session.`,
        "AccessDeniedException",
      ),
    };
  }

  /** POST {authorizationUrl}: client-credentials grant with a JWT client assertion. */
  exchange(request: StandinRequest): Reply {
    const form = (typeof request.body === "object" && request.body !== null ? request.body : {}) as Record<
      string,
      unknown
    >;
    if (!String(request.headers["content-type"] ?? "").includes("application/x-www-form-urlencoded"))
      return oauthError(400, "invalid_request", "The request must be application/x-www-form-urlencoded.");
    if (form.grant_type !== "client_credentials")
      return oauthError(400, "unsupported_grant_type", "Only the client_credentials grant is supported.");
    if (form.client_assertion_type !== JWT_BEARER_ASSERTION_TYPE || typeof form.client_assertion !== "string")
      return oauthError(
        400,
        "invalid_client",
        `A ${JWT_BEARER_ASSERTION_TYPE} client assertion is required.`,
      );
    const jwt = decodeJwt(form.client_assertion);
    if (!jwt) return oauthError(400, "invalid_client", "The client assertion is not a JWT.");
    const { iss, sub, aud, exp, nbf, jti } = jwt.claims;
    const agent = this.agentWithClientId(iss);
    const key = agent && this.keys.get(agent);
    if (!agent || !key) return oauthError(401, "invalid_client", "The client is not registered.");
    if (jwt.header.alg !== "RS256" || !hasValidSignature(jwt, key.publicKey))
      return oauthError(
        401,
        "invalid_client",
        "The client assertion's signature does not match the registered key.",
      );
    if (sub !== iss)
      return oauthError(401, "invalid_client", "The client assertion's sub must equal its iss.");
    if (aud !== this.authorizationUrl)
      return oauthError(401, "invalid_client", "The client assertion's audience is not this token endpoint.");
    const now = Math.floor(Date.now() / 1000);
    if (typeof exp !== "number" || exp <= now)
      return oauthError(401, "invalid_client", "The client assertion has expired.");
    if (typeof nbf === "number" && nbf - CLOCK_SKEW_SECONDS > now)
      return oauthError(401, "invalid_client", "The client assertion is not valid yet.");
    if (typeof jti !== "string" || this.usedAssertionIds.has(jti))
      return oauthError(401, "invalid_client", "The client assertion has no jti or was used before.");
    this.usedAssertionIds.add(jti);
    const issued: IssuedAgentToken = {
      accessToken: `standin-agent.${randomBytes(24).toString("base64url")}`,
      agent,
      clientId: agent.authorizationClientId,
      expiresAt: Date.now() + ACCESS_TOKEN_SECONDS * 1000,
      modulus: key.publicKeyJson.modulus,
    };
    this.issuedTokens.push(issued);
    return {
      status: 200,
      headers: { "cache-control": "no-store" },
      body: { access_token: issued.accessToken, token_type: "bearer", expires_in: ACCESS_TOKEN_SECONDS },
    };
  }

  /** A token is valid while it has not expired and its agent is still registered with the key it was issued for. */
  private validToken(accessToken: string | undefined): IssuedAgentToken | undefined {
    const issued = this.issuedTokens.find((candidate) => candidate.accessToken === accessToken);
    if (!issued || issued.expiresAt <= Date.now()) return undefined;
    const sameKey = this.keys.get(issued.agent)?.publicKeyJson.modulus === issued.modulus;
    return sameKey && this.state.agents.includes(issued.agent) ? issued : undefined;
  }

  private agentWithClientId(clientId: unknown): Agent | undefined {
    if (typeof clientId !== "string") return undefined;
    return this.state.agents.find((agent) => agent.authorizationClientId === clientId);
  }
}

function oauthError(status: number, error: string, description: string): Reply {
  return { status, body: { error, error_description: description } };
}

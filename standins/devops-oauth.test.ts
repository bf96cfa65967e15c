import assert from "node:assert/strict";
import { randomUUID, type KeyObject } from "node:crypto";
import * as azdev from "azure-devops-node-api";
import type { TaskAgent } from "azure-devops-node-api/interfaces/TaskAgentInterfaces";
import { generateAgentKey, type AgentKey } from "../tasks/common/core/agentCredential";
import { JWT_BEARER_ASSERTION_TYPE } from "./devops-oauth";
import { signJwt, type JwtClaims } from "./jwt";
import { startDevOps, type DevOpsStandin } from "./index";

const manageToken = "manage-token";
const poolName = "Ephemeral";
const poolId = 7;

describe("Azure DevOps stand-in: agents' own OAuth credentials", () => {
  let devops: DevOpsStandin;
  let key: AgentKey;
  let otherKey: AgentKey;

  before(async () => {
    [key, otherKey] = await Promise.all([generateAgentKey(), generateAgentKey()]);
  });

  beforeEach(async () => {
    devops = await startDevOps({
      pools: [{ name: poolName, id: poolId }],
      tokens: [{ token: manageToken, poolRights: { [poolName]: "manage" } }],
      longPollMs: 50,
    });
  });

  afterEach(async () => {
    await devops.close();
  });

  async function call(method: string, route: string, token: string, body?: unknown) {
    const response = await fetch(`${devops.url}_apis/distributedtask/${route}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        "x-tfs-fedauthredirect": "Suppress",
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
    };
  }

  /**
   * Registers through node-api's typed client, as the start task does. Its TaskAgentPublicKey types the fields as
   * number[], but the service's byte[] travels as a base64 string, as config.sh sends it.
   */
  async function register(name: string, agentKey: AgentKey | null = key): Promise<TaskAgent> {
    const api = await new azdev.WebApi(devops.url, azdev.getBearerHandler(manageToken)).getTaskAgentApi();
    return api.addAgent(
      {
        name,
        version: "4.260.0",
        maxParallelism: 1,
        ...(agentKey && { authorization: { publicKey: agentKey.publicKey } }),
      } as unknown as TaskAgent,
      poolId,
    );
  }

  function assertion(
    agent: TaskAgent,
    overrides: JwtClaims = {},
    signingKey: KeyObject = key.privateKey,
  ): string {
    const now = Math.floor(Date.now() / 1000);
    const clientId = agent.authorization?.clientId;
    return signJwt(
      {
        iss: clientId,
        sub: clientId,
        aud: agent.authorization?.authorizationUrl,
        jti: randomUUID(),
        nbf: now,
        exp: now + 300,
        ...overrides,
      },
      signingKey,
    );
  }

  async function exchange(
    agent: TaskAgent,
    form: Record<string, string> = {},
    contentType = "application/x-www-form-urlencoded",
  ) {
    const response = await fetch(agent.authorization?.authorizationUrl ?? "", {
      method: "POST",
      headers: { "content-type": contentType },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
        client_assertion: assertion(agent),
        ...form,
      }).toString(),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  async function accessToken(agent: TaskAgent): Promise<string> {
    const answer = await exchange(agent);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body.access_token as string;
  }

  function openSession(agent: TaskAgent, token: string) {
    return call("POST", `pools/${poolId}/sessions`, token, {
      sessionId: randomUUID(),
      ownerName: "test",
      agent: { id: agent.id, name: agent.name },
    });
  }

  it("answers a registration with a public key with an id, a client id and the token endpoint it serves", async () => {
    const agent = await register("with-key");
    assert.ok(agent.id);
    assert.match(agent.authorization?.clientId ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(agent.authorization?.authorizationUrl, devops.agentOAuth.authorizationUrl);
    assert.ok(agent.authorization?.authorizationUrl?.startsWith(devops.origin));
    assert.deepEqual(agent.authorization?.publicKey, key.publicKey);

    const withoutKey = await register("without-key", null);
    assert.equal(withoutKey.authorization?.authorizationUrl, undefined);
  });

  it("exchanges a signed client assertion for a token that opens the agent's session and takes its job", async () => {
    const agent = await register("agent-1");
    const token = await accessToken(agent);
    assert.equal(devops.agentOAuth.issuedTokens.length, 1);

    const session = await openSession(agent, token);
    assert.equal(session.status, 200);
    assert.equal(devops.agent(poolName, "agent-1")?.status, "online");

    const job = devops.queueJob({ poolName });
    const message = await call(
      "GET",
      `pools/${poolId}/messages?sessionId=${String(session.body?.sessionId)}`,
      token,
    );
    assert.equal(message.status, 200);
    assert.match(String(message.body?.body), new RegExp(job.jobId));
  });

  it("lets no other credential open or poll the session of an agent with a key: not the pool manager, not another agent", async () => {
    const agent = await register("agent-1");
    const other = await register("agent-2", otherKey);
    const otherToken = (
      await exchange(other, { client_assertion: assertion(other, {}, otherKey.privateKey) })
    ).body.access_token as string;

    assert.equal((await openSession(agent, manageToken)).status, 403);
    assert.equal((await openSession(agent, otherToken)).status, 403);
    assert.equal(devops.agent(poolName, "agent-1")?.status, "offline");

    const session = await openSession(agent, await accessToken(agent));
    const poll = await call(
      "GET",
      `pools/${poolId}/messages?sessionId=${String(session.body?.sessionId)}`,
      manageToken,
    );
    assert.equal(poll.status, 403);
  });

  it("gives an agent's token view on its own pool only: it cannot register or remove agents", async () => {
    const agent = await register("agent-1");
    const token = await accessToken(agent);
    assert.equal((await call("GET", `pools/${poolId}/agents`, token)).status, 200);
    assert.equal((await call("POST", `pools/${poolId}/agents`, token, { name: "intruder" })).status, 403);
    assert.equal((await call("DELETE", `pools/${poolId}/agents/${agent.id}`, token)).status, 403);
  });

  const refusals: Array<[string, (agent: TaskAgent) => Record<string, string>]> = [
    [
      "a signature by another key",
      (agent) => ({ client_assertion: assertion(agent, {}, otherKey.privateKey) }),
    ],
    ["sub other than iss", (agent) => ({ client_assertion: assertion(agent, { sub: randomUUID() }) })],
    [
      "an unknown client id",
      (agent) => ({ client_assertion: assertion(agent, { iss: randomUUID(), sub: undefined }) }),
    ],
    [
      "another audience",
      (agent) => ({ client_assertion: assertion(agent, { aud: `${devops.url}_apis/token` }) }),
    ],
    [
      "an expired assertion",
      (agent) => ({ client_assertion: assertion(agent, { exp: Math.floor(Date.now() / 1000) - 1 }) }),
    ],
    ["no exp", (agent) => ({ client_assertion: assertion(agent, { exp: undefined }) })],
    ["the password grant", () => ({ grant_type: "password" })],
    [
      "another assertion type",
      () => ({ client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:saml2-bearer" }),
    ],
    ["an assertion that is not a JWT", () => ({ client_assertion: "not-a-jwt" })],
  ];
  for (const [what, form] of refusals) {
    it(`refuses ${what}`, async () => {
      const agent = await register("agent-1");
      const answer = await exchange(agent, form(agent));
      assert.ok(answer.status === 400 || answer.status === 401, `status ${answer.status}`);
      assert.equal(typeof answer.body.error, "string");
      assert.equal(answer.body.access_token, undefined);
    });
  }

  it("refuses a JSON body and an assertion used twice", async () => {
    const agent = await register("agent-1");
    assert.equal((await exchange(agent, {}, "application/json")).status, 400);
    const once = assertion(agent);
    assert.equal((await exchange(agent, { client_assertion: once })).status, 200);
    assert.equal((await exchange(agent, { client_assertion: once })).status, 401);
  });

  it("revokes the credential with the registration: no new token, and the issued one stops working", async () => {
    const agent = await register("agent-1");
    const token = await accessToken(agent);
    assert.equal((await call("DELETE", `pools/${poolId}/agents/${agent.id}`, manageToken)).status, 204);
    assert.equal((await exchange(agent)).status, 401);
    assert.equal(
      (await call("POST", `pools/${poolId}/sessions`, token, { agent: { id: agent.id } })).status,
      401,
    );
  });

  it("ends the old key's tokens when the registration is replaced with a new key", async () => {
    const agent = await register("agent-1");
    const oldToken = await accessToken(agent);
    const replaced = await call("PUT", `pools/${poolId}/agents/${agent.id}`, manageToken, {
      id: agent.id,
      name: "agent-1",
      authorization: { publicKey: otherKey.publicKey },
    });
    assert.equal(replaced.status, 200);
    assert.equal((await call("GET", `pools/${poolId}/agents`, oldToken)).status, 401);
    assert.equal((await exchange(agent)).status, 401);
    const newToken = (await exchange(agent, { client_assertion: assertion(agent, {}, otherKey.privateKey) }))
      .body.access_token as string;
    assert.equal((await openSession(agent, newToken)).status, 200);
  });
});

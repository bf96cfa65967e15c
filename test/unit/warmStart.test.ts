import assert from "node:assert/strict";
import { privateKeyFromRsaParametersFile } from "../../tasks/common/core/agentCredential";
import { PUBLIC_KEY_MARKER, publicKeyInLog, warmAgentSettings } from "../../tasks/common/core/warmStart";
import { reusedAgentKey } from "../agentKeys";

describe("the warm start's contract with the agent image", () => {
  it("reads the last public key line the container printed", async () => {
    const first = await reusedAgentKey();
    const second = await reusedAgentKey();
    const log = [
      "making the agent's key",
      `${PUBLIC_KEY_MARKER} ${JSON.stringify(first.publicKey)}`,
      "restarted",
      `${PUBLIC_KEY_MARKER} ${JSON.stringify(second.publicKey)}\r`,
      "waiting for the agent's settings in /mnt/configmap/agent",
    ].join("\n");
    assert.deepEqual(publicKeyInLog(log), second.publicKey);
  });

  it("says there is no key yet while the log has no marker line", () => {
    assert.equal(publicKeyInLog(""), undefined);
    assert.equal(publicKeyInLog(`echo ${PUBLIC_KEY_MARKER}\n`), undefined);
  });

  it("refuses a marker line that holds no usable key", () => {
    assert.throws(() => publicKeyInLog(`${PUBLIC_KEY_MARKER} not-json`), /is not JSON/);
    assert.throws(
      () => publicKeyInLog(`${PUBLIC_KEY_MARKER} {"exponent":"AQAB"}`),
      /no base64 exponent and modulus/,
    );
    const short = Buffer.alloc(128, 1).toString("base64");
    assert.throws(
      () => publicKeyInLog(`${PUBLIC_KEY_MARKER} {"exponent":"AQAB","modulus":"${short}"}`),
      /has 1024 bits; the agent needs 2048/,
    );
  });

  it("hands the container the .agent and .credentials files and its environment, and no private key", async () => {
    const key = await reusedAgentKey();
    const settings = warmAgentSettings(
      {
        agentId: 12,
        agentName: "ephemeral-1-abcde-1",
        poolId: 7,
        poolName: "Private",
        serverUrl: "https://dev.azure.com/myorg",
        workFolder: "_work",
      },
      { clientId: "client", authorizationUrl: "https://vstoken.dev.azure.com/org" },
      { EPHEMERAL_AGENT_RUN: "1" },
    );
    assert.deepEqual(Object.keys(settings).sort(), ["agent", "credentials", "environment"]);
    assert.equal((JSON.parse(settings.agent) as { agentId: number }).agentId, 12);
    assert.deepEqual(JSON.parse(settings.environment), { EPHEMERAL_AGENT_RUN: "1" });
    const text = JSON.stringify(settings);
    const { d } = key.privateKey.export({ format: "jwk" });
    assert.ok(d && !text.includes(d));
    assert.throws(() => privateKeyFromRsaParametersFile(settings.credentials));
  });
});

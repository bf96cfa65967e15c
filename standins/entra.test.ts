import assert from "node:assert/strict";
import net from "node:net";
import { readFileSync } from "node:fs";
import { ContainerInstanceManagementClient } from "@azure/arm-containerinstance";
import {
  AzurePipelinesCredential,
  ClientCertificateCredential,
  ClientSecretCredential,
  ManagedIdentityCredential,
  type TokenCredential,
} from "@azure/identity";
import sinon from "sinon";
import { APP_CERTIFICATE_PATH, STANDIN_DEFAULTS, startAll, type Standins, type TokenScheme } from "./index";

const { tenantId, clientId, clientSecret, resourceGroup, serviceConnectionId, jobToken, project } =
  STANDIN_DEFAULTS;

/** Sets environment variables for one test and restores them afterwards. */
function withEnvironment(variables: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]));
  Object.assign(process.env, variables);
  return () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

describe("Entra ID stand-in", () => {
  let standins: Standins;
  let restoreEnvironment: (() => void) | undefined;

  beforeEach(async () => {
    // AzurePipelinesCredential refuses to send the job token over http, so the collection URL is https here.
    standins = await startAll({ devops: { protocol: "https" } });
  });

  afterEach(async () => {
    restoreEnvironment?.();
    restoreEnvironment = undefined;
    sinon.restore();
    await standins.close();
  });

  function options(): { authorityHost: string; disableInstanceDiscovery: true } {
    return { authorityHost: standins.entra.url, disableInstanceDiscovery: true };
  }

  async function reachArm(credential: TokenCredential): Promise<unknown> {
    const client = new ContainerInstanceManagementClient(credential, standins.arm.subscriptionId, {
      endpoint: standins.arm.url,
    });
    for await (const group of client.containerGroups.listByResourceGroup(resourceGroup))
      assert.fail(`unexpected ${group.name}`);
    const last = standins.arm.requests.at(-1);
    assert.equal(last?.status, 200);
    return last?.caller;
  }

  function expectedCaller(scheme: TokenScheme, caller: string = clientId): unknown {
    // IMDS takes a resource, not a scope.
    const scope = scheme === "managedIdentity" ? standins.arm.url : `${standins.arm.url}/.default`;
    return { scheme, clientId: caller, tenantId, scope };
  }

  it("issues a token for a client secret that ARM accepts", async () => {
    assert.deepEqual(
      await reachArm(new ClientSecretCredential(tenantId, clientId, clientSecret, options())),
      expectedCaller("clientSecret"),
    );
    assert.deepEqual(
      standins.entra.requests.map((request) => `${request.method} ${request.path}`),
      [`GET /${tenantId}/v2.0/.well-known/openid-configuration`, `POST /${tenantId}/oauth2/v2.0/token`],
    );
  });

  it("rejects a wrong client secret", async () => {
    const credential = new ClientSecretCredential(tenantId, clientId, "wrong", options());
    await assert.rejects(credential.getToken("https://management.azure.com/.default"), /AADSTS7000215/);
  });

  it("verifies a certificate-signed client assertion (PEM with key and certificate)", async () => {
    const credential = new ClientCertificateCredential(
      tenantId,
      clientId,
      { certificatePath: APP_CERTIFICATE_PATH },
      options(),
    );
    assert.deepEqual(await reachArm(credential), expectedCaller("clientCertificate"));
    const form = standins.entra.requests.find((request) => request.method === "POST")?.body as Record<
      string,
      string
    >;
    assert.equal(form.client_assertion_type, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
  });

  it("rejects an assertion signed by a certificate the app does not have", async () => {
    standins.entra.apps[0].certificatePem = readFileSync(`${__dirname}/certs/server-cert.pem`, "utf8");
    const credential = new ClientCertificateCredential(
      tenantId,
      clientId,
      { certificatePath: APP_CERTIFICATE_PATH },
      options(),
    );
    await assert.rejects(credential.getToken("https://management.azure.com/.default"), /AADSTS700027/);
  });

  it("serves managed identity tokens over IMDS at AZURE_POD_IDENTITY_AUTHORITY_HOST, never at 169.254.169.254", async () => {
    restoreEnvironment = withEnvironment({ AZURE_POD_IDENTITY_AUTHORITY_HOST: standins.entra.imdsHost });
    const connect = sinon.spy(net.Socket.prototype, "connect");
    const caller = await reachArm(new ManagedIdentityCredential());
    const hosts = connect.getCalls().map((call) => {
      const [target] = call.args as unknown as [{ host?: string } | number | string];
      return typeof target === "object" && target !== null && !Array.isArray(target)
        ? target.host
        : String(target);
    });
    assert.ok(hosts.length > 0);
    assert.ok(
      hosts.every((host) => host === "127.0.0.1"),
      `connections went to ${hosts.join(", ")}`,
    );
    assert.deepEqual(caller, expectedCaller("managedIdentity", STANDIN_DEFAULTS.managedIdentityClientId));
    const imds = standins.entra.requests.find((request) =>
      request.path.startsWith("/metadata/identity/oauth2/token"),
    );
    assert.equal(imds?.headers.metadata, "true");
    assert.equal(imds?.query["api-version"], "2018-02-01");
    assert.equal(imds?.query.resource, standins.arm.url);
  });

  it("exchanges an Azure DevOps OIDC token for the service connection (workload identity federation)", async () => {
    restoreEnvironment = withEnvironment({ SYSTEM_OIDCREQUESTURI: standins.devops.oidcRequestUri(project) });
    const credential = new AzurePipelinesCredential(
      tenantId,
      clientId,
      serviceConnectionId,
      jobToken,
      options(),
    );
    assert.deepEqual(await reachArm(credential), expectedCaller("workloadIdentityFederation"));
    const oidcRequest = standins.devops.requests.find((request) => request.path.endsWith("/oidctoken"));
    assert.deepEqual(oidcRequest?.query, { "api-version": "7.1", serviceConnectionId });
    assert.equal(
      standins.devops.issuedOidcTokens[0].claims.sub,
      `sc://myorg/${project}/${STANDIN_DEFAULTS.serviceConnectionName}`,
    );
  });

  it("refuses an OIDC token for a service connection the app does not federate with", async () => {
    standins.devops.serviceConnections.push({ id: "other-connection", name: "other", project });
    restoreEnvironment = withEnvironment({ SYSTEM_OIDCREQUESTURI: standins.devops.oidcRequestUri(project) });
    const credential = new AzurePipelinesCredential(
      tenantId,
      clientId,
      "other-connection",
      jobToken,
      options(),
    );
    await assert.rejects(credential.getToken("https://management.azure.com/.default"), /AADSTS700213/);
  });

  it("refuses the OIDC request without a valid Azure DevOps token", async () => {
    restoreEnvironment = withEnvironment({ SYSTEM_OIDCREQUESTURI: standins.devops.oidcRequestUri(project) });
    const credential = new AzurePipelinesCredential(
      tenantId,
      clientId,
      serviceConnectionId,
      "bogus",
      options(),
    );
    await assert.rejects(credential.getToken("https://management.azure.com/.default"));
    assert.equal(standins.devops.requests.at(-1)?.status, 401);
  });
});

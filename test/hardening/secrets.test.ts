import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import Docker from "dockerode";
import { ensureBusyboxImage } from "../e2e/busybox";
import { requireDockerEngine } from "../e2e/engine";
import { dockerAvailable } from "../../standins/images";
import { ENV, TAG } from "../../tasks/common/core/contract";
import { createStandbyPool, poolReady } from "../../standins/standbyPoolSetup";
import { STANDIN_DEFAULTS, type RecordedRequest } from "../../standins";
import {
  ARM_CONNECTION,
  appCertificateParts,
  dockerHostConnectionVariables,
  registryConnectionVariables,
  runTask,
  startStandins,
  taskEnvironment,
  type AuthScheme,
  type Standins,
  type TaskRun,
  ensureBundles,
} from "../../standins/taskProcess";

// Runs start and teardown with recognisable secrets and looks for them in everything the tasks leave behind:
// their output, output variables and summaries, every request Resource Manager and Azure DevOps receive
// (less the fields made to carry secrets), and the containers the docker provider launches.

const { poolName, resourceGroup, tenantId, clientId } = STANDIN_DEFAULTS;
const REGISTRY = "myregistry.azurecr.io";
const REGISTRY_CONNECTION = "registry-connection";
/** A busybox image that waits until stopped; tagged with the registry so that the registry connection fits. */
const DOCKER_IMAGE = `${REGISTRY}/ephemeral-agents-test-secrets:1`;
const IDENTITIES = `/subscriptions/${STANDIN_DEFAULTS.subscriptionId}/resourceGroups/identities/providers/Microsoft.ManagedIdentity/userAssignedIdentities`;
const REGISTRY_IDENTITY = `${IDENTITIES}/acr-pull`;
const JOB_IDENTITY = `${IDENTITIES}/acr-push`;
const IMAGE_SCRIPT = "trap 'exit 143' TERM; sleep 600 & wait $!";

interface Scenario {
  title: string;
  provider: "aci" | "docker";
  scheme?: AuthScheme;
  registry: boolean;
  /** The registration token comes through the token input instead of the job's access token. */
  pat: boolean;
  /** aci: the image is pulled with registryIdentity, and the container group carries a jobIdentity too. */
  identities?: boolean;
  /** aci: the agents' containers are claimed from a standby pool (a warm start). */
  standby?: boolean;
  /** docker: the containers get the engine's socket (shareDockerEngine). */
  shareEngine?: boolean;
}

const SCENARIOS: Scenario[] = [
  {
    title: "aci, service principal secret, registry password, PAT",
    provider: "aci",
    scheme: "servicePrincipalSecret",
    registry: true,
    pat: true,
  },
  {
    title: "aci, service principal certificate",
    provider: "aci",
    scheme: "servicePrincipalCertificate",
    registry: true,
    pat: false,
  },
  {
    title: "aci, workload identity federation, registry and job identities",
    provider: "aci",
    scheme: "workloadIdentityFederation",
    registry: false,
    pat: false,
    identities: true,
  },
  {
    title: "aci, warm start from a standby pool, service principal secret, PAT",
    provider: "aci",
    scheme: "servicePrincipalSecret",
    registry: false,
    pat: true,
    standby: true,
  },
  {
    title: "docker on the local engine, registry password, PAT",
    provider: "docker",
    registry: true,
    pat: true,
  },
  {
    title: "docker sharing the engine with the jobs, registry password, PAT",
    provider: "docker",
    registry: true,
    pat: true,
    shareEngine: true,
  },
];

interface ScenarioSecrets {
  servicePrincipalSecret: string;
  jobToken: string;
  pat: string;
  registryPassword: string;
}

function newSecrets(): ScenarioSecrets {
  const random = () => randomBytes(12).toString("hex");
  return {
    servicePrincipalSecret: `SECRET-sp-${random()}`,
    jobToken: `SECRET-job-${random()}`,
    pat: `SECRET-pat-${random()}`,
    registryPassword: `SECRET-reg-${random()}`,
  };
}

/** A labelled secret value and a labelled place it must not be found in. */
interface Named {
  name: string;
  value: string;
}

function findings(secrets: readonly Named[], places: readonly Named[]): string[] {
  const found: string[] = [];
  for (const place of places) {
    for (const secret of secrets) {
      if (place.value.includes(secret.value)) found.push(`${secret.name} in ${place.name}`);
    }
  }
  return found;
}

/** The private key's base64 lines: each alone would give a part of the key away. */
function privateKeyLines(): Named[] {
  return appCertificateParts()
    .key.split("\n")
    .filter((line) => line.length >= 16 && !line.startsWith("-----"))
    .map((line, index) => ({ name: `certificate private key line ${index + 1}`, value: line }));
}

/** The private parts of an agent's .credentials_rsaparams file: the file itself and each private field. */
function privateKeyParts(agentName: string, rsaParametersFile: string): Named[] {
  const parameters = JSON.parse(rsaParametersFile) as Record<string, string>;
  return [
    { name: `the key file of agent ${agentName}`, value: rsaParametersFile },
    ...["d", "p", "q", "dp", "dq", "inverseQ"].map((field) => ({
      name: `private key field ${field} of agent ${agentName}`,
      value: parameters[field],
    })),
  ];
}

/** A copy of an ARM request body without the fields that exist to carry secrets. */
function withoutSecureFields(body: unknown, isRegistryCredential = false): unknown {
  if (Array.isArray(body)) return body.map((item) => withoutSecureFields(item, isRegistryCredential));
  if (typeof body !== "object" || body === null) return body;
  return Object.fromEntries(
    Object.entries(body)
      .filter(([key]) => key !== "secureValue" && !(isRegistryCredential && key === "password"))
      .map(([key, value]) => [key, withoutSecureFields(value, key === "imageRegistryCredentials")]),
  );
}

function requestPlaces(service: string, requests: readonly RecordedRequest[], strip: boolean): Named[] {
  return requests.map((request, index) => ({
    name: `${service} request #${index + 1} (${request.method} ${request.path})`,
    value: JSON.stringify({
      path: request.path,
      query: request.query,
      headers: request.headers,
      body: strip ? withoutSecureFields(request.body) : request.body,
    }),
  }));
}

function runPlaces(label: string, run: TaskRun): Named[] {
  return [
    { name: `${label} stdout`, value: run.stdout.replace(/^##vso\[task\.setsecret\].*$/gm, "") },
    { name: `${label} stderr`, value: run.stderr },
    { name: `${label} output variables`, value: JSON.stringify(run.outputs) },
    ...run.summaries.map((summary, index) => ({
      name: `${label} job summary #${index + 1}`,
      value: summary,
    })),
  ];
}

function printed(run: TaskRun): string {
  return `\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
}

const docker = new Docker();

async function eventually(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function ensureDockerImage(): Promise<void> {
  return ensureBusyboxImage(docker, {
    image: DOCKER_IMAGE,
    script: IMAGE_SCRIPT,
    commands: ["sh", "sleep", "cat"],
    tokenDirectory: true,
  });
}

describe("secret hygiene: no secret leaves the places made for it", function () {
  this.timeout(120_000);
  let standins: Standins;
  let runKey: string;
  let secrets: ScenarioSecrets;

  before(() => ensureBundles());
  beforeEach(async () => {
    secrets = newSecrets();
    runKey = `secrets-${randomBytes(4).toString("hex")}`;
    standins = await startStandins();
    standins.entra.apps[0].secret = secrets.servicePrincipalSecret;
    // Only the scenario's tokens open Azure DevOps, so that no default token can stand in for them.
    standins.devops.tokens.splice(
      0,
      standins.devops.tokens.length,
      {
        token: secrets.jobToken,
        identity: { displayName: "Project Collection Build Service (myorg)" },
        poolRights: { [poolName]: "manage" },
      },
      {
        token: secrets.pat,
        identity: { displayName: "Pool Administrator" },
        poolRights: { [poolName]: "manage" },
      },
    );
  });
  afterEach(async () => {
    await standins.close();
    if (!(await dockerAvailable())) return;
    const leftovers = await docker.listContainers({
      all: true,
      filters: { label: [`${TAG.runKey}=${runKey}`] },
    });
    await Promise.all(
      leftovers.map((container) => docker.getContainer(container.Id).remove({ force: true })),
    );
  });

  function environment(scenario: Scenario, inputs: Record<string, string>): NodeJS.ProcessEnv {
    const extra: Record<string, string> = {};
    if (scenario.scheme === "servicePrincipalSecret") {
      extra[`ENDPOINT_AUTH_${ARM_CONNECTION}`] = JSON.stringify({
        scheme: "ServicePrincipal",
        parameters: {
          tenantid: tenantId,
          serviceprincipalid: clientId,
          authenticationType: "spnKey",
          serviceprincipalkey: secrets.servicePrincipalSecret,
        },
      });
    }
    if (scenario.registry) {
      Object.assign(
        extra,
        registryConnectionVariables(REGISTRY_CONNECTION, {
          server: REGISTRY,
          username: "puller",
          password: secrets.registryPassword,
        }),
      );
    }
    const common: Record<string, string> = { agentPool: poolName, runKey, provider: scenario.provider };
    if (scenario.pat) common.token = secrets.pat;
    if (scenario.provider === "aci") {
      Object.assign(common, { connectedServiceNameARM: ARM_CONNECTION, resourceGroup });
    }
    return taskEnvironment(standins, {
      scheme: scenario.scheme,
      jobToken: secrets.jobToken,
      inputs: { ...common, ...inputs },
      extra,
    });
  }

  /**
   * Stands in for the agent inside each docker container: brings it online once the start task has registered it
   * with its own credential.
   */
  function registerAgentsOnLaunch(): (stdout: string) => void {
    const online = new Set<string>();
    return (stdout) => {
      const launching = /^Launching \d+ agent\(s\) for pool '[^']+' on .*: (.+)$/m.exec(stdout);
      for (const name of launching?.[1].split(", ") ?? []) {
        if (online.has(name) || !standins.devops.agent(poolName, name)) continue;
        online.add(name);
        standins.devops.simulateAgent.online(poolName, name);
      }
    };
  }

  async function dockerInspections(names: readonly string[]): Promise<Named[]> {
    return Promise.all(
      names.map(async (name) => ({
        name: `docker inspect ${name}`,
        value: JSON.stringify(await docker.getContainer(name).inspect()),
      })),
    );
  }

  it("docker host connection with a client key and shareDockerEngine: refused, the key nowhere", async () => {
    const connection = "docker-host-connection";
    const { key, certificate } = appCertificateParts();
    const start = await runTask(
      "StartEphemeralAgentV1",
      taskEnvironment(standins, {
        jobToken: secrets.jobToken,
        inputs: {
          provider: "docker",
          dockerEndpoint: connection,
          shareDockerEngine: "true",
          image: DOCKER_IMAGE,
          pullPolicy: "never",
          agentPool: poolName,
          runKey,
        },
        extra: dockerHostConnectionVariables(connection, "tcp://127.0.0.1:1", {
          cacert: certificate,
          cert: certificate,
          key,
        }),
      }),
    );
    assert.equal(start.result?.status, "Failed", printed(start));
    assert.match(start.result?.message ?? "", /Input 'shareDockerEngine'.*reached over the network/);
    const leaks = findings(privateKeyLines(), [
      ...runPlaces("start", start),
      ...requestPlaces("Azure DevOps", standins.devops.requests, false),
    ]);
    assert.deepEqual(leaks, [], `secrets found where they do not belong:\n${leaks.join("\n")}`);
  });

  for (const scenario of SCENARIOS) {
    it(`${scenario.title}: start and teardown leak nothing`, async function () {
      if (scenario.provider === "docker") {
        await requireDockerEngine(this);
        await ensureDockerImage();
      }
      const startInputs: Record<string, string> = {
        image: scenario.provider === "docker" ? DOCKER_IMAGE : `${REGISTRY}/ephemeral-agent:1`,
        count: "2",
      };
      if (scenario.registry) startInputs.registryConnection = REGISTRY_CONNECTION;
      if (scenario.identities) {
        Object.assign(startInputs, { registryIdentity: REGISTRY_IDENTITY, jobIdentity: JOB_IDENTITY });
      }
      if (scenario.provider === "docker") startInputs.pullPolicy = "ifNotPresent";
      if (scenario.standby) {
        const pool = await createStandbyPool(standins, {
          image: startInputs.image,
          readyCapacity: 2,
          clientSecret: secrets.servicePrincipalSecret,
        });
        await poolReady(standins, pool.poolId, 2);
        startInputs.standbyPool = pool.poolId;
      }
      if (scenario.shareEngine) startInputs.shareDockerEngine = "true";
      const start = await runTask(
        "StartEphemeralAgentV1",
        environment(scenario, startInputs),
        scenario.provider === "docker" ? { onStdout: registerAgentsOnLaunch() } : {},
      );
      assert.equal(start.result?.status, "Succeeded", printed(start));
      const names = start.outputs.agentNames.split(",");

      const places: Named[] = [...runPlaces("start", start)];
      // The default registration, agentCredential: each container holds only its agent's own credential files.
      const agentKeys: Named[] = [];
      if (scenario.provider === "docker") {
        places.push(...(await dockerInspections(names)));
        for (const name of names) {
          const { Mounts } = await docker.getContainer(name).inspect();
          assert.deepEqual(
            Mounts.map((mount) => mount.Destination),
            scenario.shareEngine ? ["/var/run/docker.sock"] : [],
            `mounts of ${name}: the engine's socket only when shared, never a host Docker configuration`,
          );
          const modes = execFileSync(
            "docker",
            ["exec", name, "sh", "-c", "stat -c '%a %u %n' /azp/agent-credential/.*[a-z]*"],
            {
              encoding: "utf8",
            },
          );
          assert.equal(
            modes,
            [".agent", ".credentials", ".credentials_rsaparams"]
              .map((file) => `600 1000 /azp/agent-credential/${file}\n`)
              .join(""),
            "the agent's own credential files, private to the agent's user",
          );
          const keyFile = execFileSync(
            "docker",
            ["exec", name, "cat", "/azp/agent-credential/.credentials_rsaparams"],
            {
              encoding: "utf8",
            },
          );
          agentKeys.push(...privateKeyParts(name, keyFile));
          const secretFiles = execFileSync(
            "docker",
            ["exec", name, "sh", "-c", 'for file in $(find /azp -type f); do cat "$file"; done'],
            {
              encoding: "utf8",
            },
          );
          for (const token of [secrets.pat, secrets.jobToken])
            assert.ok(
              !secretFiles.includes(token),
              `a registration token is in a file under /azp in ${name}`,
            );
        }
      } else {
        // A claimed container made its key itself: the task never had the private half (test/e2e checks it stays in).
        for (const name of scenario.standby ? [] : names) {
          const encoded = standins.arm.containerGroup(name)?.environment[ENV.agentCredential] ?? "";
          const files = JSON.parse(Buffer.from(encoded, "base64").toString("utf8")) as Record<string, string>;
          agentKeys.push(...privateKeyParts(name, files[".credentials_rsaparams"]));
        }
        // Each agent runs one job, as the pipeline's next job would have it do.
        for (const name of names) {
          const job = standins.devops.queueJob({ poolName, demands: { [ENV.runKey]: runKey } });
          assert.ok(job.assignTime, `the job meant for ${name} was assigned`);
          // The simulated agent takes its job on a timer; finishing the job before would unregister it first.
          await eventually(() => job.receiveTime !== undefined, "the agent received its job");
          standins.devops.finishJob(job.requestId);
        }
      }

      const teardown = await runTask(
        "TeardownEphemeralAgentV1",
        environment(scenario, {
          awaitTimeoutMinutes: "0.5",
          gracePeriodSeconds: "2",
          agentNames: names.join(","),
        }),
      );
      assert.match(teardown.result?.status ?? "", /^Succeeded/, printed(teardown));
      places.push(...runPlaces("teardown", teardown));
      places.push(...requestPlaces("Resource Manager", standins.arm.requests, true));
      places.push(...requestPlaces("Azure DevOps", standins.devops.requests, false));

      const entraBodies = standins.entra.requests.map(
        (request) => request.body as Record<string, string> | undefined,
      );
      const assertions = entraBodies.flatMap((body) =>
        body?.client_assertion ? [body.client_assertion] : [],
      );
      const known: Named[] = [
        ...agentKeys,
        { name: "the service principal secret", value: secrets.servicePrincipalSecret },
        { name: "the job access token", value: secrets.jobToken },
        { name: "the PAT", value: secrets.pat },
        { name: "the registry password", value: secrets.registryPassword },
        ...privateKeyLines(),
        ...standins.devops.issuedOidcTokens.map((token, index) => ({
          name: `OIDC token #${index + 1}`,
          value: token.oidcToken,
        })),
        ...assertions.map((assertion, index) => ({
          name: `client assertion #${index + 1}`,
          value: assertion,
        })),
        ...standins.entra.issuedTokens.map((token, index) => ({
          name: `Entra access token #${index + 1}`,
          value: token.accessToken,
        })),
      ];
      const leaks = findings(known, places);
      assert.deepEqual(leaks, [], `secrets found where they do not belong:\n${leaks.join("\n")}`);

      // The scan above only means something if the secrets were in play: check they went where they belong.
      const masked = (run: TaskRun, value: string) => run.stdout.includes(`##vso[task.setsecret]${value}`);
      const registrationToken = scenario.pat ? secrets.pat : secrets.jobToken;
      assert.ok(masked(start, registrationToken), "the start task registers the token for masking");
      if (scenario.registry) assert.ok(masked(start, secrets.registryPassword), "registry password masked");
      if (scenario.standby) {
        const puts = standins.arm.requests.filter(
          (request) => request.method === "PUT" && /\/containerGroups\//.test(request.path),
        );
        assert.equal(puts.length, 4, "a claim and a config map update per agent");
        for (const put of puts) {
          const properties = (put.body as { properties: Record<string, unknown> }).properties;
          assert.deepEqual(Object.keys(properties).sort(), [
            "containerGroupProfile",
            "containers",
            "standbyPoolProfile",
          ]);
        }
        for (const name of names) {
          const update = puts.filter((put) => put.path.endsWith(`/${name}`)).at(-1)?.body as {
            properties: { containers: { properties: { configMap: { keyValuePairs: object } } }[] };
          };
          assert.deepEqual(
            Object.keys(update.properties.containers[0].properties.configMap.keyValuePairs).sort(),
            ["agent", "credentials", "environment"],
          );
        }
      } else if (scenario.provider === "aci") {
        assert.ok(standins.arm.requests.length > 0, "Resource Manager was called");
        const group = standins.arm.requests.find((request) => request.method === "PUT")?.body as {
          properties: {
            containers: { properties: { environmentVariables: { name: string; secureValue?: string }[] } }[];
            imageRegistryCredentials?: { password?: string }[];
          };
          identity?: { userAssignedIdentities: Record<string, object> };
        };
        const variables = group.properties.containers[0].properties.environmentVariables;
        assert.ok(
          !JSON.stringify(group).includes(registrationToken),
          "no registration token in the container group, not even as a secure value",
        );
        const credential = variables.find((variable) => variable.name === ENV.agentCredential);
        assert.ok(credential?.secureValue, "the agent's own credential reaches ACI as a secure value");
        if (scenario.registry) {
          assert.equal(group.properties.imageRegistryCredentials?.[0].password, secrets.registryPassword);
        }
        if (scenario.identities) {
          assert.deepEqual(Object.keys(group.identity?.userAssignedIdentities ?? {}), [
            REGISTRY_IDENTITY,
            JOB_IDENTITY,
          ]);
          assert.ok(
            standins.arm.requests.some((request) => request.path.startsWith(`${JOB_IDENTITY}/providers/`)),
            "the job identity's permissions were read",
          );
        }
      }
      if (scenario.provider === "aci") {
        const schemes = standins.entra.requests.map(
          (request) => (request.caller as { scheme?: string })?.scheme,
        );
        if (scenario.scheme === "servicePrincipalSecret") {
          assert.ok(masked(start, secrets.servicePrincipalSecret), "client secret masked");
          assert.ok(entraBodies.some((body) => body?.client_secret === secrets.servicePrincipalSecret));
        }
        if (scenario.scheme === "servicePrincipalCertificate")
          assert.ok(schemes.includes("clientCertificate"));
        if (scenario.scheme === "workloadIdentityFederation") {
          assert.ok(standins.devops.issuedOidcTokens.length > 0, "an OIDC token was issued");
          assert.ok(schemes.includes("workloadIdentityFederation"));
        }
      }
    });
  }
});

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { connect, type AddressInfo, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import Docker from "dockerode";
import sinon from "sinon";
import { TAG, agentEnvironment, tagsFor, type AgentIdentity } from "../../tasks/common/core/contract";
import { InputError, UserError } from "../../tasks/common/core/errors";
import {
  DockerProvider,
  createDockerClient,
  engineAddress,
  statusOfInspected,
  statusOfListed,
  type DockerSettings,
} from "../../tasks/common/providers/docker/dockerProvider";
import type { AgentContainerSpec, ContainerStatus } from "../../tasks/common/core/ports";
import { ensureBusyboxImage } from "../e2e/busybox";
import { execIn } from "../e2e/containers";
import { requireDockerEngine } from "../e2e/engine";
import { dockerAvailable } from "../../standins/images";
import { APP_CERTIFICATE_PATH, CA_CERT_PATH, serverTlsOptions } from "../../standins/tls";

// Runs against the Docker engine of this machine. No registry is reachable, so the agent image is a busybox
// root file system imported locally; its entrypoint reports on the token file and exits as told.
const TEST_IMAGE = "ephemeral-agents-test-busybox:1";
/** The same without the /azp directory the token goes to. */
const IMAGE_WITHOUT_TOKEN_DIRECTORY = "ephemeral-agents-test-busybox-bare:1";
const BUSYBOX_COMMANDS = ["sh", "cat", "sleep", "echo", "stat", "sha256sum", "cut", "test"];
const ENTRYPOINT_SCRIPT = [
  "trap 'exit 143' TERM",
  'echo "agent $AZP_AGENT_NAME starting"',
  'echo "token file $AZP_TOKEN_FILE: $(stat -c \'%a %u\' "$AZP_TOKEN_FILE") $(sha256sum < "$AZP_TOKEN_FILE" | cut -d " " -f 1)"',
  'echo "agent $AZP_AGENT_NAME on stderr" >&2',
  'sleep "${TEST_SLEEP:-0}" & wait $!',
  'exit "${TEST_EXIT_CODE:-0}"',
].join("; ");

const runId = randomBytes(4).toString("hex");
const pool = `docker-test-${runId}`;
const network = `docker-test-${runId}`;
const docker = new Docker();
let nameCounter = 0;

function identity(agentPool = pool): AgentIdentity {
  nameCounter += 1;
  return {
    name: `docker-test-${runId}-${nameCounter}`,
    pool: agentPool,
    runKey: runId,
    created: new Date(Math.floor(Date.now() / 1000) * 1000),
    lifetimeMinutes: 30,
  };
}

function spec(
  agent: AgentIdentity,
  extra: Record<string, string> = {},
): AgentContainerSpec & { token: string } {
  return {
    identity: agent,
    image: TEST_IMAGE,
    environment: agentEnvironment(agent, "https://dev.azure.com/test-org", extra),
    token: `token-${randomBytes(16).toString("hex")}`,
  };
}

function provider(settings: Partial<DockerSettings> = {}, client = new Docker()): DockerProvider {
  return new DockerProvider(
    { connection: { kind: "local" }, image: TEST_IMAGE, pullPolicy: "never", ...settings },
    client,
  );
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      assert.fail(`timed out waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function ourContainers(): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${TAG.runKey}=${runId}`] } });
}

function ensureTestImage(image: string, withTokenDirectory: boolean): Promise<void> {
  return ensureBusyboxImage(docker, {
    image,
    script: ENTRYPOINT_SCRIPT,
    commands: BUSYBOX_COMMANDS,
    tokenDirectory: withTokenDirectory,
  });
}

/** Runs a busybox applet in a running test container as its user; returns its output, checking the exit code. */
async function exec(name: string, command: string[], expectedExitCode = 0): Promise<string> {
  const { exitCode, output } = await execIn(name, ["/bin/busybox", ...command]);
  assert.equal(exitCode, expectedExitCode, `${command.join(" ")}: ${output}`);
  return output;
}

async function logsOf(subject: DockerProvider, name: string, needle: string): Promise<string> {
  return eventually(
    () => subject.logs(name),
    (text) => text.includes(needle),
    `'${needle}' in the log of ${name}`,
  );
}

describe("DockerProvider against the local Docker engine", function () {
  this.timeout(60_000);

  before(async function () {
    await requireDockerEngine(this);
    await ensureTestImage(TEST_IMAGE, true);
    await ensureTestImage(IMAGE_WITHOUT_TOKEN_DIRECTORY, false);
    await docker.createNetwork({ Name: network, Labels: { [TAG.runKey]: runId } });
  });

  afterEach(async function () {
    await Promise.all(
      (await ourContainers()).map((container) => docker.getContainer(container.Id).remove({ force: true })),
    );
    assert.deepEqual(await ourContainers(), [], "containers left behind");
  });

  after(async function () {
    if (await dockerAvailable()) await docker.getNetwork(network).remove();
  });

  it("prepares with a present image and describes the engine", async function () {
    const subject = provider({ network });
    await subject.prepare();
    assert.match(subject.description, new RegExp(`^Docker engine at unix://\\S+ \\(network ${network}\\)$`));
  });

  it("creates a labelled container whose token is a file for the agent user, never in inspect", async function () {
    const subject = provider({ network });
    const agent = identity();
    const agentSpec = spec(agent, { TEST_SLEEP: "30" });
    await subject.create(agentSpec);

    const inspected = await docker.getContainer(agent.name).inspect();
    assert.equal(inspected.Name, `/${agent.name}`);
    assert.deepEqual(inspected.Config.Labels, tagsFor(agent));
    assert.ok(inspected.Config.Env.includes("AZP_TOKEN_FILE=/azp/.token"));
    assert.ok(inspected.Config.Env.includes(`AZP_AGENT_NAME=${agent.name}`));
    assert.ok(inspected.Config.Env.includes("TEST_SLEEP=30"));
    assert.ok(!inspected.Config.Env.some((variable) => variable.startsWith("AZP_TOKEN=")));
    assert.equal(inspected.HostConfig.NetworkMode, network);
    assert.equal(inspected.HostConfig.AutoRemove, false);
    assert.equal(inspected.HostConfig.RestartPolicy?.Name, "no");
    assert.ok(!JSON.stringify(inspected).includes(agentSpec.token), "the token shows in docker inspect");

    const tokenHash = createHash("sha256").update(agentSpec.token).digest("hex");
    const log = await logsOf(subject, agent.name, "token file");
    assert.match(log, new RegExp(`token file /azp/\\.token: 600 1000 ${tokenHash}`));
    assert.ok(!log.includes(agentSpec.token));
  });

  it("gives each container its own empty DOCKER_CONFIG and, without shareEngine, no socket and no host configuration", async function () {
    const subject = provider();
    await subject.prepare();
    const agent = identity();
    await subject.create(spec(agent, { TEST_SLEEP: "30" }));

    const inspected = await docker.getContainer(agent.name).inspect();
    assert.ok(inspected.Config.Env.includes("DOCKER_CONFIG=/azp/.docker"));
    assert.deepEqual(inspected.Mounts, [], "mounts");
    assert.equal(inspected.HostConfig.Binds, null, "binds");
    assert.equal(inspected.HostConfig.GroupAdd, null, "supplementary groups");
    assert.deepEqual(inspected.HostConfig.Tmpfs, { "/azp/.docker": "uid=1000,gid=1000,mode=0700" });
    await logsOf(subject, agent.name, "token file");
    assert.equal(await exec(agent.name, ["stat", "-c", "%a %u %g", "/azp/.docker"]), "700 1000 1000\n");
    assert.equal(await exec(agent.name, ["ls", "-A", "/azp/.docker"]), "");
    assert.equal(await exec(agent.name, ["test", "-e", "/var/run/docker.sock"], 1), "");
  });

  it("with shareEngine mounts the engine's socket for the agent user's group, after a warning", async function () {
    const warnings: string[] = [];
    const log = {
      info: () => undefined,
      warn: (message: string) => warnings.push(message),
      group: () => undefined,
    };
    const subject = provider({ shareEngine: true, log });
    await subject.prepare();
    const socketPath = engineAddress({ kind: "local" }).replace(/^unix:\/\//, "");
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0],
      /shareDockerEngine: .*is root on this host.*otherwise give the builds a separate engine/,
    );

    const agent = identity();
    await subject.create(spec(agent, { TEST_SLEEP: "30" }));
    const inspected = await docker.getContainer(agent.name).inspect();
    const groupId = String(statSync(socketPath).gid);
    assert.deepEqual(inspected.HostConfig.Binds, [`${socketPath}:/var/run/docker.sock`]);
    assert.deepEqual(inspected.HostConfig.GroupAdd, [groupId]);
    assert.ok(inspected.Config.Env.includes("DOCKER_CONFIG=/azp/.docker"));
    await logsOf(subject, agent.name, "token file");
    assert.ok((await exec(agent.name, ["id", "-G"])).trim().split(" ").includes(groupId));
    assert.equal(await exec(agent.name, ["test", "-S", "/var/run/docker.sock"]), "");
  });

  it("polls the states of several containers with one request", async function () {
    const client = new Docker();
    const subject = provider({}, client);
    const running = identity();
    const exited = identity();
    await subject.create(spec(running, { TEST_SLEEP: "30" }));
    await subject.create(spec(exited, { TEST_EXIT_CODE: "3" }));
    await eventually(
      () => subject.status(exited.name),
      (status) => status.state === "exited",
      "the exit",
    );

    const requests = sinon.spy(client.modem, "dial");
    const missing = `docker-test-${runId}-missing`;
    const statuses = await subject.pollStatuses([running.name, exited.name, missing]);
    assert.equal(requests.callCount, 1);
    assert.deepEqual(statuses.get(running.name), { state: "running" });
    // Times are the timeline's (tested there); here only the states.
    const stateOf = (status?: ContainerStatus) =>
      status && { state: status.state, exitCode: status.exitCode };
    assert.deepEqual(stateOf(statuses.get(exited.name)), { state: "exited", exitCode: 3 });
    assert.deepEqual(statuses.get(missing), { state: "missing" });
    assert.deepEqual(stateOf(await subject.status(exited.name)), { state: "exited", exitCode: 3 });
  });

  it("reads the log of stdout and stderr as text", async function () {
    const subject = provider();
    const agent = identity();
    await subject.create(spec(agent));
    await eventually(
      () => subject.status(agent.name),
      (status) => status.state === "exited",
      "the exit",
    );
    const log = await subject.logs(agent.name);
    // Docker keeps no order between the two streams: both lines must be there, in either order.
    assert.ok(log.includes(`agent ${agent.name} starting\n`), log);
    assert.ok(log.includes(`agent ${agent.name} on stderr\n`), log);
    assert.equal(await subject.logs(`docker-test-${runId}-missing`), "");
  });

  it("removes a running container once, then reports it gone", async function () {
    const subject = provider();
    const agent = identity();
    await subject.create(spec(agent, { TEST_SLEEP: "30" }));
    await eventually(
      () => subject.status(agent.name),
      (status) => status.state === "running",
      "the start",
    );
    assert.equal(await subject.remove(agent.name), true);
    assert.equal(await subject.remove(agent.name), false);
    assert.deepEqual(await subject.status(agent.name), { state: "missing" });
  });

  it("lists the containers of one pool by their labels", async function () {
    const subject = provider();
    const first = identity();
    const second = identity();
    const elsewhere = identity(`${pool}-other`);
    for (const agent of [first, second, elsewhere]) await subject.create(spec(agent));
    const listed = await subject.list(pool);
    const byName = (left: AgentIdentity, right: AgentIdentity) => left.name.localeCompare(right.name);
    assert.deepEqual(
      listed.map((container) => container.identity).sort(byName),
      [first, second].sort(byName),
    );
  });

  it("refuses a second container of the same name", async function () {
    const subject = provider();
    const agent = identity();
    await subject.create(spec(agent));
    await assert.rejects(subject.create(spec(agent)), (error: Error) => {
      assert.ok(error instanceof UserError);
      assert.match(error.message, new RegExp(`container named ${agent.name} already exists`));
      return true;
    });
  });

  it("names the image when it has no directory for the token, removing the container", async function () {
    const agent = identity();
    await assert.rejects(
      provider().create({ ...spec(agent), image: IMAGE_WITHOUT_TOKEN_DIRECTORY }),
      (error: Error) => {
        assert.ok(error instanceof InputError);
        assert.equal(error.input, "image");
        assert.match(error.message, /has no \/azp directory/);
        return true;
      },
    );
    assert.deepEqual(await ourContainers(), []);
  });

  it("fails before creating anything when pullPolicy is never and the image is missing", async function () {
    const image = `ephemeral-agents-test-missing:${runId}`;
    await assert.rejects(provider({ image, pullPolicy: "never" }).prepare(), (error: Error) => {
      assert.ok(error instanceof InputError);
      assert.equal(error.input, "pullPolicy");
      assert.match(
        error.message,
        new RegExp(`image '${image}' is not on the Docker host .* pullPolicy is never`),
      );
      return true;
    });
    assert.deepEqual(await ourContainers(), []);
  });

  it("names dockerNetwork when the network does not exist", async function () {
    const missingNetwork = `docker-test-${runId}-missing`;
    await assert.rejects(provider({ network: missingNetwork }).prepare(), (error: Error) => {
      assert.ok(error instanceof InputError);
      assert.equal(error.input, "dockerNetwork");
      assert.match(error.message, new RegExp(`network '${missingNetwork}' does not exist`));
      return true;
    });
  });

  it("reports a failed pull clearly and quickly, sending the registry credentials", async function () {
    const client = new Docker();
    const requests = sinon.spy(client.modem, "dial");
    const image = "127.0.0.1:1/ephemeral-agents/missing:1";
    const registry = { server: "127.0.0.1:1", username: "puller", password: "pull-secret" };
    const started = Date.now();
    await assert.rejects(
      provider({ image, pullPolicy: "ifNotPresent", registry }, client).prepare(),
      (error: Error) => {
        assert.ok(error instanceof UserError);
        assert.ok(!(error instanceof InputError));
        assert.match(
          error.message,
          /could not pull image '127\.0\.0\.1:1\/ephemeral-agents\/missing:1': .*refused/,
        );
        assert.ok(!error.message.includes(registry.password));
        return true;
      },
    );
    // A hang guard, not a measurement: the error must come from the refused pull, not from a wait.
    assert.ok(Date.now() - started < 60_000, `took ${Date.now() - started} ms`);
    const pull = requests.getCalls().find((call) => call.args[0].authconfig !== undefined);
    assert.deepEqual(pull?.args[0].authconfig, {
      username: "puller",
      password: "pull-secret",
      serveraddress: "127.0.0.1:1",
    });
  });

  it("names dockerEndpoint quickly when the engine does not answer", async function () {
    const started = Date.now();
    const subject = new DockerProvider({
      connection: { kind: "remote", url: "tcp://127.0.0.1:1" },
      image: TEST_IMAGE,
      pullPolicy: "never",
    });
    assert.equal(subject.description, "Docker engine at tcp://127.0.0.1:1 (default bridge network)");
    await assert.rejects(subject.prepare(), (error: Error) => {
      assert.ok(error instanceof InputError);
      assert.equal(error.input, "dockerEndpoint");
      assert.match(
        error.message,
        /cannot connect to the Docker engine at tcp:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\)/,
      );
      return true;
    });
    // A hang guard, not a measurement: a refused connection fails at once, not at the 10 s ping timeout.
    assert.ok(Date.now() - started < 9_000, `took ${Date.now() - started} ms`);
  });

  it("names dockerEndpoint when DOCKER_HOST points at no socket", async function () {
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = `unix:///tmp/docker-test-${runId}-missing.sock`;
    try {
      await assert.rejects(provider().prepare(), (error: Error) => {
        assert.ok(error instanceof InputError);
        assert.equal(error.input, "dockerEndpoint");
        assert.match(
          error.message,
          /no Docker engine socket at unix:\/\/\/tmp\/docker-test-\w+-missing\.sock/,
        );
        return true;
      });
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
  });
});

describe("DockerProvider over TLS", function () {
  // A TLS endpoint in front of the local engine's socket, requiring a client certificate, as a Docker host
  // reached through a Docker host service connection would.
  const clientPem = readFileSync(APP_CERTIFICATE_PATH, "utf8");
  const caPem = readFileSync(CA_CERT_PATH, "utf8");
  const connections = new Set<Socket>();
  let endpoint: Server | undefined;
  let port: number;

  before(async function () {
    await requireDockerEngine(this);
    const engineSocket = engineAddress({ kind: "local" }).replace(/^unix:\/\//, "");
    const server = createTlsServer(
      { ...serverTlsOptions(), requestCert: true, rejectUnauthorized: true, ca: clientPem },
      (client) => {
        const engine = connect(engineSocket);
        for (const socket of [client, engine]) {
          connections.add(socket);
          socket.on("error", () => undefined);
          socket.on("close", () => connections.delete(socket));
        }
        client.pipe(engine).pipe(client);
      },
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
    endpoint = server;
  });

  after(async function () {
    for (const socket of connections) socket.destroy();
    if (endpoint) await new Promise((resolve) => endpoint?.close(resolve));
  });

  it("reaches the engine with the connection's CA, client certificate and key", async function () {
    const subject = new DockerProvider({
      connection: {
        kind: "remote",
        url: `tcp://localhost:${port}`,
        ca: caPem,
        cert: clientPem,
        key: clientPem,
      },
      image: TEST_IMAGE,
      pullPolicy: "never",
    });
    await subject.prepare();
    assert.deepEqual(await subject.list(`docker-test-${runId}-tls`), []);
  });

  it("names dockerEndpoint when the TLS handshake fails", async function () {
    const subject = new DockerProvider({
      connection: { kind: "remote", url: `https://localhost:${port}` },
      pullPolicy: "never",
    });
    await assert.rejects(subject.prepare(), (error: Error) => {
      assert.ok(error instanceof InputError);
      assert.equal(error.input, "dockerEndpoint");
      assert.match(
        error.message,
        new RegExp(`TLS handshake with the Docker engine at https://localhost:${port} failed`),
      );
      return true;
    });
  });
});

describe("Docker client and states", function () {
  function modemOf(client: Docker): Record<string, unknown> {
    return client.modem as unknown as Record<string, unknown>;
  }

  it("speaks TLS with the certificates of a Docker host connection", function () {
    const modem = modemOf(
      createDockerClient({
        kind: "remote",
        url: "tcp://docker.example.test:2376",
        ca: "CA PEM",
        cert: "CERT PEM",
        key: "KEY PEM",
      }),
    );
    assert.deepEqual(
      [modem.protocol, modem.host, modem.port, modem.ca, modem.cert, modem.key],
      ["https", "docker.example.test", "2376", "CA PEM", "CERT PEM", "KEY PEM"],
    );
  });

  it("speaks plain HTTP to tcp on 2375 and uses a socket given as unix://", function () {
    const plain = modemOf(createDockerClient({ kind: "remote", url: "tcp://127.0.0.1:2375" }));
    assert.deepEqual([plain.protocol, plain.host, plain.port], ["http", "127.0.0.1", "2375"]);
    const socket = modemOf(createDockerClient({ kind: "remote", url: "unix:///run/user/1000/docker.sock" }));
    assert.equal(socket.socketPath, "/run/user/1000/docker.sock");
  });

  it("rejects an endpoint that is not a Docker address", function () {
    assert.throws(
      () => createDockerClient({ kind: "remote", url: "ftp://host" }),
      (error: Error) => error instanceof InputError && error.input === "dockerEndpoint",
    );
  });

  it("maps the states of the list call", function () {
    assert.deepEqual(statusOfListed({ State: "created", Status: "Created" }), {
      state: "provisioning",
      detail: "created",
    });
    assert.deepEqual(statusOfListed({ State: "exited", Status: "Exited (137) 2 minutes ago" }), {
      state: "exited",
      exitCode: 137,
    });
    assert.deepEqual(statusOfListed({ State: "dead", Status: "Dead" }), { state: "exited", detail: "Dead" });
    assert.deepEqual(statusOfListed({ State: "removing", Status: "Removal In Progress" }), {
      state: "missing",
      detail: "being removed",
    });
  });

  it("reads when an inspected container started and exited, leaving out Go's zero time", function () {
    const state = {
      Status: "exited",
      Running: false,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: 0,
      ExitCode: 0,
      Error: "",
      StartedAt: "2026-12-05T08:10:03.123456789Z",
      FinishedAt: "2026-12-05T08:11:20.5Z",
    };
    assert.deepEqual(statusOfInspected(state), {
      state: "exited",
      exitCode: 0,
      startedAt: new Date("2026-12-05T08:10:03.123Z"),
      finishedAt: new Date("2026-12-05T08:11:20.500Z"),
    });
    const created = {
      ...state,
      Status: "created",
      StartedAt: "0001-01-01T00:00:00Z",
      FinishedAt: "0001-01-01T00:00:00Z",
    };
    assert.deepEqual(statusOfInspected(created), { state: "provisioning", detail: "created" });
    const running = { ...state, Status: "running", FinishedAt: "0001-01-01T00:00:00Z" };
    assert.deepEqual(statusOfInspected(running), {
      state: "running",
      startedAt: new Date("2026-12-05T08:10:03.123Z"),
    });
  });
});

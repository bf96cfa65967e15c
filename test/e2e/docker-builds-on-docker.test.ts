// Builds on the shared Docker engine, end to end: two agents of one run, each started with shareDockerEngine from
// the agent image with the Docker CLI, run a job each at the same time; each job logs in to its own private
// registry with its own secret variable, builds an image with the CLI inside the agent and pushes it. Neither
// agent's Docker configuration ever holds the other's credential, and nothing is left after the teardown.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { ENV } from "../../tasks/common/core/contract";
import type { JobRequest } from "../../standins/devops";
import { buildDockerCliAgentImage, docker } from "../../standins/images";
import { assertNoSecrets } from "../../standins/taskProcess";
import {
  POOL,
  containersOfRun,
  exitCodeOf,
  runBundledTask,
  startInputs,
  teardownInputs,
  waitFor,
} from "../../standins/organization";
import { execIn } from "./containers";
import { EngineRun } from "./engineRun";
import { registryAvailable, startRegistry, type TestRegistry } from "./registry";

const PUSHED_MARKER = "/tmp/pushed";
const RELEASE_MARKER = "/tmp/release";
/** Where the host's own Docker client keeps its logins: the agents must never write there. */
const HOST_DOCKER_CONFIG = `${process.env.HOME ?? "/root"}/.docker/config.json`;

describe("jobs build and push images on the shared Docker engine (real engine, two registries)", function () {
  this.timeout(5 * 60_000);
  const e2e = new EngineRun();
  let cliImage = "";
  const registries: TestRegistry[] = [];
  const pushedImages: string[] = [];

  before(async function () {
    if (!registryAvailable()) {
      if (process.env.CI === "true") throw new Error("CI needs docker-registry and htpasswd (apache2-utils)");
      console.log("SKIPPED: no docker-registry or htpasswd (apt-get install docker-registry apache2-utils)");
      this.skip();
    }
    cliImage = await buildDockerCliAgentImage(e2e.image);
  });

  afterEach(async () => {
    await Promise.all(registries.splice(0).map((registry) => registry.stop()));
    await Promise.all(
      pushedImages.splice(0).map((image) =>
        docker
          .getImage(image)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
  });

  async function dockerConfigOf(container: string): Promise<string> {
    const { exitCode, output } = await execIn(container, ["cat", "/azp/.docker/config.json"]);
    assert.equal(exitCode, 0, `config.json in ${container}: ${output}`);
    return output;
  }

  /** A job that logs in to its registry with its secret variable, builds an image and pushes it. */
  function queueBuild(registry: TestRegistry, image: string, jobName: string): JobRequest {
    const { devops } = e2e.standins();
    return devops.queueJob({
      poolName: POOL,
      demands: { [ENV.runKey]: e2e.runKey },
      jobName,
      variables: { registryPassword: { value: registry.password, isSecret: true } },
      steps: [
        {
          displayName: "Log in with the job's own credential",
          script: `printf '%s' "$REGISTRY_PASSWORD" | docker login ${registry.address} --username ${registry.username} --password-stdin`,
          env: { REGISTRY_PASSWORD: "$(registryPassword)" },
        },
        {
          displayName: "Build and push",
          script: [
            "mkdir context",
            `echo ${jobName} > context/built-by`,
            "printf 'FROM scratch\\nCOPY built-by /built-by\\n' > context/Dockerfile",
            `docker build --tag ${image} context`,
            `docker push ${image}`,
            // Holds the job, logged in, until the test has read both agents' configurations.
            `touch ${PUSHED_MARKER}`,
            `while [ ! -e ${RELEASE_MARKER} ]; do sleep 0.2; done`,
          ].join("\n"),
        },
      ],
    });
  }

  async function tagsIn(registry: TestRegistry, repository: string): Promise<string[]> {
    const response = await fetch(`http://${registry.address}/v2/${repository}/tags/list`, {
      headers: {
        authorization: `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString("base64")}`,
      },
    });
    if (response.status === 404) return [];
    assert.equal(response.status, 200, `tags of ${repository} in ${registry.address}`);
    return ((await response.json()) as { tags: string[] | null }).tags ?? [];
  }

  it("two agents with the engine push to two registries at once, each with only its own login", async () => {
    const { devops } = e2e.standins();
    const hostConfigBefore = existsSync(HOST_DOCKER_CONFIG)
      ? readFileSync(HOST_DOCKER_CONFIG, "utf8")
      : undefined;
    registries.push(await startRegistry("builder-a"), await startRegistry("builder-b"));
    const [first, second] = registries;
    const repository = `app-${e2e.runKey}`;
    const images = [`${first.address}/${repository}:1`, `${second.address}/${repository}:1`];
    pushedImages.push(...images);

    const start = await runBundledTask(
      e2e.organization(),
      "StartEphemeralAgentV1",
      startInputs("docker", cliImage, e2e.runKey, {
        count: "2",
        shareDockerEngine: "true",
        maxLifetimeMinutes: "30",
      }),
    );
    assert.equal(start.result?.status, "Succeeded", `${start.stdout}\n${start.stderr}`);
    assert.match(start.stdout, /shareDockerEngine: .*is root on this host/);
    const names = start.outputs.agentNames.split(",");
    assert.equal(names.length, 2);
    for (const name of names) {
      const inspected = await docker.getContainer(name).inspect();
      assert.deepEqual(
        inspected.Mounts.map((mount) => `${mount.Type} ${mount.Destination}`),
        ["bind /var/run/docker.sock"],
        `mounts of ${name}`,
      );
      assert.ok(inspected.Config.Env.includes("DOCKER_CONFIG=/azp/.docker"));
    }

    const jobs = [queueBuild(first, images[0], "build-a"), queueBuild(second, images[1], "build-b")];
    const containers = await Promise.all(
      jobs.map((job) => waitFor(() => job.reservedAgent?.name, 60_000, `an agent for ${job.jobName}`)),
    );
    assert.deepEqual([...containers].sort(), [...names].sort(), "each agent took one job");

    // Both jobs are logged in and have pushed, and wait: the two configurations at the same moment.
    await waitFor(
      async () => {
        const states = await Promise.all(
          containers.map(
            async (container) => (await execIn(container, ["test", "-e", PUSHED_MARKER])).exitCode,
          ),
        );
        if (jobs.some((job) => job.result)) {
          assert.fail(`a job ended early: ${jobs.map((job) => `${job.jobName} ${job.result}`).join(", ")}`);
        }
        return states.every((code) => code === 0) ? true : undefined;
      },
      120_000,
      "both jobs to push",
    );
    for (const [index, container] of containers.entries()) {
      const own = registries[index];
      const other = registries[1 - index];
      const config = await dockerConfigOf(container);
      const auths = Object.keys((JSON.parse(config) as { auths?: Record<string, unknown> }).auths ?? {});
      assert.deepEqual(auths, [own.address], `logins in ${container}`);
      for (const secret of [
        other.password,
        Buffer.from(`${other.username}:${other.password}`).toString("base64"),
      ]) {
        assert.ok(!config.includes(secret), `${container} holds the other job's credential`);
      }
      assert.ok(config.includes(Buffer.from(`${own.username}:${own.password}`).toString("base64")));
      const inspected = JSON.stringify(await docker.getContainer(container).inspect());
      for (const registry of registries) {
        assert.ok(
          !inspected.includes(registry.password),
          `a registry password in docker inspect ${container}`,
        );
      }
    }
    await Promise.all(containers.map((container) => execIn(container, ["touch", RELEASE_MARKER])));

    for (const job of jobs) await waitFor(() => job.result, 60_000, `${job.jobName} to finish`);
    assert.deepEqual(
      jobs.map((job) => job.result),
      ["succeeded", "succeeded"],
    );
    for (const container of containers) assert.equal(await exitCodeOf(container, 60_000), 0);
    assert.deepEqual(await tagsIn(first, repository), ["1"]);
    assert.deepEqual(await tagsIn(second, repository), ["1"]);

    const teardown = await runBundledTask(
      e2e.organization(),
      "TeardownEphemeralAgentV1",
      teardownInputs("docker", e2e.runKey, { agentNames: names.join(","), gracePeriodSeconds: "30" }),
    );
    assert.equal(teardown.result?.status, "Succeeded", `${teardown.stdout}\n${teardown.stderr}`);
    assert.match(teardown.stdout, /Login Succeeded/);
    assert.match(teardown.stdout, /Step: Build and push/);

    assert.deepEqual(await containersOfRun(e2e.runKey), [], "containers left on the engine");
    assert.deepEqual(
      devops.agents(POOL).map((agent) => agent.name),
      [],
      "agents left in the pool",
    );
    const hostConfigAfter = existsSync(HOST_DOCKER_CONFIG)
      ? readFileSync(HOST_DOCKER_CONFIG, "utf8")
      : undefined;
    assert.equal(hostConfigAfter, hostConfigBefore, "the host's Docker configuration changed");
    for (const output of [start.stdout, start.stderr, teardown.stdout, teardown.stderr]) {
      assertNoSecrets(output);
      for (const registry of registries)
        assert.ok(!output.includes(registry.password), "a registry password");
    }
  });
});

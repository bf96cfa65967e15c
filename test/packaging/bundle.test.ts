import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import {
  ACI_INPUTS,
  AGENT_IMAGE,
  ensureBundles,
  runTask,
  startStandins,
  taskEnvironment,
  type Standins,
} from "../../standins/taskProcess";

const repoRoot = path.resolve(__dirname, "..", "..");
const taskFolders = ["StartEphemeralAgentV1", "TeardownEphemeralAgentV1"];

/** The test process's environment without anything the agent would pass to a task. */
function environmentWithoutTaskSettings(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !/^(INPUT|ENDPOINT|SECUREFILE|SYSTEM|AGENT|BUILD)_/i.test(name),
    ),
  );
}

describe("bundled tasks", function () {
  this.timeout(120_000);

  before(() => ensureBundles());

  for (const folder of taskFolders) {
    it(`${folder} loads on this Node and fails cleanly when a required input is missing`, () => {
      // Without an agent temp folder, task-lib keeps its .taskkey in the working directory: a throwaway one.
      const workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), "bundle-smoke-"));
      const run = spawnSync(process.execPath, [path.join(repoRoot, "dist", folder, "index.js")], {
        cwd: workDirectory,
        env: environmentWithoutTaskSettings(),
        encoding: "utf8",
        timeout: 60_000,
      });
      fs.rmSync(workDirectory, { recursive: true, force: true });
      const output = `${run.stdout}${run.stderr}`;
      assert.notEqual(run.status, 0, output);
      // Either task-lib's "Input required: name" or the tasks' own "Input 'name': is required ...".
      assert.match(run.stdout, /^##vso\[task\.complete result=Failed;\]Input\b.*\brequired\b/m, output);
      assert.doesNotMatch(output, /^\s+at .+:\d+:\d+\)?$/m, "a stack trace was printed");
    });
  }
});

/**
 * Runs the bundled start task with a --require hook that writes, when the process exits, every file Node
 * loaded as a CommonJS module; returns the run and the JavaScript files of the task's dist folder among them.
 */
async function runRecordingModules(
  standins: Standins,
  inputs: Record<string, string>,
  extra: Record<string, string> = {},
): Promise<{ run: Awaited<ReturnType<typeof runTask>>; loaded: string[] }> {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), "bundle-modules-"));
  try {
    const hook = path.join(folder, "record-modules.js");
    const record = path.join(folder, "loaded.json");
    fs.writeFileSync(
      hook,
      `process.on("exit", () => require("fs").writeFileSync(${JSON.stringify(record)}, JSON.stringify(Object.keys(require.cache))));`,
    );
    const env = taskEnvironment(standins, { inputs, extra: { ...extra, NODE_OPTIONS: `--require ${hook}` } });
    const run = await runTask("StartEphemeralAgentV1", env, { timeoutMs: 90_000 });
    const taskDir = path.join(repoRoot, "dist", "StartEphemeralAgentV1");
    const files = JSON.parse(fs.readFileSync(record, "utf8")) as string[];
    const loaded = files
      .filter((file) => file.startsWith(taskDir + path.sep) && file.endsWith(".js"))
      .map((file) => path.relative(taskDir, file).split(path.sep).join("/"))
      .sort();
    return { run, loaded };
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

describe("bundled provider libraries", function () {
  this.timeout(180_000);
  let standins: Standins;

  before(async () => {
    await ensureBundles();
    standins = await startStandins({ arm: { provisioningDelayMs: 0 }, simulateAgents: { delayMs: 0 } });
  });

  after(() => standins?.close());

  for (const folder of taskFolders) {
    it(`${folder} ships each provider's libraries beside its bundle`, () => {
      for (const file of ["index.js", "providers/aci.js", "providers/docker.js"]) {
        assert.ok(fs.statSync(path.join(repoRoot, "dist", folder, file)).size > 0, `dist/${folder}/${file}`);
      }
    });
  }

  it("the aci path loads the Azure SDK file and never the Docker client's", async () => {
    const { run, loaded } = await runRecordingModules(standins, {
      ...ACI_INPUTS,
      image: AGENT_IMAGE,
      runKey: "bundle-aci",
    });
    assert.equal(run.result?.status, "Succeeded", run.stdout + run.stderr);
    const created = standins.arm.requests.filter(
      (request) => request.method === "PUT" && /\/containerGroups\/[^/]+$/.test(request.path),
    );
    assert.equal(created.length, 1, "one container group created through the Azure SDK");
    assert.deepEqual(loaded, ["index.js", "providers/aci.js"]);
  });

  it("the docker path loads the Docker client's file, which reaches the engine, and never the Azure SDK's", async () => {
    const engineRequests: string[] = [];
    // Stands in for a Docker engine only as far as receiving requests: every answer is an engine error.
    const engine = http.createServer((request, response) => {
      engineRequests.push(`${request.method} ${request.url}`);
      response.writeHead(500, { "content-type": "application/json" });
      response.end(JSON.stringify({ message: "engine stand-in of the bundle test" }));
    });
    await new Promise<void>((resolve) => engine.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = engine.address() as AddressInfo;
      const { run, loaded } = await runRecordingModules(
        standins,
        {
          provider: "docker",
          image: "ephemeral-agents-test-busybox:1",
          pullPolicy: "never",
          agentPool: ACI_INPUTS.agentPool,
          runKey: "bundle-docker",
        },
        { DOCKER_HOST: `tcp://127.0.0.1:${port}` },
      );
      assert.equal(run.result?.status, "Failed", run.stdout + run.stderr);
      assert.ok(engineRequests.length > 0, `the engine received no request:\n${run.stdout}${run.stderr}`);
      assert.deepEqual(loaded, ["index.js", "providers/docker.js"]);
    } finally {
      engine.closeAllConnections();
      await new Promise((resolve) => engine.close(resolve));
    }
  });
});

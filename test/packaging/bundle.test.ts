import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ensureBundles } from "../../standins/taskProcess";

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

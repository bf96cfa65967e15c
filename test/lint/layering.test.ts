import assert from "node:assert/strict";
import * as path from "node:path";
import { ESLint } from "eslint";
import tseslint from "typescript-eslint";

const REPO = path.resolve(__dirname, "../..");

/** Lints one line of source as if it were the given file, with the layer rules only (no type information). */
async function importProblems(file: string, source: string): Promise<string[]> {
  const { layers } = (await import(path.join(REPO, "eslint.layers.mjs"))) as { layers: unknown[] };
  const eslint = new ESLint({
    cwd: REPO,
    overrideConfigFile: true,
    overrideConfig: [{ files: ["**/*.ts"], languageOptions: { parser: tseslint.parser } }, ...(layers as [])],
  });
  const [result] = await eslint.lintText(source, { filePath: path.join(REPO, file) });
  return result.messages.map((message) => `${message.ruleId}: ${message.message}`);
}

describe("layering rules (eslint.layers.mjs)", () => {
  const refused: [string, string][] = [
    ["tasks/common/core/example.ts", 'import * as tl from "azure-pipelines-task-lib/task";'],
    ["tasks/common/start/example.ts", 'import { createProvider } from "../providers";'],
    ["tasks/common/start/example.ts", 'import { AzureDevOpsPools } from "../clients/azureDevOps";'],
    ["tasks/common/teardown/example.ts", 'import { pipelineLog } from "../platform/log";'],
    ["tasks/common/inputs/example.ts", 'import Docker from "dockerode";'],
    ["tasks/common/providers/aci/example.ts", 'import { DockerProvider } from "../docker/dockerProvider";'],
    ["tasks/common/providers/docker/example.ts", 'import { AciProvider } from "../aci/aciProvider";'],
    ["tasks/common/providers/docker/example.ts", 'import * as tl from "azure-pipelines-task-lib/task";'],
    ["tasks/common/clients/azureDevOps.ts", 'import { DefaultAzureCredential } from "@azure/identity";'],
    ["tasks/common/clients/entra.ts", 'import * as azdev from "azure-devops-node-api";'],
    [
      "tasks/common/clients/retailPrices.ts",
      'import { ContainerInstanceManagementClient } from "@azure/arm-containerinstance";',
    ],
    ["tasks/common/clients/retailPrices.ts", 'import { pipelineLog } from "../platform/log";'],
    ["tasks/common/providers/index.ts", 'import * as tl from "azure-pipelines-task-lib/task";'],
    ["tasks/common/platform/example.ts", 'import Docker from "dockerode";'],
    [
      "tasks/common/platform/example.ts",
      'import type { DockerConnection } from "../providers/docker/dockerProvider";',
    ],
    ["tasks/common/providers/docker/example.ts", 'import type { PullPolicy } from "../../inputs/providers";'],
    ["tasks/common/providers/aci/example.ts", 'import { parseStartInputs } from "../../inputs/start";'],
    ["tasks/StartEphemeralAgentV1/index.ts", 'import * as tl from "azure-pipelines-task-lib/task";'],
  ];
  for (const [file, source] of refused) {
    it(`refuses in ${file}: ${source}`, async () => {
      const problems = await importProblems(file, source);
      assert.equal(problems.length, 1, problems.join("\n"));
      assert.match(problems[0], /^no-restricted-imports:/);
    });
  }

  const allowed: [string, string][] = [
    ["tasks/common/start/example.ts", 'import { isFinished } from "../core/ports";'],
    ["tasks/common/teardown/example.ts", 'import { parseTeardownInputs } from "../inputs/teardown";'],
    ["tasks/common/providers/aci/example.ts", 'import { createCredential } from "../../clients/entra";'],
    [
      "tasks/common/providers/docker/example.ts",
      'import type { PullPolicy } from "../../core/dockerEngine";',
    ],
    ["tasks/common/platform/example.ts", 'import type { DockerConnection } from "../core/dockerEngine";'],
    ["tasks/common/platform/example.ts", 'import { createProvider } from "../providers";'],
    ["tasks/common/platform/example.ts", 'import * as tl from "azure-pipelines-task-lib/task";'],
    [
      "tasks/common/clients/retailPrices.ts",
      'import { createPipelineRequest } from "@azure/core-rest-pipeline";',
    ],
  ];
  for (const [file, source] of allowed) {
    it(`allows in ${file}: ${source}`, async () => {
      assert.deepEqual(await importProblems(file, source), []);
    });
  }
});

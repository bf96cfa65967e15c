import assert from "node:assert/strict";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import path from "node:path";
import Ajv from "ajv";

const repoRoot = path.resolve(__dirname, "..", "..");
const tasksDir = path.join(repoRoot, "tasks");
const schemaFile = path.join(repoRoot, "standins", "reference", "tasks.schema.json");

interface TaskInput {
  name: string;
  type: string;
  aliases?: string[];
  helpMarkDown?: string;
  groupName?: string;
  visibleRule?: string;
  options?: Record<string, string>;
}

interface TaskJson {
  id: string;
  name: string;
  friendlyName: string;
  version: { Major: number };
  instanceNameFormat: string;
  groups?: { name: string; visibleRule?: string }[];
  inputs: TaskInput[];
  dataSourceBindings?: { target?: string; endpointId?: string }[];
  outputVariables?: { name: string; description?: string }[];
  execution: Record<string, { target: string }>;
}

const taskFolders = readdirSync(tasksDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(path.join(tasksDir, entry.name, "task.json")))
  .map((entry) => entry.name);

function readTask(folder: string): TaskJson {
  return JSON.parse(readFileSync(path.join(tasksDir, folder, "task.json"), "utf8")) as TaskJson;
}

// Ajv 8 has no draft-04 dialect built in. The task schema uses only keywords that mean the same in
// draft-04 and Ajv's default dialect (the draft-04-only forms are the boolean exclusiveMinimum/Maximum),
// so it is compiled without its draft-04 $schema and with its draft-04 "id" ignored. Its patterns are
// plain ECMAScript regular expressions (`\:` is not a valid escape with the unicode flag Ajv adds by default).
function compileTaskSchema() {
  const schemaText = readFileSync(schemaFile, "utf8");
  assert.doesNotMatch(schemaText, /"exclusive(Minimum|Maximum)"/);
  const schema = JSON.parse(schemaText) as Record<string, unknown>;
  assert.equal(schema.$schema, "http://json-schema.org/draft-04/schema");
  delete schema.$schema;
  delete schema.id;
  return new Ajv({ allErrors: true, strict: false, unicodeRegExp: false }).compile(schema);
}

/** Input names a visible rule such as `provider = aci && count != 1` refers to. */
function namesInRule(rule: string): string[] {
  return rule.split(/&&|\|\|/).map((clause) => clause.trim().split(/\s+/)[0]);
}

describe("task.json files", () => {
  it("are found for both tasks", () => {
    assert.deepEqual(taskFolders.sort(), ["StartEphemeralAgentV1", "TeardownEphemeralAgentV1"]);
  });

  it("have distinct ids", () => {
    const ids = taskFolders.map((folder) => readTask(folder).id.toLowerCase());
    assert.equal(new Set(ids).size, ids.length);
  });

  for (const folder of taskFolders) {
    describe(folder, () => {
      const task = readTask(folder);
      const inputNames = new Set(task.inputs.map((input) => input.name));

      it("validates against the task schema", () => {
        const validate = compileTaskSchema();
        assert.ok(validate(task), JSON.stringify(validate.errors, null, 2));
      });

      it("is named after its folder and major version", () => {
        assert.equal(`${task.name}V${task.version.Major}`, folder);
      });

      it("has a friendly name the marketplace accepts (at most 40 characters)", () => {
        assert.ok(task.friendlyName.length <= 40, task.friendlyName);
      });

      it("runs index.js on both the Node20_1 and Node24 handlers", () => {
        assert.deepEqual(Object.keys(task.execution).sort(), ["Node20_1", "Node24"]);
        for (const handler of Object.values(task.execution)) assert.equal(handler.target, "index.js");
      });

      it("has help on every input", () => {
        for (const input of task.inputs) {
          assert.ok(input.helpMarkDown && input.helpMarkDown.trim().length > 0, `${input.name} has no help`);
        }
      });

      it("has unique input names and aliases", () => {
        const names = task.inputs.flatMap((input) => [input.name, ...(input.aliases ?? [])]);
        assert.equal(new Set(names).size, names.length, names.join(", "));
      });

      it("puts every input in a declared group", () => {
        const groups = new Set((task.groups ?? []).map((group) => group.name));
        for (const input of task.inputs) {
          assert.ok(
            input.groupName && groups.has(input.groupName),
            `${input.name}: group ${input.groupName}`,
          );
        }
      });

      it("refers only to existing inputs in visible rules, data sources and the instance name", () => {
        const rules = [...task.inputs, ...(task.groups ?? [])].flatMap((item) =>
          item.visibleRule ? [item.visibleRule] : [],
        );
        for (const name of rules.flatMap(namesInRule))
          assert.ok(inputNames.has(name), `visibleRule: ${name}`);
        for (const binding of task.dataSourceBindings ?? []) {
          assert.ok(binding.target && inputNames.has(binding.target), `dataSource target ${binding.target}`);
          const endpoint = /^\$\((\w+)\)$/.exec(binding.endpointId ?? "")?.[1];
          assert.ok(endpoint && inputNames.has(endpoint), `dataSource endpoint ${binding.endpointId}`);
        }
        for (const [, name] of task.instanceNameFormat.matchAll(/\$\((\w+)\)/g)) {
          assert.ok(inputNames.has(name), `instanceNameFormat: ${name}`);
        }
      });

      it("shows provider-specific inputs only for a provider that exists", () => {
        const provider = task.inputs.find((input) => input.name === "provider");
        assert.deepEqual(Object.keys(provider?.options ?? {}), ["aci", "docker"]);
        for (const input of task.inputs) {
          const value = /^provider = (\w+)$/.exec(input.visibleRule ?? "")?.[1];
          if (value !== undefined) assert.ok(value in (provider?.options ?? {}), `${input.name}: ${value}`);
        }
        const azureSubscription = task.inputs.find((input) => input.aliases?.includes("azureSubscription"));
        assert.equal(azureSubscription?.type, "connectedService:AzureRM");
        assert.equal(azureSubscription?.visibleRule, "provider = aci");
      });

      it("describes every output variable", () => {
        for (const variable of task.outputVariables ?? []) {
          assert.ok(variable.description && variable.description.length > 0, variable.name);
        }
      });
    });
  }

  it("declares the start task's output variables", () => {
    const names = (readTask("StartEphemeralAgentV1").outputVariables ?? []).map((variable) => variable.name);
    assert.deepEqual(names.sort(), ["agentName", "agentNames", "agentPool", "demand", "runKey"]);
  });
});

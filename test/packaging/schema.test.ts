import assert from "node:assert/strict";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import path from "node:path";
import Ajv from "ajv";
import yaml from "js-yaml";
import { expandTemplate } from "../templateExpansion";

const repoRoot = path.resolve(__dirname, "..", "..");
const tasksDir = path.join(repoRoot, "tasks");
const schemaFile = path.join(repoRoot, "standins", "reference", "tasks.schema.json");
const pipelineSchemaFile = path.join(
  repoRoot,
  "standins",
  "reference",
  "azure-pipelines",
  "service-schema.json",
);

interface TaskInput {
  name: string;
  type: string;
  required?: boolean;
  defaultValue?: string | boolean;
  properties?: { EditableOptions?: string };
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

type JsonSchema = Record<string, unknown>;

/**
 * What Azure Pipelines' schema says of a task's step, made from its task.json as the schema's own entries are:
 * the input's YAML name (its first alias, else its name), fixed pick lists as enums, and as required the required
 * inputs that are always shown and have no default.
 */
function stepSchema(task: TaskJson): JsonSchema {
  const inputs = Object.fromEntries(
    task.inputs.map((input): [string, JsonSchema] => {
      const [key, ...aliases] = [...(input.aliases ?? []), input.name];
      const base = aliases.length ? { aliases } : {};
      if (input.type === "boolean") return [key, { ...base, $ref: "#/definitions/boolean" }];
      if (input.type === "pickList" && input.properties?.EditableOptions !== "True") {
        return [key, { ...base, enum: Object.keys(input.options ?? {}) }];
      }
      if (input.type === "int") return [key, { ...base, ...INTEGER }];
      return [key, { ...base, type: "string" }];
    }),
  );
  const required = task.inputs
    .filter((input) => input.required && !input.visibleRule && (input.defaultValue ?? "") === "")
    .map((input) => input.aliases?.[0] ?? input.name);
  return {
    properties: {
      task: { pattern: `^${task.name}@${task.version.Major}$` },
      inputs: { properties: inputs, additionalProperties: false, required },
    },
    required: required.length ? ["task", "inputs"] : ["task"],
  };
}

/** YAML scalars reach the schema as strings (its booleans are string patterns): integers are strings of digits. */
const INTEGER = { type: "string", pattern: "^-?[0-9]+$" };

function asStringTyped(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(asStringTyped);
  if (typeof schema !== "object" || schema === null) return schema;
  const entries = Object.entries(schema as JsonSchema).map(([key, value]) => [key, asStringTyped(value)]);
  const typed = Object.fromEntries(entries) as JsonSchema;
  if (typed.type === "integer") return { ...typed, ...INTEGER };
  if (typed.type === "boolean") {
    delete typed.type;
    return { ...typed, $ref: "#/definitions/boolean" };
  }
  return typed;
}

/** Built-in tasks README examples use beside ours: the Docker task logs a job in to its registry. */
const BUILT_IN_TASKS = ["Docker@2"];

/**
 * Azure Pipelines' YAML schema (microsoft/azure-pipelines-vscode's service-schema.json) with this repository's
 * tasks and BUILT_IN_TASKS as the only tasks: an organization's schema lists the tasks installed there, and these
 * are what the README shows. Other built-in tasks are left out, so a README example that used one would fail here.
 */
function compilePipelineSchema() {
  const schema = JSON.parse(readFileSync(pipelineSchemaFile, "utf8")) as JsonSchema & {
    definitions: Record<string, JsonSchema & { properties: Record<string, JsonSchema> }>;
  };
  delete schema.$schema;
  const ours = taskFolders.map((folder) => stepSchema(readTask(folder)));
  const task = schema.definitions.task;
  // The service schema lists some tasks twice (Docker@2 among them): the first entry of each is taken.
  const builtIns = BUILT_IN_TASKS.map((name) => {
    const step = (task.anyOf as JsonSchema[]).find((entry) => builtInTaskPattern(entry) === `^${name}$`);
    assert.ok(step, `${name} is in the service schema`);
    return step;
  });
  task.anyOf = [...ours, ...builtIns];
  task.properties.task = {
    anyOf: [
      ...taskFolders.map((folder) => {
        const { name, version } = readTask(folder);
        return { enum: [`${name}@${version.Major}`] };
      }),
      ...BUILT_IN_TASKS.map((name) => ({ enum: [name] })),
    ],
  };
  schema.definitions.task = asStringTyped(task) as typeof task;
  const ajv = new Ajv({ allErrors: false, strict: false, unicodeRegExp: false });
  ajv.addSchema(schema, "pipeline");
  return (definition: string) => ajv.getSchema(`pipeline#/definitions/${definition}`);
}

function builtInTaskPattern(step: JsonSchema): unknown {
  const properties = step.properties as Record<string, JsonSchema> | undefined;
  return properties?.task?.pattern;
}

/** The README's ```yaml blocks, each with its line number, indented ones (inside a list item) dedented. */
function readmeYamlBlocks(): { line: number; text: string }[] {
  const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
  const blocks: { line: number; text: string }[] = [];
  for (const match of readme.matchAll(/^( *)```yaml\n([\s\S]*?)^\1```$/gm)) {
    const indent = match[1].length;
    const text = match[2]
      .split("\n")
      .map((line) => line.slice(indent))
      .join("\n");
    blocks.push({ line: readme.slice(0, match.index).split("\n").length, text });
  }
  return blocks;
}

describe("README pipelines", () => {
  const blocks = readmeYamlBlocks();

  it("are found", () => {
    assert.ok(blocks.length >= 3, `${blocks.length} yaml blocks`);
  });

  it("refuses an unknown input, a misspelt pick-list value, a task not installed and a misplaced key", () => {
    const validate = compilePipelineSchemaOnce()("steps");
    assert.ok(validate);
    const step = (text: string) => yaml.load(text, { schema: yaml.FAILSAFE_SCHEMA });
    const start = "- task: StartEphemeralAgent@1\n  inputs:\n    image: a:1\n    agentPool: p\n";
    assert.ok(validate(step(start)), JSON.stringify(validate.errors));
    assert.ok(!validate(step(`${start}    jobIdentty: x\n`)), "unknown input");
    assert.ok(!validate(step(`${start}    osType: linux-x64\n`)), "pick list");
    assert.ok(!validate(step("- task: AzureCLI@2\n  inputs:\n    scriptType: bash\n")), "task not installed");
    assert.ok(!validate(step("- script: make\n  demands: [a]\n")), "misplaced key");
  });

  // A block is a pipeline, or a list of jobs or of steps to paste into one.
  for (const block of blocks) {
    it(`README.md line ${block.line} validates against Azure Pipelines' schema`, () => {
      const definition = compilePipelineSchemaOnce();
      const document = yaml.load(block.text, { schema: yaml.FAILSAFE_SCHEMA });
      const kind = !Array.isArray(document)
        ? "pipeline"
        : (document as JsonSchema[]).every((item) => "job" in item || "deployment" in item)
          ? "jobs"
          : "steps";
      const validate = definition(kind);
      assert.ok(validate, kind);
      assert.ok(validate(document), `${kind}: ${JSON.stringify(validate.errors, null, 2)}`);
    });
  }
});

let compiled: ReturnType<typeof compilePipelineSchema> | undefined;
function compilePipelineSchemaOnce(): ReturnType<typeof compilePipelineSchema> {
  compiled ??= compilePipelineSchema();
  return compiled;
}

describe("templates/ephemeral-agent-jobs.yml", () => {
  const load = (text: string) => yaml.load(text, { schema: yaml.FAILSAFE_SCHEMA }) as JsonSchema;
  const template = load(readFileSync(path.join(repoRoot, "templates", "ephemeral-agent-jobs.yml"), "utf8"));
  // README's usage block, and the next block: the plain pipeline it stands for.
  const blocks = readmeYamlBlocks();
  const usageAt = blocks.findIndex((block) => block.text.includes("templates/ephemeral-agent-jobs.yml@"));
  const usage = load(blocks[usageAt]?.text ?? "");
  const plain = load(blocks[usageAt + 1]?.text ?? "");

  type Job = JsonSchema & { job?: string; template?: string; parameters?: JsonSchema };
  type Stage = JsonSchema & { jobs: Job[] };

  /** The usage pipeline with its template job expanded in place, and without the repository resource. */
  function expandUsage(): JsonSchema {
    const stages = (usage.stages as Stage[]).map((stage) => ({
      ...stage,
      jobs: stage.jobs.flatMap((job) =>
        job.template?.startsWith("templates/ephemeral-agent-jobs.yml@")
          ? (expandTemplate(template, job.parameters ?? {}) as { jobs: Job[] }).jobs
          : [job],
      ),
    }));
    const expanded: JsonSchema = { ...usage, stages };
    delete expanded.resources;
    return expanded;
  }

  it("expands README's usage block into README's plain pipeline", () => {
    assert.ok(usageAt >= 0, "README shows the template in use");
    assert.deepEqual(expandUsage(), plain);
  });

  it("expands into a pipeline Azure Pipelines' schema accepts, with sample parameters of both providers", () => {
    const validate = compilePipelineSchemaOnce()("pipeline");
    assert.ok(validate);
    assert.ok(validate(expandUsage()), JSON.stringify(validate.errors, null, 2));
    const docker = expandTemplate(template, {
      agentPool: "Private",
      connection: { provider: "docker", dockerEndpoint: "docker-host" },
      agent: { image: "registry.internal/ephemeral-agent:1", count: "2" },
      teardown: { awaitTimeoutMinutes: "20" },
      buildJobs: [
        { job: "build_linux", steps: [{ script: "make" }] },
        { job: "build_docs", steps: [{ script: "make docs" }] },
      ],
      deploySteps: [{ script: "./deploy.sh" }, { script: "./smoke-test.sh" }],
      pool: { name: "Hosted-Linux" },
    }) as { jobs: Job[] };
    assert.ok(validate({ jobs: docker.jobs }), JSON.stringify(validate.errors, null, 2));
    const byName = new Map(docker.jobs.map((job) => [job.job, job]));
    assert.deepEqual(
      docker.jobs.map((job) => job.job),
      ["build_linux", "build_docs", "ephemeral_agent_start", "deploy", "ephemeral_agent_teardown"],
    );
    assert.deepEqual(byName.get("ephemeral_agent_start")!.dependsOn, [], "the start waits for nothing");
    assert.deepEqual(byName.get("deploy")!.dependsOn, ["ephemeral_agent_start", "build_linux", "build_docs"]);
    assert.deepEqual(byName.get("deploy")!.pool, {
      name: "Private",
      demands: ["EPHEMERAL_AGENT_RUN -equals $(Build.BuildId)"],
    });
    assert.deepEqual(byName.get("deploy")!.steps, [{ script: "./deploy.sh" }, { script: "./smoke-test.sh" }]);
    const teardown = byName.get("ephemeral_agent_teardown")!;
    assert.equal(teardown.condition, "always()");
    assert.deepEqual(teardown.dependsOn, ["ephemeral_agent_start", "deploy"]);
    assert.deepEqual((teardown.steps as JsonSchema[])[0].inputs, {
      agentPool: "Private",
      agentNames: "$(agentNames)",
      provider: "docker",
      dockerEndpoint: "docker-host",
      awaitTimeoutMinutes: "20",
    });
  });

  it("expands with the defaults: no build jobs, the hosted pool, no teardown inputs", () => {
    const expanded = expandTemplate(template, {
      agentPool: "Private",
      connection: { provider: "docker" },
      agent: { image: "a:1" },
      deploySteps: [{ script: "./deploy.sh" }],
    }) as { jobs: Job[] };
    assert.deepEqual(
      expanded.jobs.map((job) => [job.job, job.dependsOn]),
      [
        ["ephemeral_agent_start", []],
        ["deploy", ["ephemeral_agent_start"]],
        ["ephemeral_agent_teardown", ["ephemeral_agent_start", "deploy"]],
      ],
    );
    assert.deepEqual(expanded.jobs[0].pool, { vmImage: "ubuntu-latest" });
  });

  it("is expanded by rules that refuse what they do not know", () => {
    assert.throws(() => expandTemplate(template, { agentPool: "p" }), /parameter 'connection' is required/);
    assert.throws(
      () =>
        expandTemplate(template, { agentPool: "p", connection: {}, agent: {}, deploySteps: [], extra: "x" }),
      /unexpected parameter 'extra'/,
    );
    assert.throws(
      () => expandTemplate({ steps: ["${{ coalesce(parameters.a, 'b') }}"] }, {}),
      /unsupported template expression/,
    );
    assert.throws(() => expandTemplate({ steps: [{ "${{ if parameters.a }}": [] }] }, {}), /unsupported/);
  });
});

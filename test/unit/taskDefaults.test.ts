// The parsers fall back to the same defaults task.json declares: an input left unset and an input set to its
// task.json default parse alike, so that YAML and the classic editor behave the same.
import assert from "node:assert/strict";
import type { RawInputs } from "../../tasks/common/inputs/parse";
import { parseStartInputs } from "../../tasks/common/inputs/start";
import { parseTeardownInputs } from "../../tasks/common/inputs/teardown";
import type { TaskName } from "../../standins/taskProcess";
import { declaredInputs, yamlName } from "../taskJson";

const REQUIRED_ACI = {
  azureSubscription: "arm",
  resourceGroup: "rg-agents",
  image: "myregistry.azurecr.io/ephemeral-agent:1",
  agentPool: "Default",
  runKey: "4711",
};
const REQUIRED_DOCKER = { provider: "docker", image: "agent:1", agentPool: "Default", runKey: "4711" };

const PARSERS: Record<TaskName, (raw: RawInputs) => unknown> = {
  StartEphemeralAgentV1: parseStartInputs,
  TeardownEphemeralAgentV1: parseTeardownInputs,
};

describe("input defaults: the parsers and task.json agree", () => {
  for (const task of ["StartEphemeralAgentV1", "TeardownEphemeralAgentV1"] as const) {
    // runKey's default is a macro the agent expands; the required inputs are given.
    const defaulted = declaredInputs(task).filter(
      (input) => input.defaultValue !== undefined && input.defaultValue !== "" && input.name !== "runKey",
    );

    it(`${task}: every input with a default parses the same unset as set to its default`, () => {
      const parse = PARSERS[task];
      assert.ok(defaulted.length > 0);
      for (const base of [REQUIRED_ACI, REQUIRED_DOCKER]) {
        const withDefaults = Object.fromEntries(
          defaulted.map((input) => [yamlName(input), String(input.defaultValue)]),
        );
        assert.deepEqual(parse(base), parse({ ...withDefaults, ...base }), JSON.stringify(withDefaults));
      }
    });
  }
});

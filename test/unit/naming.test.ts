import assert from "node:assert/strict";
import {
  agentNames,
  isValidAgentName,
  newLaunchId,
  parseAgentNamePrefix,
} from "../../tasks/common/core/naming";
import { InputError } from "../../tasks/common/core/errors";

describe("naming", () => {
  it("derives one valid, numbered name per agent from prefix, run key and launch id", () => {
    assert.deepEqual(agentNames("ephemeral", "1234", "k3x9q", 3), [
      "ephemeral-1234-k3x9q-1",
      "ephemeral-1234-k3x9q-2",
      "ephemeral-1234-k3x9q-3",
    ]);
  });

  it("folds run key characters that names cannot hold and lowercases them", () => {
    const [name] = agentNames("build", "Release_2024.11..X", "abcde", 1);
    assert.equal(name, "build-release-2024-11-x-abcde-1");
    assert.ok(isValidAgentName(name));
  });

  it("keeps every name within 63 characters for long run keys and counts", () => {
    const names = agentNames("a".repeat(24), "9".repeat(64), "abcde", 50);
    for (const name of names) {
      assert.ok(name.length <= 63, `${name} has ${name.length} characters`);
      assert.ok(isValidAgentName(name), name);
    }
    assert.equal(new Set(names).size, 50);
  });

  it("differs between launches with the same run key", () => {
    const first = newLaunchId(() => Uint8Array.from([0, 1, 2, 3, 4]));
    const second = newLaunchId(() => Uint8Array.from([5, 6, 7, 8, 9]));
    assert.notEqual(agentNames("e", "7", first, 1)[0], agentNames("e", "7", second, 1)[0]);
    assert.match(first, /^[a-z0-9]{5}$/);
  });

  for (const bad of ["", "Ephemeral", "-agent", "agent-", "a--b", "agent_1", "x".repeat(25)]) {
    it(`rejects the prefix '${bad}' naming the input`, () => {
      assert.throws(
        () => parseAgentNamePrefix(bad),
        (error: unknown) => {
          assert.ok(error instanceof InputError);
          assert.equal(error.input, "agentNamePrefix");
          assert.match(error.message, /lowercase letters, digits and single hyphens/);
          return true;
        },
      );
    });
  }
});

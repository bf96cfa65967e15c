import assert from "node:assert/strict";
import { InputError } from "../../tasks/common/core/errors";
import {
  parseBoolean,
  parseDecimal,
  parseEnvironment,
  parseInteger,
  parseList,
  parseRunKey,
  required,
} from "../../tasks/common/inputs/parse";
import { RESERVED_ENVIRONMENT } from "../../tasks/common/core/contract";

function inputError(name: string, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof InputError, String(error));
    assert.equal(error.input, name);
    assert.match(error.message, pattern);
    return true;
  };
}

describe("input parsing", () => {
  it("requires a value and says what to set", () => {
    assert.throws(
      () => required({ image: "  " }, "image", "the agent image"),
      inputError("image", /is required: set it to the agent image/),
    );
    assert.equal(required({ image: " x " }, "image", "it"), "x");
  });

  it("parses whole numbers within a range", () => {
    assert.equal(parseInteger("count", "3", { min: 1, max: 50 }), 3);
    assert.throws(() => parseInteger("count", "0", { min: 1, max: 50 }), inputError("count", /from 1 to 50/));
    assert.throws(
      () => parseInteger("count", "1000", { min: 1, max: 50 }),
      inputError("count", /out of range/),
    );
    assert.throws(
      () => parseInteger("count", "2.5", { min: 1, max: 50 }),
      inputError("count", /not a whole number/),
    );
  });

  it("parses decimals within a range and on a step", () => {
    assert.equal(parseDecimal("cpu", "1.5", { min: 0.1, max: 4, step: 0.1 }), 1.5);
    assert.throws(() => parseDecimal("cpu", "-1", { min: 0.1, max: 4 }), inputError("cpu", /from 0.1 to 4/));
    assert.throws(
      () => parseDecimal("cpu", "1.25", { min: 0.1, max: 4, step: 0.1 }),
      inputError("cpu", /multiple of 0.1/),
    );
    assert.throws(() => parseDecimal("cpu", "lots", { min: 0.1, max: 4 }), inputError("cpu", /not a number/));
  });

  it("says which numbers to use when a value is not one", () => {
    assert.throws(
      () => parseInteger("sweepOlderThanMinutes", "a day", { min: 0, max: 100 }),
      inputError(
        "sweepOlderThanMinutes",
        /'a day' is not a whole number: use a whole number from 0 to 100\./,
      ),
    );
    assert.throws(
      () => parseDecimal("memoryGB", "lots", { min: 0.1, max: 16 }),
      inputError("memoryGB", /'lots' is not a number: use a number from 0\.1 to 16\./),
    );
    assert.throws(
      () => parseDecimal("cpu", "1.26", { min: 0.1, max: 4, step: 0.1 }),
      inputError("cpu", /1\.26 is not a multiple of 0\.1: use a multiple of 0\.1, such as 1\.3\./),
    );
  });

  it("parses booleans with a default", () => {
    assert.equal(parseBoolean("keepOnFailure", undefined, false), false);
    assert.equal(parseBoolean("keepOnFailure", "TRUE", false), true);
    assert.throws(
      () => parseBoolean("keepOnFailure", "yes", false),
      inputError("keepOnFailure", /true or false/),
    );
  });

  it("accepts run keys that fit names, tags and demands", () => {
    assert.equal(parseRunKey("20241122.3"), "20241122.3");
    for (const bad of ["", "a b", "key;rm", "$(Build.BuildId)", "-x", "k".repeat(65)]) {
      assert.throws(() => parseRunKey(bad), inputError("runKey", /letters, digits/), bad);
    }
  });

  it("parses environment lines, keeping '=' in values", () => {
    const variables = parseEnvironment("A=1\n\n# comment\nB_2=x=y\r\nC=", RESERVED_ENVIRONMENT);
    assert.deepEqual(variables, { A: "1", B_2: "x=y", C: "" });
  });

  it("rejects environment lines without '=', bad names, duplicates and reserved names", () => {
    assert.throws(
      () => parseEnvironment("A=1\nNOEQUALS", []),
      inputError("environment", /line 2 is not NAME=value/),
    );
    assert.throws(() => parseEnvironment("1A=x", []), inputError("environment", /not a valid variable name/));
    assert.throws(() => parseEnvironment("A=1\nA=2", []), inputError("environment", /set twice/));
    assert.throws(
      () => parseEnvironment("AZP_TOKEN=x", RESERVED_ENVIRONMENT),
      inputError("environment", /set by the task itself/),
    );
    assert.throws(
      () => parseEnvironment("vso_agent_ignore=x", RESERVED_ENVIRONMENT),
      inputError("environment", /set by the task/),
    );
  });

  it("splits comma-separated lists", () => {
    assert.deepEqual(parseList(" a, ,b ,"), ["a", "b"]);
    assert.deepEqual(parseList(undefined), []);
  });
});

import assert from "node:assert/strict";
import { MAX_REPORTED_VALUE_LENGTH, unreportedEnvironment } from "../../tasks/common/inputs/capabilities";

describe("environment entries the agent does not report as capabilities", () => {
  it("reports nothing for ordinary names and values", () => {
    assert.deepEqual(unreportedEnvironment({ TOOL_PATH: "/opt/tool", EMPTY: "", term: "xterm" }), []);
  });

  it("names the entries on the agent's built-in ignore list, compared exactly as on Linux", () => {
    const unreported = unreportedEnvironment({
      SYSTEM_ACCESSTOKEN: "x",
      PSMODULEPATH: "/opt/ps",
      TERM: "xterm",
      TERM_PROGRAM: "x",
      TERM_PROGRAM_VERSION: "1",
      SHLVL: "1",
      ls_colors: "x",
      comp_wordbreaks: "x",
      LS_COLORS: "reported: the list has it in lower case",
    });
    assert.deepEqual(
      unreported.map((entry) => entry.name),
      [
        "SYSTEM_ACCESSTOKEN",
        "PSMODULEPATH",
        "TERM",
        "TERM_PROGRAM",
        "TERM_PROGRAM_VERSION",
        "SHLVL",
        "ls_colors",
        "comp_wordbreaks",
      ],
    );
    assert.match(unreported[0].reason, /built-in ignore list/);
  });

  it("names the agent's own inputs, whatever their case", () => {
    assert.deepEqual(
      unreportedEnvironment({ VSTS_AGENT_INPUT_PROXYURL: "http://proxy", vsts_agent_input_x: "1" }),
      [
        {
          name: "VSTS_AGENT_INPUT_PROXYURL",
          reason: "the agent reads VSTS_AGENT_INPUT_* as its own settings",
        },
        { name: "vsts_agent_input_x", reason: "the agent reads VSTS_AGENT_INPUT_* as its own settings" },
      ],
    );
  });

  it("names values of 1024 characters or more, and keeps those one shorter", () => {
    const unreported = unreportedEnvironment({
      JUST_SHORT: "x".repeat(MAX_REPORTED_VALUE_LENGTH - 1),
      AT_LIMIT: "x".repeat(MAX_REPORTED_VALUE_LENGTH),
      LONGER: "x".repeat(5000),
    });
    assert.deepEqual(unreported, [
      {
        name: "AT_LIMIT",
        reason: "its value has 1024 characters; the agent does not report values of 1024 or more",
      },
      {
        name: "LONGER",
        reason: "its value has 5000 characters; the agent does not report values of 1024 or more",
      },
    ]);
  });

  it("counts UTF-16 units, as .NET does", () => {
    const astral = "😀".repeat(512); // 512 code points, 1024 UTF-16 units
    assert.deepEqual(
      unreportedEnvironment({ EMOJI: astral }).map((entry) => entry.name),
      ["EMOJI"],
    );
  });
});

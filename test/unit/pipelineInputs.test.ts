import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as taskInternal from "azure-pipelines-task-lib/internal";
import sinon from "sinon";
import { readInputs } from "../../tasks/common/platform/inputs";

describe("reading task inputs", () => {
  afterEach(() => sinon.restore());

  it("reads the token input without writing its value to the debug log", () => {
    const token = `SECRET-pat-${randomBytes(8).toString("hex")}`;
    taskInternal._vault.storeSecret("INPUT_TOKEN", token);
    taskInternal._vault.storeSecret("INPUT_AGENTPOOL", "Default");
    let written = "";
    sinon.stub(process.stdout, "write").callsFake((chunk: string | Uint8Array) => {
      written += chunk.toString();
      return true;
    });

    const raw = readInputs([{ name: "token" }, { name: "agentPool" }]);

    sinon.restore();
    assert.deepEqual(raw, { token, agentPool: "Default" });
    assert.match(written, /agentPool=Default/, "other inputs still go to the debug log");
    assert.ok(!written.includes(token), `the token was written: ${written}`);
  });
});

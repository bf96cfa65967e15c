// Loaded before the tests (.mocharc.json). task-lib, once loaded in the test process, keeps a key file in the
// agent's temporary folder, or else in the working directory: give it a folder of its own and remove it after.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const temporaryFolder = fs.mkdtempSync(path.join(os.tmpdir(), "ephemeral-tests-"));
process.env.AGENT_TEMPDIRECTORY ??= temporaryFolder;

export const mochaHooks = {
  afterAll(): void {
    fs.rmSync(temporaryFolder, { recursive: true, force: true });
  },
};

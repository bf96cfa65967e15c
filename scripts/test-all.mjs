// Runs every *.test.ts under test/ and standins/ in mocha's parallel workers (npm run test:all). Mocha hands the
// files to its workers in the order given: the suites that run for long (containers, task processes) go first, so
// that none of them starts last and keeps one worker busy after the others are done.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const LONG_RUNNING_FIRST = ["test/e2e/", "test/hardening/", "test/tasks/", "test/devops/", "test/providers/"];
const JOBS = "4";

function testFiles(folder) {
  return readdirSync(path.join(repoRoot, folder), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".test.ts"))
    .map((file) => path.posix.join(folder, file.split(path.sep).join("/")))
    .sort();
}

function rank(file) {
  const index = LONG_RUNNING_FIRST.findIndex((prefix) => file.startsWith(prefix));
  return index === -1 ? LONG_RUNNING_FIRST.length : index;
}

const files = [...testFiles("test"), ...testFiles("standins")].sort((a, b) => rank(a) - rank(b));
const mocha = createRequire(import.meta.url).resolve("mocha/bin/mocha.js");
const child = spawn(process.execPath, [mocha, "--parallel", "--jobs", JOBS, ...files], {
  cwd: repoRoot,
  stdio: "inherit",
});
child.on("close", (code, signal) => {
  process.exitCode = code ?? (signal ? 1 : 0);
});

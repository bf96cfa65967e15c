// Runs shellcheck on the shell scripts of the agent image and the fake agent: every *.sh file under
// images/agent and standins/fake-agent, and any other file there that starts with a sh or bash shebang
// (the fake agent's bin/Agent.Listener). Fails when shellcheck is missing rather than passing unchecked.
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const folders = ["images/agent", "standins/fake-agent"];
const shellShebang = /^#!\s*(\/usr\/bin\/env\s+)?(\/bin\/|\/usr\/bin\/)?(ba)?sh\b/;

function isShellScript(file) {
  return file.endsWith(".sh") || shellShebang.test(readFileSync(file, "utf8").split("\n", 1)[0]);
}

function shellScripts(folder) {
  return readdirSync(path.join(repoRoot, folder), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(repoRoot, path.join(entry.parentPath ?? entry.path, entry.name)))
    .filter((file) => isShellScript(path.join(repoRoot, file)));
}

const scripts = folders.flatMap(shellScripts).sort();
// -x follows `source` into the files the scripts name, so variables set there count as used.
const result = spawnSync("shellcheck", ["-x", ...scripts], { cwd: repoRoot, stdio: "inherit" });
if (result.error?.code === "ENOENT") {
  console.error(
    "lint:shell needs shellcheck, which is not installed (Debian/Ubuntu: apt-get install shellcheck).",
  );
  process.exit(1);
}
if (result.error) throw result.error;
if (result.status === 0) console.log(`shellcheck: ${scripts.length} scripts, no findings`);
process.exit(result.status ?? 1);

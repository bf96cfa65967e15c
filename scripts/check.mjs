// The static checks of `npm test`, run side by side (each is single-threaded): type-check, eslint, shellcheck,
// prettier. Prints each one's output when it ends and fails if any failed.
import { spawn } from "node:child_process";

const CHECKS = ["typecheck", "lint", "lint:shell", "format:check"];

function run(script) {
  return new Promise((resolve) => {
    const began = Date.now();
    const child = spawn("npm", ["run", "--silent", script], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("close", (code) => {
      const seconds = ((Date.now() - began) / 1000).toFixed(1);
      console.log(`${code === 0 ? "ok" : "FAILED"}: npm run ${script} (${seconds} s)`);
      if (code !== 0 || output.trim()) console.log(output.trimEnd());
      resolve(code === 0);
    });
  });
}

const results = await Promise.all(CHECKS.map(run));
if (results.includes(false)) process.exitCode = 1;

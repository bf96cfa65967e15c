// Runs npm scripts side by side: `npm test` runs the static checks (each single-threaded) next to the mocha
// suites, which spend much of their time waiting on processes and containers. The last script named streams its
// output; the others print theirs when they end. Fails if any failed.
import { spawn } from "node:child_process";

const [streamed, ...buffered] = process.argv.slice(2).reverse();
if (!streamed) {
  console.error("usage: node scripts/side-by-side.mjs <npm script>...");
  process.exit(2);
}

function run(script, stream) {
  return new Promise((resolve) => {
    const began = Date.now();
    const child = spawn("npm", ["run", "--silent", script], {
      stdio: ["ignore", stream ? "inherit" : "pipe", stream ? "inherit" : "pipe"],
    });
    let output = "";
    child.stdout?.on("data", (chunk) => (output += chunk));
    child.stderr?.on("data", (chunk) => (output += chunk));
    child.on("close", (code) => {
      const seconds = ((Date.now() - began) / 1000).toFixed(1);
      if (!stream && (code !== 0 || output.trim())) console.log(output.trimEnd());
      console.log(`${code === 0 ? "ok" : "FAILED"}: npm run ${script} (${seconds} s)`);
      resolve(code === 0);
    });
  });
}

const results = await Promise.all([
  run(streamed, true),
  ...buffered.reverse().map((script) => run(script, false)),
]);
if (results.includes(false)) process.exitCode = 1;

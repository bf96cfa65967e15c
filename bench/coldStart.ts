// Figure 1 alone (cold start of the bundle), and the time to the task's first request to Azure (the provider's
// SDK loaded), for builds side by side: each round runs every given dist
// folder once, in turn, against the same stand-ins, so that the machine's load weighs on all of them alike.
// Usage: node --import tsx bench/coldStart.ts [--runs 10] [<dist folder> ...]   (default: this repository's dist)
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { REPO } from "../standins/taskProcess";
import { COLD_START_LATENCY, coldStart, withStandins } from "./measurements";
import { summarise } from "./stats";

const TASK = "StartEphemeralAgentV1";

/** Bytes of the JavaScript files in a task's dist folder, by file. */
function bundleSizes(distDir: string): string {
  const taskDir = path.join(distDir, TASK);
  const files = fs
    .readdirSync(taskDir, { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".js"))
    .sort();
  return files
    .map((file) => `${file} ${Math.round(fs.statSync(path.join(taskDir, file)).size / 1024)} KiB`)
    .join(", ");
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { runs: { type: "string", default: "10" } },
    allowPositionals: true,
  });
  const runs = Number(values.runs);
  const distDirs =
    positionals.length > 0 ? positionals.map((dir) => path.resolve(dir)) : [path.join(REPO, "dist")];
  const until = ["any", "azure"] as const;
  const builds = distDirs.map((dir) => ({
    dir,
    samples: { any: [] as number[], azure: [] as number[] },
    cpuSamples: { any: [] as number[], azure: [] as number[] },
  }));
  await withStandins(COLD_START_LATENCY, async (standins) => {
    for (let round = 0; round <= runs; round++) {
      for (const build of builds) {
        for (const first of until) {
          const sample = await coldStart(standins, "bundle", build.dir, first);
          // Round 0 fills the file system cache; it is not counted.
          if (round === 0) continue;
          build.samples[first].push(sample.ms);
          if (sample.cpuMs !== undefined) build.cpuSamples[first].push(sample.cpuMs);
        }
      }
    }
  });
  const label = { any: "cold start (to the first request)", azure: "to the first Entra ID or ARM request" };
  for (const { dir, samples, cpuSamples } of builds) {
    console.log(`${dir} (${bundleSizes(dir)})`);
    for (const first of until) {
      const summary = summarise(samples[first]);
      const cpu = summarise(cpuSamples[first]);
      console.log(
        `  ${label[first]}: median ${summary.medianMs} ms (min ${summary.minMs}, max ${summary.maxMs}) over ${summary.runs} runs; samples ${summary.samplesMs.join(" ")}`,
      );
      if (cpu.runs > 0)
        console.log(`    CPU time by then: median ${cpu.medianMs} ms (min ${cpu.minMs}, max ${cpu.maxMs})`);
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

// Decides whether an end-to-end suite runs: it needs a real Docker engine.
import { dockerAvailable } from "../../standins/images";

/**
 * For a suite's before hook: skips the suite with one line when there is no Docker engine, except under CI,
 * where a missing engine fails the suite instead of hiding it.
 */
export async function requireDockerEngine(context: Mocha.Context): Promise<void> {
  if (await dockerAvailable()) return;
  if (process.env.CI === "true") throw new Error("no Docker engine, and CI requires the end-to-end tests");
  console.log(`SKIPPED: no Docker engine (${context.test?.parent?.fullTitle() ?? "end-to-end suite"})`);
  context.skip();
}

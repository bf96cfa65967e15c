// Run once before the parallel mocha workers (npm run test:all): what several test files would otherwise make
// at the same time. Each file still makes what it needs when run on its own.
import { dockerAvailable, ensureBaseImage } from "../standins/images";
import { ensureBundles } from "../standins/taskProcess";

async function prepare(): Promise<void> {
  await ensureBundles();
  // Two workers debootstrapping the base image at once would write the same cache file.
  if (await dockerAvailable()) await ensureBaseImage();
}

prepare().catch((error: unknown) => {
  console.error(`test preparation failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});

// Bundles every task (tasks/<Task>/index.ts with a task.json beside it) into dist/<Task>/index.js,
// a single CommonJS file for the agent's Node 20/24 handlers, with task.json and the icon next to it.
import { build } from "esbuild";
import { copyFile, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const tasksDir = path.join(repoRoot, "tasks");
const distDir = path.join(repoRoot, "dist");
const iconFile = path.join(repoRoot, "images", "icon.png");

// ssh2 (pulled in by dockerode's docker-modem) loads native add-ons inside try/catch and falls back to
// pure JavaScript. Resolving them to a module that throws keeps that fallback on every machine, instead of
// picking up whatever native build happens to sit in a node_modules folder above the bundle.
const optionalNativeAddons = {
  name: "optional-native-addons",
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^cpu-features$|\.node$/ }, (args) => ({
      path: args.path,
      namespace: "optional-native-addon",
    }));
    pluginBuild.onLoad({ filter: /.*/, namespace: "optional-native-addon" }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`native add-on ${args.path} is not bundled`)});`,
      loader: "js",
    }));
  },
};

async function taskFolders() {
  const entries = await readdir(tasksDir, { withFileTypes: true });
  return entries
    .filter((entry) => entry.isDirectory() && existsSync(path.join(tasksDir, entry.name, "task.json")))
    .map((entry) => entry.name)
    .sort();
}

async function buildTask(taskFolder) {
  const sourceDir = path.join(tasksDir, taskFolder);
  const outDir = path.join(distDir, taskFolder);
  const entry = path.join(sourceDir, "index.ts");
  if (!existsSync(entry)) {
    throw new Error(`${path.relative(repoRoot, entry)} is missing`);
  }
  // Build beside the output and move each file into place: a test running the bundle never sees half a build.
  const stagingDir = path.join(distDir, `.staging-${taskFolder}-${process.pid}`);
  await rm(stagingDir, { recursive: true, force: true });
  await mkdir(stagingDir, { recursive: true });
  await build({
    entryPoints: [entry],
    outfile: path.join(stagingDir, "index.js"),
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    minify: true,
    sourcemap: false,
    legalComments: "none",
    plugins: [optionalNativeAddons],
    logLevel: "warning",
  });
  await copyFile(path.join(sourceDir, "task.json"), path.join(stagingDir, "task.json"));
  await copyFile(iconFile, path.join(stagingDir, "icon.png"));
  await mkdir(outDir, { recursive: true });
  for (const file of await readdir(stagingDir)) {
    await rename(path.join(stagingDir, file), path.join(outDir, file));
  }
  await rm(stagingDir, { recursive: true, force: true });
  const { size } = await stat(path.join(outDir, "index.js"));
  console.log(`built dist/${taskFolder}/index.js (${(size / 1024).toFixed(0)} KiB)`);
}

async function buildAll() {
  const folders = await taskFolders();
  if (folders.length === 0) {
    throw new Error("no tasks found under tasks/");
  }
  for (const folder of folders) {
    await buildTask(folder);
  }
}

try {
  await buildAll();
} catch (error) {
  // esbuild has already printed its own errors with their source locations.
  if (!Array.isArray(error.errors)) console.error(`build failed: ${error.message}`);
  process.exitCode = 1;
}

// Bundles every task (tasks/<Task>/index.ts with a task.json beside it) into dist/<Task>/index.js, a
// CommonJS file for the agent's Node 20/24 handlers, with task.json, the icon and the providers' libraries
// (dist/<Task>/providers/<provider>.js) next to it.
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

// Each provider's SDKs go into a file of their own, dist/<Task>/providers/<provider>.js, that Node compiles
// only when that provider runs: the Docker client brings gRPC, protobuf and ssh2, the aci provider the
// Azure SDK and MSAL, and each is as large as everything else the task needs. In index.js an import of one
// of these packages becomes `require("./providers/<provider>.js")[<package>]`. It stays lazy because the
// provider modules are reached only through createProvider's `await import()`, which esbuild turns into a
// module initialised on first use. Only third-party packages move: the task's own modules (and so its
// error classes, which are checked with instanceof) stay in index.js as one copy. `require` resolves the
// relative path from index.js itself, wherever the agent unpacked the task. The bundle test checks that
// the aci path never loads providers/docker.js.
const providerLibraries = {
  aci: ["@azure/arm-containerinstance", "@azure/core-rest-pipeline", "@azure/identity"],
  docker: ["dockerode", "tar-stream"],
};
const providerOfLibrary = new Map(
  Object.entries(providerLibraries).flatMap(([provider, packages]) =>
    packages.map((name) => [name, provider]),
  ),
);

const libraryOutsideBundle = {
  name: "provider-libraries",
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^[@a-z]/ }, (args) =>
      providerOfLibrary.has(args.path) ? { path: args.path, namespace: "provider-library" } : undefined,
    );
    pluginBuild.onResolve({ filter: /^\.\/providers\//, namespace: "provider-library" }, (args) => ({
      path: args.path,
      external: true,
    }));
    pluginBuild.onLoad({ filter: /.*/, namespace: "provider-library" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(`./providers/${providerOfLibrary.get(args.path)}.js`)})[${JSON.stringify(args.path)}];`,
      loader: "js",
    }));
  },
};

const commonOptions = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  minify: true,
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
};

/** Builds providers/<provider>.js for every provider into the folder; the same files serve every task. */
async function buildProviderLibraries(outDir) {
  for (const [provider, packages] of Object.entries(providerLibraries)) {
    const exportsByName = packages.map((name) => `${JSON.stringify(name)}: require(${JSON.stringify(name)})`);
    await build({
      ...commonOptions,
      stdin: { contents: `module.exports = { ${exportsByName.join(", ")} };`, resolveDir: repoRoot },
      outfile: path.join(outDir, `${provider}.js`),
      plugins: [optionalNativeAddons],
    });
  }
}

async function taskFolders() {
  const entries = await readdir(tasksDir, { withFileTypes: true });
  return entries
    .filter((entry) => entry.isDirectory() && existsSync(path.join(tasksDir, entry.name, "task.json")))
    .map((entry) => entry.name)
    .sort();
}

/** Moves every file from one folder tree into another, replacing each file in one step. */
async function moveFiles(fromDir, toDir) {
  await mkdir(toDir, { recursive: true });
  for (const entry of await readdir(fromDir, { withFileTypes: true })) {
    const from = path.join(fromDir, entry.name);
    const to = path.join(toDir, entry.name);
    if (entry.isDirectory()) await moveFiles(from, to);
    else await rename(from, to);
  }
}

async function buildTask(taskFolder, providerLibrariesDir) {
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
    ...commonOptions,
    entryPoints: [entry],
    outfile: path.join(stagingDir, "index.js"),
    plugins: [libraryOutsideBundle, optionalNativeAddons],
  });
  await mkdir(path.join(stagingDir, "providers"));
  for (const file of await readdir(providerLibrariesDir)) {
    await copyFile(path.join(providerLibrariesDir, file), path.join(stagingDir, "providers", file));
  }
  await copyFile(path.join(sourceDir, "task.json"), path.join(stagingDir, "task.json"));
  await copyFile(iconFile, path.join(stagingDir, "icon.png"));
  await moveFiles(stagingDir, outDir);
  await rm(stagingDir, { recursive: true, force: true });
  const files = ["index.js", ...Object.keys(providerLibraries).map((provider) => `providers/${provider}.js`)];
  const sizes = [];
  for (const file of files) {
    const { size } = await stat(path.join(outDir, file));
    sizes.push(`${file} ${(size / 1024).toFixed(0)} KiB`);
  }
  console.log(`built dist/${taskFolder}: ${sizes.join(", ")}`);
}

async function buildAll() {
  const folders = await taskFolders();
  if (folders.length === 0) {
    throw new Error("no tasks found under tasks/");
  }
  const providerLibrariesDir = path.join(distDir, `.staging-providers-${process.pid}`);
  await rm(providerLibrariesDir, { recursive: true, force: true });
  try {
    await buildProviderLibraries(providerLibrariesDir);
    for (const folder of folders) {
      await buildTask(folder, providerLibrariesDir);
    }
  } finally {
    await rm(providerLibrariesDir, { recursive: true, force: true });
  }
}

try {
  await buildAll();
} catch (error) {
  // esbuild has already printed its own errors with their source locations.
  if (!Array.isArray(error.errors)) console.error(`build failed: ${error.message}`);
  process.exitCode = 1;
}

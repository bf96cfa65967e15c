// Builds the tasks and packs the extension into out/<publisher>.<id>-<version>.vsix with tfx (offline).
// Usage: npm run package [-- --publisher <publisher>] [--extension-id <id>] [--rev-version] [--skip-build]
// --skip-build packs dist/ as it is: for the package test, which has built the bundles already.
import { spawnSync } from "node:child_process";
import { mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outDir = path.join(repoRoot, "out");
const tfxCli = path.join(repoRoot, "node_modules", "tfx-cli", "_build", "tfx-cli.js");

// tfx looks for each task contribution's task.json at <root>/<properties.name>, ignoring the files'
// packagePath, so it warns about tasks that are packaged from dist/. The package test checks that every
// contributed folder in the .vsix holds task.json, which is what this warning is about.
const packagePathWarning = /^warning: Build task contribution '[^']+' does not have a task\.json file\./;

function parseOptions() {
  try {
    return parseArgs({
      options: {
        publisher: { type: "string" },
        "extension-id": { type: "string" },
        "rev-version": { type: "boolean", default: false },
        "skip-build": { type: "boolean", default: false },
      },
    }).values;
  } catch (error) {
    console.error(error.message);
    console.error(
      "usage: npm run package [-- --publisher <publisher>] [--extension-id <id>] [--rev-version] [--skip-build]",
    );
    process.exit(2);
  }
}

const options = parseOptions();

function runNode(args) {
  const result = spawnSync(process.execPath, args, {
    cwd: repoRoot,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (result.status !== 0) {
    process.stderr.write(result.stdout ?? "");
    console.error(`${path.basename(args[0])} failed with exit code ${result.status ?? result.signal}`);
    process.exit(1);
  }
  return result.stdout;
}

function createVsix() {
  const tfxArgs = [
    tfxCli,
    "extension",
    "create",
    "--root",
    repoRoot,
    "--manifest-globs",
    "vss-extension.json",
    "--output-path",
    outDir,
    "--no-prompt",
    "--json",
  ];
  if (options.publisher) tfxArgs.push("--publisher", options.publisher);
  if (options["extension-id"]) tfxArgs.push("--extension-id", options["extension-id"]);
  if (options["rev-version"]) tfxArgs.push("--rev-version");

  const lines = runNode(tfxArgs).split("\n");
  const jsonStart = lines.indexOf("{");
  for (const line of lines.slice(0, Math.max(jsonStart, 0))) {
    const plain = line.replace(/\x1b\[[0-9;]*m/g, "");
    if (plain.trim() !== "" && !packagePathWarning.test(plain)) console.warn(plain);
  }
  if (jsonStart < 0) {
    console.error("tfx printed no result");
    process.exit(1);
  }
  return JSON.parse(lines.slice(jsonStart).join("\n"));
}

if (!options["skip-build"]) process.stdout.write(runNode([path.join(repoRoot, "scripts", "build.mjs")]));
mkdirSync(outDir, { recursive: true });
const created = createVsix();
const vsixSize = statSync(created.path).size;
console.log(
  `packaged ${path.relative(repoRoot, created.path)} (${(vsixSize / 1024).toFixed(0)} KiB): ` +
    `${created.publisher}.${created.extensionId} ${created.version}`,
);

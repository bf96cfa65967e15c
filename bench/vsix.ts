import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO } from "../standins/taskProcess";

export interface VsixSize {
  file: string;
  bytes: number;
  packagingMs: number;
}

/** Builds the bundles and packs the extension with scripts/package.mjs, then reads the size of the .vsix it made. */
export function packageExtension(): VsixSize {
  const began = Date.now();
  const printed = execFileSync(process.execPath, [path.join(REPO, "scripts", "package.mjs")], {
    cwd: REPO,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const packagingMs = Date.now() - began;
  const file = /^packaged (\S+\.vsix) /m.exec(printed)?.[1];
  if (!file) throw new Error(`scripts/package.mjs did not say which .vsix it made:\n${printed}`);
  return { file, bytes: fs.statSync(path.join(REPO, file)).size, packagingMs };
}

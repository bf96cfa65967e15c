import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { isBuiltin } from "node:module";
import path from "node:path";
import { inflateRawSync } from "node:zlib";
import { ensureBundles } from "../../standins/taskProcess";

const repoRoot = path.resolve(__dirname, "..", "..");
const packageScript = path.join(repoRoot, "scripts", "package.mjs");
const taskFolders = ["StartEphemeralAgentV1", "TeardownEphemeralAgentV1"];
/** Each provider's libraries, beside index.js, which loads the one of the chosen provider (scripts/build.mjs). */
const providerFiles = ["providers/aci.js", "providers/docker.js"];
const maxVsixBytes = 3 * 1024 * 1024;
/** "Each image should be 1366x768 pixels": the extension manifest reference on screenshots (Microsoft Learn,
 * azure-devops-docs). Every picture overview.md shows is also a screenshot (vss-extension.json). */
const pictureSize = { width: 1366, height: 768 };
/** Our budget per picture, so the .vsix stays small and the page loads fast; not a Marketplace limit. */
const maxPictureBytes = 512 * 1024;

interface Vsix {
  file: string;
  size: number;
  entries: Map<string, Buffer>;
}

/** Reads every file of a zip archive through its central directory. */
function readZip(zip: Buffer): Map<string, Buffer> {
  const endOfDirectory = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(endOfDirectory >= 0, "not a zip file");
  const entryCount = zip.readUInt16LE(endOfDirectory + 10);
  let offset = zip.readUInt32LE(endOfDirectory + 16);
  const entries = new Map<string, Buffer>();
  for (let index = 0; index < entryCount; index++) {
    assert.equal(zip.readUInt32LE(offset), 0x02014b50, "bad central directory entry");
    const method = zip.readUInt16LE(offset + 10);
    const compressedSize = zip.readUInt32LE(offset + 20);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const localHeader = zip.readUInt32LE(offset + 42);
    const name = zip.toString("utf8", offset + 46, offset + 46 + nameLength);
    const dataStart =
      localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
    const stored = zip.subarray(dataStart, dataStart + compressedSize);
    if (!name.endsWith("/")) entries.set(name, method === 0 ? stored : inflateRawSync(stored));
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

function packageExtension(...args: string[]): Vsix {
  const output = execFileSync(process.execPath, [packageScript, ...args], {
    cwd: repoRoot,
    encoding: "utf8",
  });
  const packaged = /^packaged (\S+\.vsix) /m.exec(output);
  assert.ok(packaged, output);
  const file = path.join(repoRoot, packaged[1]);
  return { file, size: statSync(file).size, entries: readZip(readFileSync(file)) };
}

function text(vsix: Vsix, name: string): string {
  const entry = vsix.entries.get(name);
  assert.ok(entry, `${name} is missing from ${path.basename(vsix.file)}`);
  return entry.toString("utf8");
}

/** Width and height from a PNG's IHDR chunk, which follows the 8-byte signature. */
function pngSize(png: Buffer): { width: number; height: number } {
  assert.equal(png.toString("latin1", 1, 4), "PNG", "not a PNG file");
  assert.equal(png.toString("latin1", 12, 16), "IHDR", "no IHDR chunk first");
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/** Every image overview.md shows: the targets of its markdown images. */
function overviewImages(): string[] {
  const overview = readFileSync(path.join(repoRoot, "overview.md"), "utf8");
  return [...overview.matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)].map(([, target]) => target);
}

function identity(vsix: Vsix): Record<string, string> {
  const element = /<Identity ([^>]*)\/>/.exec(text(vsix, "extension.vsixmanifest"));
  assert.ok(element, "no Identity element");
  return Object.fromEntries(
    [...element[1].matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key, value]),
  );
}

describe("npm run package", function () {
  this.timeout(240_000);
  let vsix: Vsix;

  // One packaging serves every test; it names its own publisher and id, as README's publishing steps do.
  before(async () => {
    await ensureBundles();
    vsix = packageExtension("--skip-build", "--publisher", "myorg", "--extension-id", "other-id");
  });

  it("produces a .vsix under 3 MB", () => {
    assert.ok(vsix.size < maxVsixBytes, `${vsix.size} bytes`);
  });

  it("identifies the extension with the publisher and id from the command line and the manifest's version", () => {
    const manifest = JSON.parse(readFileSync(path.join(repoRoot, "vss-extension.json"), "utf8")) as Record<
      string,
      string
    >;
    assert.deepEqual(identity(vsix), {
      Language: "en-US",
      Id: "other-id",
      Publisher: "myorg",
      Version: manifest.version,
    });
    assert.equal(path.basename(vsix.file), `myorg.other-id-${manifest.version}.vsix`);
  });

  it("contributes both tasks, each folder with task.json, index.js and icon", () => {
    const contributions = (
      JSON.parse(text(vsix, "extension.vsomanifest")) as {
        contributions: { type: string; targets: string[]; properties: { name: string } }[];
      }
    ).contributions;
    assert.deepEqual(contributions.map((contribution) => contribution.properties.name).sort(), taskFolders);
    for (const contribution of contributions) {
      assert.equal(contribution.type, "ms.vss-distributed-task.task");
      assert.deepEqual(contribution.targets, ["ms.vss-distributed-task.tasks"]);
      const folder = contribution.properties.name;
      const task = JSON.parse(text(vsix, `${folder}/task.json`)) as {
        execution: Record<string, { target: string }>;
      };
      for (const handler of Object.values(task.execution)) text(vsix, `${folder}/${handler.target}`);
      text(vsix, `${folder}/icon.png`);
    }
  });

  it("has the extension icon and overview", () => {
    assert.match(text(vsix, "extension.vsixmanifest"), /<Icon>images\/icon\.png<\/Icon>/);
    assert.deepEqual(vsix.entries.get("images/icon.png")?.subarray(1, 4).toString(), "PNG");
    assert.ok(text(vsix, "overview.md").length > 0);
  });

  it("packages every image overview.md shows, as an addressable PNG of the Marketplace's screenshot size", () => {
    const images = overviewImages();
    assert.deepEqual(images, ["images/flow.png", "images/run-summary.png"]);
    const manifest = text(vsix, "extension.vsixmanifest");
    for (const image of images) {
      const png = vsix.entries.get(image);
      assert.ok(png, `${image} is missing from ${path.basename(vsix.file)}`);
      assert.match(manifest, new RegExp(`Path="${image}" Addressable="true"`), `${image} is not addressable`);
      assert.ok(png.length <= maxPictureBytes, `${image}: ${png.length} bytes`);
      assert.deepEqual(pngSize(png), pictureSize, image);
    }
  });

  it("shows the pictures as the Marketplace's screenshots and links the packaged README", () => {
    const manifest = text(vsix, "extension.vsixmanifest");
    assert.match(
      manifest,
      /Type="Microsoft\.VisualStudio\.Services\.Screenshots\.1" [^>]*Path="images\/flow\.png"/,
    );
    assert.match(
      manifest,
      /Type="Microsoft\.VisualStudio\.Services\.Screenshots\.2" [^>]*Path="images\/run-summary\.png"/,
    );
    assert.match(text(vsix, "overview.md"), /\]\(README\.md\)/);
    assert.ok(text(vsix, "README.md").startsWith("# "));
  });

  it("holds nothing but the manifests, the pictures, the overview, README and the bundled tasks", () => {
    const expected = [
      "[Content_Types].xml",
      "extension.vsixmanifest",
      "extension.vsomanifest",
      "images/icon.png",
      "images/flow.png",
      "images/run-summary.png",
      "overview.md",
      "README.md",
      ...taskFolders.flatMap((folder) =>
        ["icon.png", "index.js", "task.json", ...providerFiles].map((file) => `${folder}/${file}`),
      ),
    ];
    assert.deepEqual([...vsix.entries.keys()].sort(), expected.sort());
  });

  it("bundles every dependency, so the tasks load nothing but Node built-ins and their own providers' files", () => {
    for (const folder of taskFolders) {
      for (const file of ["index.js", ...providerFiles]) {
        const bundle = text(vsix, `${folder}/${file}`);
        const loaded = new Set([...bundle.matchAll(/\brequire\("([^"]+)"\)/g)].map(([, id]) => id));
        const ownFiles = file === "index.js" ? providerFiles.map((providerFile) => `./${providerFile}`) : [];
        const external = [...loaded].filter((id) => !isBuiltin(id) && !ownFiles.includes(id));
        assert.deepEqual(external, [], `${folder}/${file} requires ${external.join(", ")}`);
      }
    }
  });
});

// npm run pictures: makes the Marketplace page's pictures (overview.md) from the project's own output.
//   images/flow.png         docs/pictures/flow.html, photographed
//   images/run-summary.png  the job summaries of a real `npm run demo` run (start and teardown tasks),
//                           rendered like the Azure Pipelines summary tab and photographed
// Needs what the demo needs (a Docker engine) and Chromium (Debian: apt-get install chromium); not part of
// `npm test`: the package test checks the pictures that are committed.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { marked } from "marked";
import { REPO } from "../standins/taskProcess";

// The manifest reference asks for screenshots of 1366x768 pixels; both pictures are screenshots.
const WIDTH = 1366;
const HEIGHT = 768;
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";

function main(): number {
  if (!existsSync(chromium)) {
    console.error(
      `Chromium is missing at ${chromium}: install it (apt-get install chromium) or set CHROMIUM.`,
    );
    return 1;
  }
  const work = mkdtempSync(path.join(tmpdir(), "pictures-"));
  try {
    photograph(path.join(REPO, "docs", "pictures", "flow.html"), "images/flow.png", work);
    const summaries = demoSummaries(work);
    const page = path.join(work, "run-summary.html");
    writeFileSync(page, summaryPage(summaries, 1));
    // Summaries taller than the picture are laid out wider and scaled down to fit it, whatever they hold.
    const scale = Math.min(1, HEIGHT / pageHeight(page, work));
    writeFileSync(page, summaryPage(summaries, scale));
    photograph(page, "images/run-summary.png", work);
    console.log(`  summaries scaled by ${scale.toFixed(2)}`);
    return 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Runs the demo and returns the start and the teardown task's summaries, as the tasks wrote them. */
function demoSummaries(work: string): { task: string; markdown: string }[] {
  const directory = path.join(work, "summaries");
  console.log("running npm run demo for its job summaries…");
  const demo = spawnSync(process.execPath, ["--import", "tsx", "scripts/demo.ts"], {
    cwd: REPO,
    env: { ...process.env, DEMO_SUMMARIES_DIR: directory },
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (demo.status !== 0) throw new Error(`npm run demo failed (exit code ${demo.status ?? demo.signal})`);
  return ["start", "teardown"].map((task) => ({
    task,
    markdown: readFileSync(path.join(directory, `${task}.md`), "utf8"),
  }));
}

/** The summaries as the run's Extensions tab shows them: one section per attached summary. */
function summaryPage(summaries: { task: string; markdown: string }[], scale: number): string {
  const sections = summaries
    .map(
      ({ task, markdown }) =>
        `<section><h2 class="attachment">ephemeral-agents-${task}</h2>` +
        `<div class="markdown">${marked.parse(markdown, { async: false })}</div></section>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8" /><style>
  html { zoom: ${scale}; background: #f8f8f8; }
  html, body { margin: 0; overflow: hidden; }
  body { color: #201f1e; font: 14px "Segoe UI", "DejaVu Sans", sans-serif; width: ${WIDTH / scale}px; }
  header { background: #ffffff; border-bottom: 1px solid #e1dfdd; padding: 16px 32px 0; }
  header h1 { font-size: 20px; font-weight: 600; margin: 0 0 12px; }
  nav span { display: inline-block; padding: 8px 0; margin-right: 24px; color: #605e5c; }
  nav span.selected { color: #201f1e; border-bottom: 2px solid #0078d4; font-weight: 600; }
  main { padding: 16px 32px 24px; }
  section { background: #ffffff; border-radius: 4px; box-shadow: 0 1px 3px rgba(0,0,0,.13); margin-bottom: 16px; padding: 4px 24px 16px; }
  h2.attachment { font-size: 14px; color: #605e5c; font-weight: 600; border-bottom: 1px solid #edebe9; padding-bottom: 8px; }
  .markdown h3 { font-size: 18px; font-weight: 600; margin: 12px 0; }
  .markdown ul { padding-left: 20px; }
  .markdown li { margin: 4px 0; }
  .markdown code { font: 13px "DejaVu Sans Mono", monospace; background: #f3f2f1; padding: 1px 4px; border-radius: 2px; }
  .markdown table { border-collapse: collapse; margin: 12px 0; }
  .markdown th, .markdown td { border: 1px solid #e1dfdd; padding: 6px 12px; text-align: left; }
  .markdown th { background: #faf9f8; font-weight: 600; }
</style></head><body>
<header><h1>Deploy to the private network · run summary</h1>
<nav><span>Summary</span><span>Tests</span><span class="selected">Extensions</span></nav></header>
<main>
${sections}
</main>
<script>document.body.dataset.height = String(document.documentElement.scrollHeight);</script>
</body></html>
`;
}

function chromiumArguments(work: string): string[] {
  const profile = mkdtempSync(path.join(work, "profile-"));
  return [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    `--user-data-dir=${profile}`,
  ];
}

/** How tall the page is once laid out, as its own script measured it. */
function pageHeight(page: string, work: string): number {
  const result = spawnSync(
    chromium,
    [...chromiumArguments(work), "--dump-dom", `--window-size=${WIDTH},${HEIGHT}`, pathToFileURL(page).href],
    { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
  );
  const height = /data-height="(\d+)"/.exec(result.stdout)?.[1];
  if (!height) throw new Error(`Chromium did not lay out ${page}`);
  return Number(height);
}

function photograph(page: string, picture: string, work: string): void {
  const output = path.join(REPO, picture);
  rmSync(output, { force: true });
  const result = spawnSync(
    chromium,
    [
      ...chromiumArguments(work),
      `--screenshot=${output}`,
      `--window-size=${WIDTH},${HEIGHT}`,
      pathToFileURL(page).href,
    ],
    { stdio: ["ignore", "ignore", "ignore"] },
  );
  if (result.status !== 0 || !existsSync(output)) throw new Error(`Chromium could not photograph ${page}`);
  console.log(`${picture}: ${WIDTH}x${HEIGHT}`);
}

try {
  process.exitCode = main();
} catch (error) {
  console.error(`pictures failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}

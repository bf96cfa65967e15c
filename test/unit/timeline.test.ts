import assert from "node:assert/strict";
import {
  formatOffset,
  listeningSince,
  timelineLine,
  timelineOf,
  timelineTable,
  type Milestones,
} from "../../tasks/common/core/timeline";
import { teardownSummary } from "../../tasks/common/teardown/summary";

const requested = new Date("2026-12-05T08:10:02.000Z");
const after = (ms: number) => new Date(requested.getTime() + ms);
const full: Milestones = {
  requested,
  running: after(1200),
  online: after(6300),
  "job queued": after(4000),
  "job started": after(6800),
  "job ended": after(75_000),
  removed: after(184_600),
};

describe("agent timeline", () => {
  it("orders the known milestones by the vocabulary, each with its time since the request", () => {
    const entries = timelineOf({ removed: after(9000), requested, online: after(5000) });
    assert.deepEqual(entries, [
      { milestone: "requested", at: requested, sinceRequestedMs: 0 },
      { milestone: "online", at: after(5000), sinceRequestedMs: 5000 },
      { milestone: "removed", at: after(9000), sinceRequestedMs: 9000 },
    ]);
    assert.deepEqual(timelineOf({ online: after(5000) }), [{ milestone: "online", at: after(5000) }]);
  });

  it("writes offsets in seconds below a minute, in minutes and seconds above", () => {
    assert.equal(formatOffset(0), "+0.0s");
    assert.equal(formatOffset(6349), "+6.3s");
    assert.equal(formatOffset(59_949), "+59.9s");
    assert.equal(formatOffset(184_600), "+3m05s");
    assert.equal(formatOffset(-1500), "-1.5s");
  });

  it("reads as one line", () => {
    assert.equal(
      timelineLine(full),
      "requested 08:10:02 · running +1.2s · online +6.3s · job queued +4.0s · job started +6.8s · job ended +1m15s · removed +3m05s",
    );
  });

  it("makes a Markdown table with a column per milestone, '–' where one was not seen", () => {
    assert.deepEqual(
      timelineTable([
        { name: "agent-1", milestones: full },
        { name: "agent-2", milestones: { requested, online: after(5000), removed: after(9000) } },
        { name: "stray", milestones: { "job ended": after(1000) } },
      ]),
      [
        "| Agent | requested (UTC) | running | online | job queued | job started | job ended | removed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        "| agent-1 | 08:10:02 | +1.2s | +6.3s | +4.0s | +6.8s | +1m15s | +3m05s |",
        "| agent-2 | 08:10:02 | – | +5.0s | – | – | – | +9.0s |",
        "| stray | – | – | – | – | – | 08:10:03 | – |",
      ],
    );
  });

  it("is part of the teardown summary, beside each agent's removal", () => {
    const summary = teardownSummary(
      {
        outcome: "Succeeded",
        agents: [
          {
            name: "agent-1",
            lived: "3 min 5 s",
            job: "'Deploy' succeeded",
            container: "removed (exited, exit code 0)",
            registration: "removed",
            swept: false,
            milestones: full,
          },
        ],
        issues: [],
        providerDescription: "Docker engine",
      },
      "4711",
    );
    assert.match(
      summary,
      /\*\*Timeline\*\* \(time since the agent was requested\)\n\n\| Agent \| requested \(UTC\) \|/,
    );
    assert.match(
      summary,
      /\| agent-1 \| 08:10:02 \| \+1\.2s \| \+6\.3s \| \+4\.0s \| \+6\.8s \| \+1m15s \| \+3m05s \|/,
    );
  });

  it("reads when the agent started listening for jobs from its log, as the real listener writes it", () => {
    const log = [
      "Scanning for tool capabilities.",
      "Connecting to the server.",
      "2026-12-05 08:10:09Z: Listening for Jobs",
      "2026-12-05 08:10:12Z: Running job: Deploy",
      "2026-12-05 08:11:02Z: Listening for Jobs",
    ].join("\n");
    assert.deepEqual(listeningSince(log), new Date("2026-12-05T08:10:09Z"));
    assert.equal(listeningSince("Listening for Jobs\n"), undefined);
    assert.equal(listeningSince(""), undefined);
  });
});

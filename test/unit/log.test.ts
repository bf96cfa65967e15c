import assert from "node:assert/strict";
import { formatDuration } from "../../tasks/common/core/log";

describe("formatDuration", () => {
  it("shows tenths of a second below a minute", () => {
    assert.equal(formatDuration(0), "0.0 s");
    assert.equal(formatDuration(1234), "1.2 s");
    assert.equal(formatDuration(59_940), "59.9 s");
  });

  it("shows a minute for what rounds up to 60 s", () => {
    assert.equal(formatDuration(59_960), "1 min 0 s");
    assert.equal(formatDuration(60_000), "1 min 0 s");
  });

  it("rounds to whole seconds before splitting off the minutes", () => {
    assert.equal(formatDuration(119_400), "1 min 59 s");
    assert.equal(formatDuration(119_600), "2 min 0 s");
  });

  it("counts an hour in minutes", () => {
    assert.equal(formatDuration(3_600_000), "60 min 0 s");
  });
});

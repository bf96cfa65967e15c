import * as tl from "azure-pipelines-task-lib/task";
import type { Log } from "../core/log";

/** The core's log on the agent: plain lines, warnings as issues, groups as collapsible sections. */
export const pipelineLog: Log = {
  info: (message) => console.log(message),
  warn: (message) => tl.warning(message),
  group: (title, lines) => {
    console.log(`##[group]${title}`);
    console.log(lines);
    console.log("##[endgroup]");
  },
};

// MockTestRunner runs `node <this file>`: register tsx, then run the task's TypeScript sources.
require("tsx/cjs");
require("./taskMockRun.ts").runUnderTaskMockRunner("TeardownEphemeralAgentV1");

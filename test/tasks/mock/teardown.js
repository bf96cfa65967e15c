// MockTestRunner runs `node <this file>` (with tsx imported through NODE_OPTIONS): run the task's TypeScript sources.
require("./taskMockRun.ts").runUnderTaskMockRunner("TeardownEphemeralAgentV1");

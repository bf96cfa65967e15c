/** Environment variables through which a MockTestRunner test steers the mock-run script (taskMockRun.ts). */

/** JSON object of input name -> value, which the script sets with TaskMockRunner.setInput. */
export const INPUTS_VARIABLE = "MOCK_TASK_INPUTS";
/** MockTestRunner blocks the test process until the task ends, so the script ends the task after this long. */
export const TIMEOUT_VARIABLE = "MOCK_TASK_TIMEOUT_MS";

/**
 * Which of the user's `environment` entries the agent will not report as capabilities, so that a demand on
 * them would never match. The rules are those of the agent's EnvironmentCapabilitiesProvider.cs
 * (src/Microsoft.VisualStudio.Services.Agent/Capabilities in microsoft/azure-pipelines-agent), on Linux, where
 * it compares names exactly; the stand-in agent (standins/fake-agent/config.sh) applies the same rules.
 * VSO_AGENT_IGNORE, the provider's other source of ignored names, is not in the list: the start task reserves it.
 */

/** The provider's built-in ignore list (s_wellKnownIgnored). */
const ALWAYS_IGNORED: readonly string[] = [
  "comp_wordbreaks",
  "ls_colors",
  "TERM",
  "TERM_PROGRAM",
  "TERM_PROGRAM_VERSION",
  "SHLVL",
  "PSMODULEPATH",
  "SYSTEM_ACCESSTOKEN",
];

/** Values this long or longer are skipped (IgnoreValueLength; .NET string length, UTF-16 units as in JavaScript). */
export const MAX_REPORTED_VALUE_LENGTH = 1024;

/** The agent reads these as its own configuration inputs and removes them from its environment (CommandSettings.cs). */
const AGENT_INPUT_PREFIX = "VSTS_AGENT_INPUT_";

export interface UnreportedEnvironmentEntry {
  name: string;
  reason: string;
}

export function unreportedEnvironment(environment: Record<string, string>): UnreportedEnvironmentEntry[] {
  const unreported: UnreportedEnvironmentEntry[] = [];
  for (const [name, value] of Object.entries(environment)) {
    if (ALWAYS_IGNORED.includes(name)) {
      unreported.push({ name, reason: "the agent never reports it (its built-in ignore list)" });
    } else if (name.toUpperCase().startsWith(AGENT_INPUT_PREFIX)) {
      unreported.push({ name, reason: `the agent reads ${AGENT_INPUT_PREFIX}* as its own settings` });
    } else if (value.length >= MAX_REPORTED_VALUE_LENGTH) {
      unreported.push({
        name,
        reason: `its value has ${value.length} characters; the agent does not report values of ${MAX_REPORTED_VALUE_LENGTH} or more`,
      });
    }
  }
  return unreported;
}

// What the end-to-end suites that run the bundled tasks with the agent image share: the image, and per test a
// fresh organization of stand-ins and run key, with nothing of the run left on the engine afterwards.
import assert from "node:assert/strict";
import type { AciOnDocker } from "../../standins/aciOnDocker";
import { buildAgentImage } from "../../standins/images";
import {
  newRunKey,
  removeContainersOfRun,
  startOrganization,
  type Organization,
  type Provider,
} from "../../standins/organization";
import { ensureBundles, type Standins } from "../../standins/taskProcess";
import { requireDockerEngine } from "./engine";

/** Registers its mocha hooks in the describe block that makes it. */
export class EngineRun {
  image = "";
  runKey = "";
  /** Turns container groups into containers on the engine (provider aci); closed after each test. */
  bridge: AciOnDocker | undefined;
  private current: Organization | undefined;

  constructor() {
    before(async function () {
      await requireDockerEngine(this);
    });
    before(async () => {
      this.image = await buildAgentImage();
      await ensureBundles();
    });
    beforeEach(async () => {
      this.runKey = newRunKey();
      this.current = await startOrganization();
    });
    // Also after a failed test: nothing of the run may stay on the engine.
    afterEach(async () => {
      await this.bridge?.close();
      this.bridge = undefined;
      await removeContainersOfRun(this.runKey);
      await this.current?.close();
      this.current = undefined;
    });
  }

  organization(): Organization {
    assert.ok(this.current, "the organization of this test");
    return this.current;
  }

  /** The docker container that runs an agent: the agent's name, or the bridge's container for its group. */
  containerOf(provider: Provider, agentName: string): string {
    return provider === "docker" ? agentName : (this.bridge?.containerName(agentName) ?? "");
  }

  standins(): Standins {
    return this.organization().standins;
  }
}

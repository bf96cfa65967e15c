import assert from "node:assert/strict";
import { InputError } from "../../tasks/common/core/errors";
import { socketToShare } from "../../tasks/common/core/dockerEngine";
import { parseStartInputs } from "../../tasks/common/inputs/start";

describe("which Docker engine socket an agent may share (shareDockerEngine)", () => {
  it("shares the Unix socket the task talks to, by its path on this machine", () => {
    assert.equal(socketToShare("unix:///var/run/docker.sock"), "/var/run/docker.sock");
    assert.equal(
      socketToShare("unix:///home/ci/.docker/run/docker.sock"),
      "/home/ci/.docker/run/docker.sock",
    );
  });

  for (const address of [
    "tcp://docker.internal:2376",
    "https://docker.internal:2376",
    "http://127.0.0.1:2375",
    "ssh://builder@docker.internal",
  ]) {
    it(`refuses an engine reached over the network: ${address}`, () => {
      assert.throws(
        () => socketToShare(address),
        (error: unknown) =>
          error instanceof InputError &&
          error.input === "shareDockerEngine" &&
          error.message.includes(`${address} is reached over the network`) &&
          /client key must not reach a job: run the start job on that engine's host/.test(error.message),
      );
    });
  }

  it("refuses a Windows named pipe", () => {
    assert.throws(
      () => socketToShare("npipe:////./pipe/docker_engine"),
      /Input 'shareDockerEngine'.*Windows named pipe.*run the start job on a Linux engine's host/,
    );
  });

  it("is off by default and read only for the docker provider", () => {
    const base = { provider: "docker", image: "agent:1", agentPool: "p", runKey: "1" };
    const docker = (inputs: ReturnType<typeof parseStartInputs>) =>
      inputs.provider === "docker" ? inputs.docker.shareDockerEngine : undefined;
    assert.equal(docker(parseStartInputs(base)), false);
    assert.equal(docker(parseStartInputs({ ...base, shareDockerEngine: "true" })), true);
  });
});

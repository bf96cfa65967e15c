import assert from "node:assert/strict";
import { rootCertificates } from "node:tls";
import { azurePipelineOptions } from "../../tasks/common/clients/entra";
import { CA_CERT_PATH } from "../../standins";

describe("the agent's proxy and certificates for the Azure SDK pipeline", () => {
  const proxy = { url: "http://proxy.corp:3128", username: "svc", password: "p", bypass: ["\\.internal\\b"] };

  it("gives the proxy as host with scheme, port and credentials", () => {
    assert.deepEqual(azurePipelineOptions({ proxy }, "https://management.azure.com/").proxyOptions, {
      host: "http://proxy.corp",
      port: 3128,
      username: "svc",
      password: "p",
    });
    assert.equal(
      azurePipelineOptions({ proxy: { ...proxy, url: "https://proxy.corp" } }, "https://x/").proxyOptions
        ?.port,
      443,
    );
  });

  it("leaves out the proxy for a URL the bypass list matches, case-insensitively, as the task library does", () => {
    assert.equal(azurePipelineOptions({ proxy }, "https://ARM.Internal/").proxyOptions, undefined);
    assert.equal(azurePipelineOptions(undefined, "https://management.azure.com/").proxyOptions, undefined);
  });

  it("adds the agent's CA to the well-known roots rather than replacing them", () => {
    const ca = azurePipelineOptions({ certificates: { caFile: CA_CERT_PATH } }, "https://x/").tlsOptions?.ca;
    assert.ok(Array.isArray(ca));
    assert.equal(ca.length, rootCertificates.length + 1);
    assert.match(String(ca.at(-1)), /BEGIN CERTIFICATE/);
  });
});

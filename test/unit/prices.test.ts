import assert from "node:assert/strict";
import type { AzureConnection } from "../../tasks/common/clients/entra";
import { pricesFor } from "../../tasks/common/platform/prices";
import type { ProviderSettings } from "../../tasks/common/providers";

/** Provider settings for aci with a connection to the cloud of `armUrl`; pricesFor reads nothing else of them. */
function aciWith(armUrl: string): ProviderSettings {
  const connection = { armUrl } as AzureConnection;
  return { provider: "aci", aci: { connection } } as ProviderSettings;
}

const LOOKUP = { estimateCost: true, timeoutMs: 5000, signal: new AbortController().signal };

describe("where cost figures come from (platform/prices)", () => {
  it("has a source for the global cloud and for other clouds the list may cover", () => {
    assert.ok("source" in pricesFor(aciWith("https://management.azure.com/"), LOOKUP));
    assert.ok("source" in pricesFor(aciWith("https://management.usgovcloudapi.net/"), LOOKUP));
  });

  it("says why there is none: lookup off, Docker, Azure in China", () => {
    assert.deepEqual(
      pricesFor(aciWith("https://management.azure.com/"), { ...LOOKUP, estimateCost: false }),
      {
        unavailable: "the price lookup is off (estimateCost: false)",
      },
    );
    assert.deepEqual(pricesFor({ provider: "docker" } as ProviderSettings, LOOKUP), {
      unavailable: "containers on a Docker engine have no price list",
    });
    const china = pricesFor(aciWith("https://management.chinacloudapi.cn/"), LOOKUP);
    assert.ok("unavailable" in china && /Azure in China/.test(china.unavailable));
  });

  it("does not throw over a Resource Manager URL it cannot read", () => {
    assert.ok("source" in pricesFor(aciWith("not a url"), LOOKUP));
  });
});

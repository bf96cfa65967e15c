import assert from "node:assert/strict";
import {
  createPrivateKey,
  createPublicKey,
  createSign,
  createVerify,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
import {
  AGENT_CREDENTIAL_FILE_NAMES,
  agentCredentialFiles,
  agentKeyFrom,
  generateAgentKey,
  privateKeyFromRsaParametersFile,
  rsaParametersFile,
  type AgentKey,
} from "../../tasks/common/core/agentCredential";

const GENERATED_KEYS = 200;
/** Keys made by the task's own generateAgentKey; the others are built from pairs of their primes. */
const KEYS_FROM_THE_GENERATOR = 11;
/** Byte lengths .NET's RSA.ImportParameters accepts for an RSA-2048 key (RSAParameters, fixed-length big-endian). */
const DOTNET_LENGTHS = { modulus: 256, d: 256, p: 128, q: 128, dp: 128, dq: 128, inverseQ: 128, exponent: 3 };
const RSA_PARAMETER_NAMES = ["d", "dp", "dq", "exponent", "inverseQ", "modulus", "p", "q"];

function decodedLength(base64: unknown): number {
  assert.equal(typeof base64, "string");
  assert.match(base64 as string, /^[A-Za-z0-9+/]+={0,2}$/, "standard base64 with padding");
  return Buffer.from(base64 as string, "base64").length;
}

function bigIntOf(base64url: string | undefined): bigint {
  return BigInt(`0x${Buffer.from(base64url ?? "", "base64url").toString("hex")}`);
}

/** Minimal-length big-endian base64url, as a JWK holds it. */
function base64urlOf(value: bigint): string {
  const hex = value.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, "hex").toString("base64url");
}

function inverse(value: bigint, modulus: bigint): bigint {
  let [a, b, x, y] = [value % modulus, modulus, 1n, 0n];
  while (b !== 0n) {
    const quotient = a / b;
    [a, b, x, y] = [b, a - quotient * b, y, x - quotient * y];
  }
  return ((x % modulus) + modulus) % modulus;
}

function greatestCommonDivisor(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** The RSA key of two distinct primes, with e = 65537 and d modulo lcm(p-1, q-1), as OpenSSL makes it. */
function keyOfPrimes(p: bigint, q: bigint): KeyObject {
  const e = 65537n;
  const lambda = ((p - 1n) * (q - 1n)) / greatestCommonDivisor(p - 1n, q - 1n);
  const d = inverse(e, lambda);
  const jwk = {
    kty: "RSA",
    n: base64urlOf(p * q),
    e: base64urlOf(e),
    d: base64urlOf(d),
    p: base64urlOf(p),
    q: base64urlOf(q),
    dp: base64urlOf(d % (p - 1n)),
    dq: base64urlOf(d % (q - 1n)),
    qi: base64urlOf(inverse(q, p)),
  };
  return createPrivateKey({ key: jwk, format: "jwk" });
}

/**
 * 200 distinct RSA-2048 keys for the price of 11 key generations: the task's generator makes 11, and pairs of
 * their 22 primes (OpenSSL sets the top two bits of each, so every product has 2048 bits) make the rest.
 */
async function generatedKeys(): Promise<AgentKey[]> {
  const generated = await Promise.all(
    Array.from({ length: KEYS_FROM_THE_GENERATOR }, () => generateAgentKey()),
  );
  const primes = generated.flatMap(({ privateKey }) => {
    const jwk = privateKey.export({ format: "jwk" });
    return [bigIntOf(jwk.p), bigIntOf(jwk.q)];
  });
  const keys = [...generated];
  for (let i = 0; i < primes.length && keys.length < GENERATED_KEYS; i++) {
    for (let j = i + 1; j < primes.length && keys.length < GENERATED_KEYS; j++) {
      const sameGeneratedKey = i % 2 === 0 && j === i + 1;
      if (!sameGeneratedKey) keys.push(agentKeyFrom(keyOfPrimes(primes[i], primes[j])));
    }
  }
  return keys;
}

function signsAndVerifies(key: AgentKey, content: string): boolean {
  const restored = privateKeyFromRsaParametersFile(content);
  const signature = createSign("RSA-SHA256").update("header.claims").sign(restored);
  // The public key the registration carries, rebuilt from its two fields as the service would.
  const registered = createPublicKey({
    format: "jwk",
    key: {
      kty: "RSA",
      n: Buffer.from(key.publicKey.modulus, "base64").toString("base64url"),
      e: Buffer.from(key.publicKey.exponent, "base64").toString("base64url"),
    },
  });
  return createVerify("RSA-SHA256").update("header.claims").verify(registered, signature);
}

describe("agent credential", () => {
  it(`writes every field of ${GENERATED_KEYS} generated keys at the length .NET requires, and each file signs RS256`, async function () {
    this.timeout(600_000);
    const keys = await generatedKeys();
    assert.equal(new Set(keys.map((key) => key.publicKey.modulus)).size, GENERATED_KEYS, "distinct keys");
    let keysWithShortJwkField = 0;
    for (const key of keys) {
      const content = rsaParametersFile(key.privateKey);
      const parameters = JSON.parse(content) as Record<string, unknown>;
      assert.deepEqual(
        Object.keys(parameters)
          .filter((name) => RSA_PARAMETER_NAMES.includes(name))
          .sort(),
        RSA_PARAMETER_NAMES,
      );
      for (const [name, length] of Object.entries(DOTNET_LENGTHS)) {
        assert.equal(decodedLength(parameters[name]), length, `${name} of a generated key`);
      }
      assert.equal(parameters.exponent, "AQAB");
      assert.equal(decodedLength(key.publicKey.modulus), 256);
      assert.equal(key.publicKey.modulus, parameters.modulus);
      assert.equal(key.publicKey.exponent, parameters.exponent);
      assert.ok(
        signsAndVerifies(key, content),
        "the key read back from the file signs for the registered public key",
      );

      const jwk = key.privateKey.export({ format: "jwk" });
      const minimal = [jwk.d, jwk.p, jwk.q, jwk.dp, jwk.dq, jwk.qi].map(
        (value) => Buffer.from(value ?? "", "base64url").length,
      );
      if (minimal[0] < 256 || minimal.slice(1).some((length) => length < 128)) keysWithShortJwkField++;
    }
    // About one key in 13 has a field with a leading zero byte, so 200 keys include some with
    // near certainty (the chance of none is about 1e-7): the padding was exercised, not just the common case.
    assert.ok(keysWithShortJwkField > 0, "no generated key needed padding");
  });

  it("rejects a file whose key names are in another case, as the agent's case-sensitive reader does", async () => {
    const key = await generateAgentKey();
    const parameters = JSON.parse(rsaParametersFile(key.privateKey)) as Record<string, unknown>;
    const { modulus, ...rest } = parameters;
    assert.throws(
      () => privateKeyFromRsaParametersFile(JSON.stringify({ ...rest, Modulus: modulus })),
      /no modulus/,
    );
  });

  it("rejects a field shorter than .NET's fixed length (a minimal-length JWK value)", async () => {
    const key = await generateAgentKey();
    const parameters = JSON.parse(rsaParametersFile(key.privateKey)) as Record<string, string>;
    const shortened = Buffer.from(parameters.dp, "base64").subarray(1).toString("base64");
    assert.throws(
      () => privateKeyFromRsaParametersFile(JSON.stringify({ ...parameters, dp: shortened })),
      /dp has 127 bytes; 128 are needed/,
    );
  });

  it("refuses a key smaller than 2048 bits", () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
    assert.throws(() => privateKeyFromRsaParametersFile(rsaParametersFile(privateKey)), /at least 256/);
  });

  it("writes the settings and OAuth credentials under the names the listener reads", () => {
    const key = agentKeyFrom(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);
    const files = agentCredentialFiles(
      {
        agentId: 42,
        agentName: "ephemeral-7-abcde-1",
        poolId: 3,
        poolName: "Private",
        serverUrl: "https://dev.azure.com/myorg/",
        workFolder: "_work",
      },
      {
        clientId: "7d2c1e7a-0000-4000-8000-000000000001",
        authorizationUrl: "https://vstoken.dev.azure.com/org-id",
      },
      key,
    );
    assert.deepEqual(Object.keys(files).sort(), [...AGENT_CREDENTIAL_FILE_NAMES].sort());
    assert.deepEqual(JSON.parse(files[".agent"]), {
      agentId: 42,
      agentName: "ephemeral-7-abcde-1",
      poolId: 3,
      poolName: "Private",
      serverUrl: "https://dev.azure.com/myorg/",
      workFolder: "_work",
    });
    assert.deepEqual(JSON.parse(files[".credentials"]), {
      scheme: "OAuth",
      data: {
        clientId: "7d2c1e7a-0000-4000-8000-000000000001",
        authorizationUrl: "https://vstoken.dev.azure.com/org-id",
        oauthEndpointUrl: "https://vstoken.dev.azure.com/org-id",
      },
    });
    assert.ok(signsAndVerifies(key, files[".credentials_rsaparams"]));
  });
});

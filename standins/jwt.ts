import { createSign, createVerify, constants, type KeyLike, type KeyObject } from "node:crypto";

export type JwtClaims = Record<string, unknown> & {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
};

export interface DecodedJwt {
  header: Record<string, unknown>;
  claims: JwtClaims;
  signedPart: string;
  signature: Buffer;
}

function base64UrlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

export function signJwt(
  claims: JwtClaims,
  privateKey: KeyLike,
  header: Record<string, unknown> = {},
): string {
  const signedPart = `${base64UrlJson({ alg: "RS256", typ: "JWT", ...header })}.${base64UrlJson(claims)}`;
  const signature = createSign("RSA-SHA256").update(signedPart).sign(privateKey);
  return `${signedPart}.${signature.toString("base64url")}`;
}

export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    return {
      header: JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8")) as Record<string, unknown>,
      claims: JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8")) as JwtClaims,
      signedPart: `${parts[0]}.${parts[1]}`,
      signature: Buffer.from(parts[2], "base64url"),
    };
  } catch {
    return undefined;
  }
}

/** Verifies an RS256 or PS256 signature (msal-node signs client assertions with PS256, older versions with RS256). */
export function hasValidSignature(jwt: DecodedJwt, publicKey: KeyObject): boolean {
  const verifier = createVerify("RSA-SHA256").update(jwt.signedPart);
  if (jwt.header.alg === "RS256") return verifier.verify(publicKey, jwt.signature);
  if (jwt.header.alg === "PS256") {
    return verifier.verify(
      {
        key: publicKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
      },
      jwt.signature,
    );
  }
  return false;
}

/** Checks exp/nbf with a small clock skew allowance. */
export function isCurrent(claims: JwtClaims, skewSeconds = 300): boolean {
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== "number" || claims.exp + skewSeconds < now) return false;
  return typeof claims.nbf !== "number" || claims.nbf - skewSeconds <= now;
}

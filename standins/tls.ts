import { readFileSync } from "node:fs";
import path from "node:path";

const certsDirectory = path.join(__dirname, "certs");

/** The test-only CA; set NODE_EXTRA_CA_CERTS to this path in every process that talks to a stand-in over https. */
export const CA_CERT_PATH = path.join(certsDirectory, "ca.pem");

/** Private key and certificate (PEM, in one file) of a test app registration for ClientCertificateCredential. */
export const APP_CERTIFICATE_PATH = path.join(certsDirectory, "app-certificate.pem");

export function serverTlsOptions(): { key: Buffer; cert: Buffer } {
  return {
    key: readFileSync(path.join(certsDirectory, "server-key.pem")),
    cert: readFileSync(path.join(certsDirectory, "server-cert.pem")),
  };
}

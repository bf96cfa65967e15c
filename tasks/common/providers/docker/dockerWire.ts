import { pack } from "tar-stream";

/** A tar archive holding one file readable only by its owner, for a container's archive upload. */
export async function tokenArchive(fileName: string, content: string, ownerId: number): Promise<Buffer> {
  const archive = pack();
  archive.entry({ name: fileName, mode: 0o600, uid: ownerId, gid: ownerId }, content);
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/**
 * A tar archive holding a directory readable only by its owner, with files readable only by their owner: the
 * agent's own credential files (.agent, .credentials, .credentials_rsaparams).
 */
export async function privateFilesArchive(
  directory: string,
  files: Readonly<Record<string, string>>,
  ownerId: number,
): Promise<Buffer> {
  const archive = pack();
  archive.entry({ name: directory, type: "directory", mode: 0o700, uid: ownerId, gid: ownerId });
  for (const [name, content] of Object.entries(files)) {
    archive.entry({ name: `${directory}/${name}`, mode: 0o600, uid: ownerId, gid: ownerId }, content);
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

const FRAME_HEADER_BYTES = 8;
const STREAM_TYPES = new Set([0, 1, 2]);

/**
 * The text of a container log as the engine sends it without a TTY: frames of an 8-byte header (stream type,
 * three zero bytes, payload length) and the payload, stdout and stderr interleaved in order.
 */
export function demultiplexLogs(output: Buffer): string {
  const payloads: Buffer[] = [];
  let offset = 0;
  while (offset < output.length) {
    const framed =
      output.length - offset >= FRAME_HEADER_BYTES &&
      STREAM_TYPES.has(output[offset]) &&
      output.readUIntBE(offset + 1, 3) === 0;
    // A container with a TTY logs raw text without frames.
    if (!framed) return Buffer.concat([...payloads, output.subarray(offset)]).toString("utf8");
    const length = output.readUInt32BE(offset + 4);
    payloads.push(output.subarray(offset + FRAME_HEADER_BYTES, offset + FRAME_HEADER_BYTES + length));
    offset += FRAME_HEADER_BYTES + length;
  }
  return Buffer.concat(payloads).toString("utf8");
}

/**
 * The thread that hashes upload parts for SigV4 (see async-sha256.ts). Parts live in SharedArrayBuffers,
 * so this thread reads the very bytes the HTTP request will send: nothing is copied either way.
 */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

export interface HashRequest {
  id: number;
  buffer: SharedArrayBuffer;
  offset: number;
  length: number;
}

export interface HashReply {
  id: number;
  digest?: Uint8Array;
  error?: string;
}

parentPort?.on('message', (m: HashRequest) => {
  let reply: HashReply;
  try {
    reply = { id: m.id, digest: createHash('sha256').update(new Uint8Array(m.buffer, m.offset, m.length)).digest() };
  } catch (e) {
    reply = { id: m.id, error: (e as Error).message };
  }
  parentPort!.postMessage(reply);
});

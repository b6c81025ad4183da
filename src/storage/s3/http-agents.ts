import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';

/**
 * The S3 client's HTTP agents: Node's, except that every socket keeps a no-op 'error' listener for its
 * whole life.
 *
 * Without it a store that answers an error before it has read a request's body, then resets the
 * connection, crashes the process. It happened with Swift answering 507 (full disk) to UploadPart, and
 * test/storage/s3-error-mid-body.test.ts reproduces it. In Node's HTTP client (node 20's _http_client.js
 * and _http_outgoing.js):
 * 1. the whole 507 response arrives while the body is still being written; keep-alive, so the client
 *    waits for the request to finish before handing the socket back to the agent;
 * 2. the RST fails the body's pending write, and the write's callback emits the request's 'finish'
 *    anyway (only a flag that the socket's error listener has not set yet would stop it);
 * 3. 'finish' hands the socket back (responseKeepAlive), which removes the client's socket 'error'
 *    listener, and the agent destroys the socket since it is no longer writable;
 * 4. the ECONNRESET/EPIPE from step 2, emitted on the next tick, finds no listener: an uncaught exception.
 * (Node marks that gap with a TODO in responseKeepAlive; nodejs/node#27916 is the same family.)
 *
 * Ignoring the error loses nothing. A socket that is not attached to a request any more is being
 * destroyed, and its request has already settled with the server's answer, which the SDK reports as the
 * operation's error (StoreUnavailable here). While a request owns the socket, Node's own listener still
 * runs beside this one and turns socket errors into that request's error, as before.
 */
export function s3HttpAgents(options: http.AgentOptions): { httpAgent: http.Agent; httpsAgent: https.Agent } {
  return { httpAgent: new S3HttpAgent(options), httpsAgent: new S3HttpsAgent(options) };
}

class S3HttpAgent extends http.Agent {
  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    return keepErrorListener(super.createConnection(options, callback));
  }
}

class S3HttpsAgent extends https.Agent {
  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    return keepErrorListener(super.createConnection(options, callback));
  }
}

function keepErrorListener(socket: Duplex | null | undefined): Duplex | null | undefined {
  socket?.on('error', ignoreDetachedSocketError);
  return socket;
}

function ignoreDetachedSocketError(): void {
  // See s3HttpAgents: a request that owns the socket gets the error through Node's own listener.
}

/** Audit events of an SFTP session, for the observability layer (one JSON line per event). */
import type { OpenFlags, SetAttributes } from '../../vfs/types.js';

interface Outcome {
  ok: boolean;
  /** The status message sent to the client when `ok` is false; for an aborted CLOSE, why it was aborted. */
  error?: string;
}

export type SftpEvent =
  | ({ type: 'OPEN'; path: string; mode: 'read' | 'write'; flags: OpenFlags } & Outcome)
  | ({
    type: 'CLOSE';
    path: string;
    mode: 'read' | 'write';
    /** Bytes written through this handle: the client's uploads, and copy-data into it. */
    bytesIn: number;
    /** Bytes read from this handle: sent to the client, or copied by copy-data. */
    bytesOut: number;
    durationMs: number;
    /**
       * True when the upload was aborted instead of completed (the session ended, or a write or copy-data
       * failed); `ok` then says whether the abort itself succeeded (in keep-partial mode the vfs keeps what
       * arrived).
       */
    aborted: boolean;
  } & Outcome)
  | ({ type: 'DELETE' | 'MKDIR' | 'RMDIR'; path: string } & Outcome)
  | ({ type: 'RENAME'; path: string; newPath: string; overwrite: boolean } & Outcome)
  | ({ type: 'SETSTAT'; path: string; attrs: SetAttributes } & Outcome)
  /** A failed transfer request (READ/WRITE) or a protocol violation that ended the session. */
  | { type: 'ERROR'; operation: string; path?: string; message: string };

export type SftpEventType = SftpEvent['type'];

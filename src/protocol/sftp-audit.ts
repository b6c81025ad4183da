import { audit } from '../observability/audit.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { SftpEvent } from './sftp/events.js';

/** Turns one SFTP session event into the managed service's activity line and the transfer metrics. */
export function auditSftpEvent(logger: Logger, metrics: GatewayMetrics, event: SftpEvent): void {
  switch (event.type) {
    case 'OPEN':
      audit(logger, event.ok ? 'OPEN' : 'ERROR', {
        path: event.path,
        mode: event.flags ? modeOf(event.flags) : event.mode,
        operation: event.ok ? undefined : 'OPEN',
        message: event.error,
      });
      return;
    case 'CLOSE': {
      const partial = event.aborted && event.ok;
      audit(logger, !event.ok ? 'ERROR' : partial ? 'PARTIAL_CLOSE' : 'CLOSE', {
        path: event.path,
        mode: event.mode,
        'bytes-in': event.bytesIn,
        'bytes-out': event.bytesOut,
        'duration-ms': Math.round(event.durationMs),
        operation: event.ok ? undefined : 'CLOSE',
        message:
          event.error ?? (event.aborted ? 'upload discarded: the session ended before CLOSE' : undefined),
      });
      const direction = event.mode === 'write' ? 'in' : 'out';
      metrics.transfer({
        direction,
        bytes: direction === 'in' ? event.bytesIn : event.bytesOut,
        seconds: event.durationMs / 1000,
        result: !event.ok || event.aborted ? 'error' : 'ok',
      });
      return;
    }
    case 'DELETE':
    case 'MKDIR':
    case 'RMDIR':
      audit(logger, event.ok ? event.type : 'ERROR', {
        path: event.path,
        operation: event.type,
        message: event.error,
      });
      return;
    case 'RENAME':
      audit(logger, event.ok ? 'RENAME' : 'ERROR', {
        path: event.path,
        'new-path': event.newPath,
        operation: 'RENAME',
        message: event.error,
      });
      return;
    case 'SETSTAT':
      audit(logger, event.ok ? 'SETSTAT' : 'ERROR', {
        path: event.path,
        attributes: Object.keys(event.attrs).join(','),
        operation: 'SETSTAT',
        message: event.error,
      });
      return;
    case 'ERROR':
      audit(logger, 'ERROR', { path: event.path, operation: event.operation, message: event.message });
      return;
  }
}

function modeOf(flags: {
  read: boolean;
  write: boolean;
  create: boolean;
  truncate: boolean;
  append: boolean;
}): string {
  const parts = (['read', 'write', 'create', 'truncate', 'append'] as const).filter((f) => flags[f]);
  return parts.join('|').toUpperCase();
}

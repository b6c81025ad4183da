export type { SftpEvent, SftpEventType } from './events.js';
export {
  DEFAULT_MAX_PENDING_WRITE_BYTES,
  type SftpSession,
  type SftpSessionOptions,
  startSftpSession,
} from './session.js';
export { type SftpStatus, toStatus } from './status.js';

/**
 * Small uploads of the local store, committed with synchronous system calls on the event loop.
 *
 * Through libuv's thread pool a small upload is five round trips (open, write, fstat, close, rename),
 * each costing the event loop 35-45 µs of CPU on the bench VM to submit, wake a pool thread and settle
 * its promise: a quarter of the gateway's CPU in 1,000 small puts. The same five calls made directly
 * cost ~100 µs in all on a local disk, where they touch only the page cache (~260 µs on the bench VM's
 * ext4 without a journal, whose inode allocator scans past recently freed inodes). A worker thread doing
 * them in one job was tried and was slower end to end: its messages cost as much as the round trips saved.
 *
 * A blocking call is only safe where the disk answers at once, so the store makes these calls only
 * on local file systems (`isLocalFileSystem`) and stops for a while after one is slow (local-store.ts).
 */
import { closeSync, fstatSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';

/** The temp file's fstat, taken before close: what the object's ETag is made of. */
export interface CommittedStat {
  size: number;
  ino: number;
  mtimeMs: number;
}

export type CommitResult =
  | { stat: CommittedStat; placeError?: undefined }
  /**
   * Written, but not moved to its key (ENOENT when folders are missing, EEXIST, EISDIR...): the temp
   * file is still there, and the caller finishes or maps the error as for any upload.
   */
  | { stat: CommittedStat; placeError: NodeJS.ErrnoException };

/**
 * Writes `chunks` to a new temp file and moves it to `file` (with `exclusive`, only if nothing is there).
 * Throws if the temp file cannot be written, after removing what this call created.
 */
export function commitSmallUpload(temp: string, file: string, exclusive: boolean, chunks: Uint8Array[]): CommitResult {
  let stat: CommittedStat;
  const fd = openSync(temp, 'wx');
  let open = true;
  try {
    let offset = 0;
    for (const chunk of chunks) {
      for (let done = 0; done < chunk.length;) done += writeSync(fd, chunk, done, chunk.length - done, offset + done);
      offset += chunk.length;
    }
    const st = fstatSync(fd);
    stat = { size: st.size, ino: st.ino, mtimeMs: st.mtimeMs };
    // Closed once only, even if close fails: the number may already belong to another file.
    open = false;
    closeSync(fd);
  } catch (e) {
    if (open) closeQuietly(fd);
    unlinkQuietly(temp);
    throw e;
  }
  try {
    if (exclusive) {
      // link() fails if the target exists, which makes the check and the publish one atomic step.
      linkSync(temp, file);
      // Published: a temp name left behind is swept at the next start, not an error of this upload.
      unlinkQuietly(temp);
    } else {
      renameSync(temp, file);
    }
  } catch (e) {
    return { stat, placeError: e as NodeJS.ErrnoException };
  }
  return { stat };
}

/** f_type magic numbers (statfs(2)) of file systems on local block devices or in memory. */
const LOCAL_FILE_SYSTEMS = new Set([
  0xef53, // ext2, ext3, ext4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x01021994, // tmpfs
  0x858458f6, // ramfs
  0x794c7630, // overlayfs (a container's writable layer)
  0x2fc12fc1, // zfs
  0xf2f52010, // f2fs
]);

/** False for network and FUSE file systems (NFS, SMB, s3fs...), where one call can wait on a server. */
export function isLocalFileSystem(type: number | bigint): boolean {
  return LOCAL_FILE_SYSTEMS.has(Number(type));
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // The commit already failed; its error is the one to report.
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Nothing to remove.
  }
}

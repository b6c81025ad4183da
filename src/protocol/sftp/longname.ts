/**
 * The `longname` of NAME entries, which clients such as the OpenSSH `ls -l` and WinSCP display verbatim.
 * It copies the managed service's output, itself OpenSSH's ls_file() format:
 *   drwxr--r--   1 -        -               0 Jan 23 08:05 input
 *   -rw-r--r--   1 -        -            1234 Mar  1  2024 file.txt
 * Times are UTC: replicas behind a load balancer must agree whatever their local time zone.
 */
import type { FileStat } from '../../vfs/types.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** ls and OpenSSH call "recent" anything within half a year either side of now. */
const SIX_MONTHS_MS = ((365 * 24 * 60 * 60) / 2) * 1000;

export function formatLongname(name: string, stat: FileStat, now: Date = new Date()): string {
  const size = String(stat.size).padStart(8);
  return `${modeString(stat)}   1 -        -        ${size} ${formatTime(stat.mtime, now)} ${name}`;
}

/** `drwxr-xr-x` style: type letter then rwx triplets (setuid/setgid/sticky are never reported). */
export function modeString(stat: Pick<FileStat, 'type' | 'permissions'>): string {
  // Listings format thousands of entries with a handful of modes: each string is built once.
  const id = (stat.type === 'directory' ? 0x10000 : 0) | (stat.permissions & 0o777);
  let out = MODE_STRINGS.get(id);
  if (out === undefined) MODE_STRINGS.set(id, (out = buildModeString(stat)));
  return out;
}

const MODE_STRINGS = new Map<number, string>();

function buildModeString(stat: Pick<FileStat, 'type' | 'permissions'>): string {
  let out = stat.type === 'directory' ? 'd' : '-';
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (stat.permissions >> shift) & 7;
    out += (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-');
  }
  return out;
}

/** `Jan 23 08:05` when recent, `Mar  1  2024` otherwise (strftime "%b %e %H:%M" / "%b %e  %Y"). */
export function formatTime(mtime: Date, now: Date): string {
  const t = mtime.getTime();
  if (Number.isNaN(t)) return 'Jan  1  1970';
  const day = String(mtime.getUTCDate()).padStart(2);
  const month = MONTHS[mtime.getUTCMonth()]!;
  const recent = Math.abs(now.getTime() - t) <= SIX_MONTHS_MS;
  if (recent) {
    const hh = String(mtime.getUTCHours()).padStart(2, '0');
    const mm = String(mtime.getUTCMinutes()).padStart(2, '0');
    return `${month} ${day} ${hh}:${mm}`;
  }
  return `${month} ${day}  ${mtime.getUTCFullYear()}`;
}

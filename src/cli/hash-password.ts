/**
 * `sftp-s3-gateway hash-password`: reads a password (one line on stdin; not echoed on a terminal) and
 * prints the argon2id hash to put in a user's PasswordHash.
 */
import { hashPassword } from '../auth/passwords.js';

export async function runHashPassword(
  input: NodeJS.ReadStream,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  if (input.isTTY) err.write('Password: ');
  const password = await readLine(input);
  if (input.isTTY) err.write('\n');
  if (!password) {
    err.write('no password given\n');
    return 2;
  }
  out.write(`${await hashPassword(password)}\n`);
  return 0;
}

function readLine(input: NodeJS.ReadStream): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const raw = input.isTTY;
    if (raw) input.setRawMode(true);
    const done = () => {
      if (raw) input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      resolve(data.replace(/\r?\n[\s\S]*$/, ''));
    };
    const onData = (chunk: Buffer) => {
      const s = chunk.toString('utf8');
      if (raw && s === '\u0003') process.exit(130);
      data += s;
      if (/[\r\n]/.test(data)) done();
    };
    input.on('data', onData);
    input.once('end', done);
  });
}

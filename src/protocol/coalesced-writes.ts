import type net from 'node:net';

/**
 * Gathers the writes made to `socket` in one turn of the event loop into one system call.
 *
 * ssh2 hands every SSH packet to socket.write() on its own, and a write to an idle socket goes to the
 * kernel at once: a download made two write system calls per 32 KiB READ reply (the reply is 13 bytes
 * longer than the client's 32 KiB maximum packet, so it takes a second, tiny packet), and those writes
 * were a fifth of the gateway's busy time on a warm S3 get. Here the first write of a turn corks the
 * socket and the turn's end (process.nextTick, after the synchronous work and its promise jobs)
 * uncorks it: Node then passes everything written meanwhile to one writev. Nothing waits longer than the
 * turn that wrote it, and the SSH window still bounds what a channel may have in flight.
 */
export function coalesceWrites(socket: net.Socket): void {
  const write = socket.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: net.Socket, ...args: unknown[]) {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as net.Socket['write'];
}

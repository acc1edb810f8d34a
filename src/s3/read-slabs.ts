/**
 * Reused memory for the bytes of answer bodies on plain-TCP connections (lean-http.ts).
 *
 * Left to itself, node:net gives every read a fresh buffer: a 64 MiB object read is a thousand new
 * 64 KiB ArrayBuffers, each faulted in by the kernel and each collected by V8, whose external-memory
 * accounting starts a full collection every few dozen MiB. Measured on this project's W2 bench, that was
 * about a third of the copy's CPU. Here every plain-TCP connection reads into one shared buffer (the
 * event loop runs one read callback at a time, and each copies its bytes out before it returns), and body
 * bytes are copied into slabs that come back once every view handed out of them was written to the
 * destination's socket.
 *
 * A view comes back only through `recycle`, which only the request-body writer calls, for a view it wrote
 * whole and whose write completed. A view kept by anyone else (a small object read whole, a view cut in
 * two at a part boundary, a body dropped on an error) never comes back, so its slab is never reused: it
 * is left to the garbage collector like any buffer. Reuse is thus only ever of memory nobody holds.
 */

interface Slab {
  readonly bytes: Buffer;
  /** Bytes of `bytes` handed out so far. */
  used: number;
  /** Views handed out and not recycled yet. */
  out: number;
}

export class ReadSlabs {
  /** Where every plain-TCP connection's reads land; consumed (copied) inside each read's callback. */
  readonly readBuffer: Buffer;
  private readonly free: Slab[] = [];
  private current: Slab | undefined;
  private readonly handedOut = new WeakMap<Buffer, Slab>();

  constructor(
    /** Bytes a read takes at most, and the size of a slab. */
    readonly readSize = 256 * 1024,
    /** Idle slabs kept for reuse at most; beyond, recycled slabs are left to the garbage collector. */
    readonly keep = 32,
  ) {
    this.readBuffer = Buffer.allocUnsafeSlow(readSize);
  }

  /** A copy of the read buffer's first `length` bytes in a slab; `recycle` may take it back later. */
  take(length: number): Buffer {
    let slab = this.current;
    if (slab === undefined || slab.used + length > slab.bytes.length) {
      if (slab !== undefined) this.seal(slab);
      slab = this.free.pop() ?? { bytes: Buffer.allocUnsafeSlow(this.readSize), used: 0, out: 0 };
      this.current = slab;
    }
    const view = slab.bytes.subarray(slab.used, slab.used + length);
    this.readBuffer.copy(view, 0, 0, length);
    slab.used += length;
    slab.out += 1;
    this.handedOut.set(view, slab);
    return view;
  }

  /** Whether `view` is a slab's view handed out by `take` and not recycled yet. */
  owns(view: Buffer): boolean {
    return this.handedOut.has(view);
  }

  /** Gives back a view of `take` that its last holder is done with (its write completed). */
  recycle(view: Buffer): void {
    const slab = this.handedOut.get(view);
    if (slab === undefined) return;
    this.handedOut.delete(view);
    slab.out -= 1;
    if (slab !== this.current && slab.out === 0) this.reuse(slab);
  }

  /** Idle slabs kept (for tests and the bench's curiosity). */
  get idle(): number {
    return this.free.length;
  }

  /** The current slab is full: it is reused once its views are all back. */
  private seal(slab: Slab): void {
    this.current = undefined;
    if (slab.out === 0) this.reuse(slab);
  }

  private reuse(slab: Slab): void {
    if (this.free.length >= this.keep) return;
    slab.used = 0;
    this.free.push(slab);
  }
}

/** The process's slabs: a body read on the source's connections is written on the destination's. */
export const readSlabs = new ReadSlabs();

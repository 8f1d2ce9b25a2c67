// Pooled socket reads and writes: plug an ObjectPool into net.Socket's
// `onread` option so that every read lands in a pooled Buffer, return
// written buffers to the pool once the write has completed, and pipe two
// pooled sockets into each other (a TCP proxy) with bounded memory.
import net = require('node:net');
import { Duplex } from 'node:stream';
import { ObjectPool, onCloseHook } from './pool';
import { checkInteger, codes, invalidType, invalidValue, poolError } from './errors';
import { waitlist } from './waitlist';

/** What to do when a read needs a buffer and the pool is empty. */
export type WhenEmpty = 'pause' | 'allocate';

export interface PooledReadOptions {
  /**
   * Called with each chunk read: a view (`subarray(0, nread)`) of a pooled
   * Buffer, or of a fresh Buffer with `whenEmpty: 'allocate'`. Call `done()`
   * once when finished with the bytes (right away, or after an async write
   * or a parse that keeps them); it returns the buffer to the pool. If
   * onData throws, the buffer goes back to the pool at once (a later
   * `done()` does nothing: do not keep the bytes) and the socket is
   * destroyed with the error, which its 'error' listeners receive.
   */
  onData(chunk: Buffer, done: () => void): void;
  /**
   * 'pause' (default): stop reading until an object comes back
   * (back-pressure). A read that lands in the pool's scratch buffer (see
   * PooledReader) while the pool is empty is handed over in a Buffer of its
   * own, and reading then pauses too: one such chunk per pause at most.
   * 'allocate': read into a fresh Buffer instead, and keep reading.
   */
  whenEmpty?: WhenEmpty;
}

/** What a pooled reader hands each chunk to (see PooledReadOptions.onData). */
export type OnData = (chunk: Buffer, done: () => void) => void;

/** The `onread` option of net.connect / new net.Socket, as the helpers build it. */
export interface OnRead {
  buffer: () => Uint8Array;
  callback: (nread: number, buf: Uint8Array) => boolean;
}

// What a user callback threw, as an Error for socket.destroy().
function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

// Close notices. A reader must notice a closed pool without waiting for its
// next byte: it gives back the object it keeps for that read and destroys its
// socket with the pool's ERR_OBJPOOL_CLOSED error. The pool tells this thread
// of a close by any thread (onCloseHook: at once for a close here, through
// the binding's close notice for one elsewhere); a pop that throws tells it
// too. One hook per pool, held while the pool has live readers here.
interface CloseWatch {
  readonly fns: Set<(err: Error) => void>;
  unhook: (() => void) | null;
}
const closeWatches = new WeakMap<ObjectPool, CloseWatch>();

/** Calls `fn` once, on this thread, when `pool` is found closed (by any thread). Returns an unsubscribe function. */
function onPoolClose(pool: ObjectPool, fn: (err: Error) => void): () => void {
  let watch = closeWatches.get(pool);
  if (!watch) closeWatches.set(pool, (watch = { fns: new Set(), unhook: null }));
  const w = watch;
  w.fns.add(fn);
  w.unhook ??= pool[onCloseHook](() => poolClosed(pool));
  return () => {
    w.fns.delete(fn);
    if (w.fns.size === 0 && w.unhook) {
      w.unhook();
      w.unhook = null;
    }
  };
}

/** Tells everything watching `pool` in this thread that it is closed. */
function poolClosed(pool: ObjectPool): void {
  const w = closeWatches.get(pool);
  if (!w || w.fns.size === 0) return;
  w.unhook?.();
  w.unhook = null;
  const fns = [...w.fns];
  w.fns.clear();
  const err = closedError(pool);
  for (const fn of fns) fn(err);
}

// The error a pop on the closed pool throws.
function closedError(pool: ObjectPool): Error {
  try {
    const h = pool.pop();
    if (h >= 0) pool.push(h);
  } catch (err) {
    return err as Error;
  }
  return poolError(codes.CLOSED, 'The pool is closed');
}

// One scratch buffer per pool (per thread) that idle sockets read into: Node
// wants the buffer for a socket's next read before there is anything to
// read, and an idle socket must not pin an object for it. Reads are
// synchronous (the bytes are in the callback when it runs), so one buffer
// serves every socket of the pool; what lands in it is copied into an object
// at once. Never handed to the user.
const parking = new WeakMap<ObjectPool, Buffer>();

// Objects kept for a next read after a short read (the socket may well stay
// idle), per pool in this thread, and their cap: an eighth of the pool. A
// busy socket mostly reads without a copy; idle ones never pin more.
interface Keeps {
  held: number;
  readonly cap: number;
}
const keeps = new WeakMap<ObjectPool, Keeps>();

// The reader of each socket made by the helpers (or attached by hand), for pipe().
const readers = new WeakMap<net.Socket, PooledReader>();

/**
 * Reads of one socket into pooled buffers. Build one per socket, pass
 * `reader.onread` in the socket's options, then `reader.attach(socket)`.
 * The helpers `connect`, `createSocket` and `adopt` do all three. Without
 * options the reader has no consumer yet: its socket reads nothing until
 * `pipe()` gives it one.
 *
 * Between reads a socket keeps an object for its next read after a read
 * that filled one (more bytes are waiting), and after a short read only
 * while the pool's sockets in this thread keep fewer than capacity/8 objects
 * that way; otherwise (and before its first read) its next read lands in the
 * pool's scratch buffer and is copied into an object. So idle connections
 * never pin more than an eighth of the pool (plus one object per socket
 * whose last read happened to fill one exactly), and a busy socket reads
 * without copies.
 *
 * Limitations: only sockets with an `onread` option are read this way;
 * tls.TLSSocket has none, so TLS reads are not pooled (writePooled works on
 * any socket). When the pool is empty as bytes land in the scratch buffer,
 * those bytes (one read, at most objectSize) reach onData in a Buffer of
 * their own (counted by `unpooled`) and, in 'pause' mode, reading stops
 * until an object comes back.
 */
export class PooledReader {
  readonly pool: ObjectPool;
  readonly onread: OnRead;
  #socket: net.Socket | null = null;
  #next: Buffer | null = null;      // the buffer Node reads into next (an object, the scratch buffer, or a fresh one)
  #nextHandle = -1;                 // its handle when it is an object
  #reserved = -1;                   // an object set aside for the next read, which lands in the scratch buffer
  #starved = false;                 // the pool's pause: waiting for an object
  #starvedIdle = false;             // ... after a short read: none is set aside when it comes
  #userPaused = false;              // the application's socket.pause(), which wins
  #held = false;                    // a pipe's back-pressure: the destination is full
  #early: Buffer[] = [];            // bytes read before onData could have them
  #earlyEnd = false;                // the peer's end, read before this reader existed
  #pauses = 0;
  #unpooled = 0;
  #kept = false;                    // #next is kept after a short read (counted in #keeps)
  readonly #keeps: Keeps;
  #unwatch: (() => void) | null = null;
  #onData: OnData | null = null;
  readonly #allocate: boolean;
  readonly #parking: Buffer;
  #pauseSocket = (): void => {};
  #resumeSocket = (): void => {};

  constructor(pool: ObjectPool, options?: PooledReadOptions) {
    if (!(pool instanceof ObjectPool)) throw invalidType('pool', 'an instance of ObjectPool', pool);
    let when: unknown = 'pause';
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') throw invalidType('options', 'of type object', options);
      if (typeof options.onData !== 'function') throw invalidType('options.onData', 'of type function', options.onData);
      when = options.whenEmpty ?? 'pause';
      if (when !== 'pause' && when !== 'allocate') throw invalidValue('options.whenEmpty', "must be 'pause' or 'allocate'", when);
      this.#onData = options.onData;
    }
    this.pool = pool;
    this.#allocate = when === 'allocate';
    let park = parking.get(pool);
    if (!park) parking.set(pool, (park = Buffer.allocUnsafe(pool.objectSize)));
    this.#parking = park;
    let k = keeps.get(pool);
    if (!k) keeps.set(pool, (k = { held: 0, cap: Math.floor(pool.capacity / 8) }));
    this.#keeps = k;
    this.onread = { buffer: () => (this.#next ??= this.#parking), callback: (nread, buf) => this.#onRead(nread, buf) };
  }

  /** How many times reading paused because the pool was empty. */
  get pauses(): number {
    return this.#pauses;
  }

  /** How many chunks reached onData in a Buffer of their own because the pool was empty. */
  get unpooled(): number {
    return this.#unpooled;
  }

  /**
   * Binds the socket this reader serves (needed to pause and resume it). The
   * socket's own pause() and resume() stay the application's: a socket the
   * application paused stays paused when the pool has objects again.
   */
  attach(socket: net.Socket): net.Socket {
    this.#socket = socket;
    readers.set(socket, this);
    // A socket whose peer's end was read before it was wrapped must not ask
    // its handle for more (libuv refuses to read after EOF): its pauses are
    // the stream's only.
    const { pause, resume }: { pause: (this: net.Socket) => unknown; resume: (this: net.Socket) => unknown } = this.#earlyEnd ? Duplex.prototype : socket;
    this.#pauseSocket = () => void pause.call(socket);
    this.#resumeSocket = () => void resume.call(socket);
    socket.pause = () => {
      this.#setUserPaused(true);
      return socket;
    };
    socket.resume = () => {
      this.#setUserPaused(false);
      return socket;
    };
    socket.once('close', () => this.#dispose());
    this.#unwatch ??= onPoolClose(this.pool, (err) => {
      if (!socket.destroyed) socket.destroy(err);
    });
    if (this.#blocked()) this.#pauseSocket();
    this.#flushEarly();
    return socket;
  }

  /** @internal Whether the reader has a consumer (onData). */
  get consumed(): boolean {
    return this.#onData !== null;
  }

  /** @internal Gives a reader without a consumer its onData; its socket starts reading. */
  consume(onData: OnData): void {
    this.#onData = onData;
    this.#flushEarly();
    this.#holdChanged();
  }

  /** @internal A pipe's back-pressure: on, the socket reads nothing (and pins no object) until off. */
  hold(on: boolean): void {
    if (this.#held === on) return;
    this.#held = on;
    this.#holdChanged();
  }

  /**
   * @internal Bytes (and perhaps the peer's end) read before this reader
   * existed: they reach onData first, before any read of its own. Call
   * before attach().
   */
  early(chunks: readonly Buffer[], ended: boolean): void {
    this.#early.push(...chunks);
    this.#earlyEnd = ended;
  }

  // Hands the early bytes to onData on the next tick: before any read of
  // this reader (those come from the event loop) and after the code that
  // made the socket has it.
  #flushEarly(): void {
    if ((this.#early.length === 0 && !this.#earlyEnd) || !this.#onData || !this.#socket) return;
    process.nextTick(() => {
      const socket = this.#socket!;
      const size = this.pool.objectSize;
      try {
        for (let chunk; this.#onData && !socket.destroyed && (chunk = this.#early.shift()); ) {
          for (let at = 0; at < chunk.length; at += size) this.#onData(chunk.subarray(at, at + size), () => {});
        }
      } catch (error) {
        socket.destroy(asError(error)); // as for a pooled read (see #onRead); these bytes hold no object
        return;
      }
      if (this.#earlyEnd && this.#early.length === 0 && !socket.destroyed) {
        this.#earlyEnd = false;
        // As Node's own read path does on EOF.
        socket.push(null);
        socket.read(0);
      }
    });
  }

  #blocked(): boolean {
    return this.#userPaused || this.#held || this.#onData === null;
  }

  /**
   * @internal Resumes a socket that waits for an object once one can be
   * set aside for it: `h` if given (the caller's object, now this reader's),
   * else one popped now. False: the pool is empty, keep waiting.
   */
  tryResume(h = -1): boolean {
    const socket = this.#socket;
    if (!this.#starved || this.#blocked() || !socket || socket.destroyed) {
      if (h >= 0) this.#return(h);
      return true;
    }
    if (h < 0) h = this.#pop();
    if (h < 0) return socket.destroyed; // empty: keep waiting; closed: the socket is gone
    this.#starved = false;
    // After a short read no byte is known to be waiting: an object set aside
    // could sit idle, so it goes back and the next read lands in the scratch
    // buffer as usual.
    if (this.#starvedIdle) this.#return(h);
    else this.#reserved = h;
    this.#resumeSocket();
    return true;
  }

  #setUserPaused(on: boolean): void {
    this.#userPaused = on;
    this.#holdChanged();
  }

  // Pauses or resumes the socket after a change of the application's pause,
  // the pipe's hold or the consumer.
  #holdChanged(): void {
    if (this.#blocked()) {
      // No object waits for a socket that will not read.
      waitlist(this.pool).delete(this);
      if (this.#reserved >= 0) {
        this.#return(this.#reserved);
        this.#reserved = -1;
        this.#starved = true;
        this.#starvedIdle = false;
        waitlist(this.pool).serve();
      }
      this.#pauseSocket();
    } else if (!this.#starved) {
      this.#resumeSocket();
    } else if (!this.tryResume()) {
      waitlist(this.pool).add(this); // resumes once an object comes back
    }
  }

  // pop(), except that a closed pool ends the socket (with the pool's
  // ERR_OBJPOOL_CLOSED error) instead of throwing into Node's read path.
  #pop(): number {
    try {
      return this.pool.pop();
    } catch (err) {
      this.#socket?.destroy(err as Error);
      poolClosed(this.pool); // and the pool's other sockets in this thread
      return -1;
    }
  }

  #onRead(nread: number, buf: Uint8Array): boolean {
    this.#unkeep();
    if (this.#starved) {
      // Something restarted the socket while it waited (a socket.read()):
      // take the read, and decide again below.
      this.#starved = false;
      waitlist(this.pool).delete(this);
    }
    const pool = this.pool;
    let handle = this.#nextHandle;
    let chunk = buf as Buffer;
    let dry = false; // the pool was empty as these bytes came
    if (buf === this.#parking) {
      // Copy it into the object set aside for it, or one popped now.
      handle = this.#reserved;
      this.#reserved = -1;
      if (handle < 0) handle = this.#pop();
      if (handle >= 0) {
        chunk = pool.buffer(handle);
      } else {
        chunk = Buffer.allocUnsafe(nread);
        this.#unpooled++;
        dry = true;
      }
      this.#parking.copy(chunk, 0, 0, nread);
    } else if (handle < 0) {
      this.#unpooled++; // a fresh Buffer ('allocate')
    }
    this.#next = this.#parking;
    this.#nextHandle = -1;
    // Nobody to hand it to yet (something made the socket read before a
    // pipe gave it a consumer): keep a copy for the consumer.
    const onData = this.#onData ?? ((c: Buffer, done: () => void) => void (this.#early.push(Buffer.from(c)), done()));
    const done = () => {
      if (handle < 0) return;
      const h = handle;
      handle = -1;
      pool.push(h);
      waitlist(pool).serve();
    };
    // A full read is the object's own cached view; a short one a view of it.
    try {
      onData(nread === chunk.length ? chunk : chunk.subarray(0, nread), done);
    } catch (error) {
      // The chunk's object goes back now (a later done() does nothing), and
      // the socket is destroyed with the error: it reaches the socket's
      // 'error' listeners instead of escaping into Node's read path.
      done();
      this.#socket?.destroy(asError(error));
      return false;
    }
    // The buffer for the next read (Node asks for it right after this
    // callback), chosen only now: a done() inside onData may have returned
    // the very object it needs, and a wake-up cannot restart this socket
    // while Node is still in its read callback.
    const socket = this.#socket;
    // Paused during onData (the socket has stopped already): no object waits
    // for its next read.
    if (socket?.destroyed || this.#blocked()) return false;
    // A short read drained the socket: the next read, whenever it comes,
    // lands in the scratch buffer, unless an object may be kept for it.
    const short = nread < pool.objectSize;
    const keep = !short || this.#keeps.held < this.#keeps.cap;
    if (!keep && !dry) return true;
    const h = this.#pop();
    if (h >= 0) {
      if (!keep) {
        this.#return(h); // the pool has objects again: that was all we asked
        return true;
      }
      this.#next = pool.buffer(h);
      this.#nextHandle = h;
      if (short) {
        this.#kept = true;
        this.#keeps.held++;
      }
      return true;
    }
    if (socket?.destroyed) return false;
    if (this.#allocate) {
      if (!short) this.#next = Buffer.allocUnsafe(pool.objectSize);
      return true;
    }
    if (short && !dry) return true;
    // 'pause': stop until an object comes back. More bytes are waiting (a
    // full read), or the pool was dry already: reading on would hand every
    // chunk over unpooled.
    this.#starved = true;
    this.#starvedIdle = short;
    this.#pauses++;
    waitlist(pool).add(this);
    return false;
  }

  // Pushes an object back; after close() it is released instead (or was
  // already, when close() found it in the pool).
  #return(h: number): void {
    try {
      this.pool.push(h);
    } catch {
      // closed and already released by close()
    }
  }

  #unkeep(): void {
    if (!this.#kept) return;
    this.#kept = false;
    this.#keeps.held--;
  }

  #dispose(): void {
    this.#unkeep();
    this.#unwatch?.();
    this.#unwatch = null;
    const list = waitlist(this.pool);
    list.delete(this);
    const back = [this.#reserved, this.#nextHandle].filter((h) => h >= 0);
    this.#next = this.#parking;
    this.#reserved = this.#nextHandle = -1;
    for (const h of back) this.#return(h);
    list.serve();
  }
}

// Omit over each member of a union (NetConnectOpts is TCP | IPC options).
type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type SocketOptions = Omit<net.SocketConstructorOpts, 'onread'>;
type ConnectOptions = OmitEach<net.NetConnectOpts, 'onread'>;

/** net.connect() whose reads land in pooled buffers. Without `read`, it reads nothing until `pipe()` gives it a consumer. */
export function connect(pool: ObjectPool, options: ConnectOptions, read?: PooledReadOptions, onConnect?: () => void): net.Socket {
  const reader = new PooledReader(pool, read);
  return reader.attach(net.connect({ ...options, onread: reader.onread } as net.NetConnectOpts, onConnect));
}

/** new net.Socket() whose reads land in pooled buffers. Without `read`, it reads nothing until `pipe()` gives it a consumer. */
export function createSocket(pool: ObjectPool, options: SocketOptions, read?: PooledReadOptions): net.Socket {
  const reader = new PooledReader(pool, read);
  return reader.attach(new net.Socket({ ...options, onread: reader.onread } as net.SocketConstructorOpts));
}

/**
 * A server's socket whose reads land in pooled buffers. Create the server
 * with `pauseOnConnect: true` and call this first thing in the 'connection'
 * listener; use the socket it returns instead of the one you were given
 * (net.Server has no onread option, so the connection is re-wrapped). A
 * socket that was paused after it had started reading works too: the bytes
 * it had already read reach onData first (in Buffers of their own, each at
 * most `objectSize` long; their done() does nothing), then the pooled reads.
 * Without `read`, the socket reads nothing until `pipe()` gives it a consumer.
 */
export function adopt(pool: ObjectPool, accepted: net.Socket, read?: PooledReadOptions): net.Socket {
  const handle = (accepted as unknown as { _handle: unknown })._handle;
  if (!handle) throw invalidValue('accepted', 'must be a connected socket', accepted);
  if (!accepted.isPaused()) throw invalidValue('accepted', 'must be paused: create the server with pauseOnConnect: true', accepted);
  const reader = new PooledReader(pool, read);
  const old = accepted as unknown as { _handle: unknown; _server: unknown; server: unknown };
  old._handle = null;
  // What the old socket read before it was paused (with the handle gone,
  // read() cannot start another read on it), and whether that included the
  // peer's end.
  const early: Buffer[] = [];
  for (let b: Buffer | string | null; (b = accepted.read() as Buffer | string | null) !== null; ) early.push(typeof b === 'string' ? Buffer.from(b) : b);
  const ended = (accepted as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended === true;
  reader.early(early, ended);
  const socket = new net.Socket({
    handle, readable: true, writable: true, allowHalfOpen: accepted.allowHalfOpen,
    readableHighWaterMark: accepted.readableHighWaterMark, writableHighWaterMark: accepted.writableHighWaterMark,
    onread: reader.onread,
  } as net.SocketConstructorOpts);
  // Hand the server's connection bookkeeping over, so that server.close()
  // still waits for this connection and no other.
  Object.assign(socket, { _server: old._server, server: old.server });
  old._server = null;
  return reader.attach(socket);
}

/**
 * Writes a pooled buffer (or a view of one, such as a chunk from onData) and
 * returns it to the pool only once the write has completed or failed (the
 * socket destroyed): `done` is called then. Returns socket.write()'s value.
 * Works on any net.Socket, tls.TLSSocket included.
 */
export function writePooled(socket: net.Socket, chunk: Uint8Array, done: (err?: Error | null) => void): boolean {
  if (!(socket instanceof net.Socket)) throw invalidType('socket', 'an instance of net.Socket', socket);
  if (!(chunk instanceof Uint8Array)) throw invalidType('chunk', 'an instance of Buffer or Uint8Array', chunk);
  if (typeof done !== 'function') throw invalidType('done', 'of type function', done);
  let called = false;
  return socket.write(chunk, (err) => {
    if (called) return;
    called = true;
    done(err);
  });
}

/** Options of pipe(). */
export interface PipeOptions {
  /**
   * Bytes a destination may hold unwritten (its writableLength) before its
   * source stops reading, until the destination's 'drain'. At least the
   * destination's writableHighWaterMark; default: two objects of the
   * source's pool.
   */
  highWaterMark?: number;
}

/** A running pipe(): its counters, and a way to tear it down. */
export interface PooledPipe {
  /** Bytes read from `a` and handed to `b`'s write so far. */
  readonly bytesAToB: number;
  /** Bytes read from `b` and handed to `a`'s write so far. */
  readonly bytesBToA: number;
  /** Tears both sockets down; `err`, if given, is what the callback gets. Every buffer still goes back. */
  destroy(err?: Error): void;
}

/** Called once both sockets of a pipe() have closed and every buffer is back in its pool. */
export type PipeCallback = (err: Error | null) => void;

/**
 * Pipes two pooled sockets into each other, both ways: a TCP proxy whose
 * every chunk is read into a pooled buffer, written to the other socket
 * with writePooled() and returned to its pool once that write completes.
 * `a` and `b` must come from connect(), createSocket() or adopt() called
 * without read options (they read nothing until now); each may use its own
 * pool.
 *
 * - Back-pressure end to end: while a destination holds `highWaterMark`
 *   bytes or more unwritten, its source reads nothing (and keeps no object)
 *   until the destination's 'drain'. A slow reader on one side slows the
 *   writer on the other; no queue grows without bound.
 * - Half-close passes through: the end of one side's input ends the other
 *   side's output once what was read before it is written (both sockets
 *   are made allowHalfOpen).
 * - An error on either side, or a socket closed before both of its
 *   directions ended, tears both down: a reset (ECONNRESET) is passed on
 *   as a reset, anything else as a plain close. Every buffer goes back.
 * - `callback(err)` runs once both sockets have closed and every buffer is
 *   back: `err` is the first error either socket had, or null.
 *
 * Limitations: TLS sockets cannot be piped this way (tls.TLSSocket has no
 * onread option, so its reads are not pooled); the pool's capacity bounds
 * the connections that can move data at the same moment (others wait for
 * an object, first come first served).
 */
export function pipe(a: net.Socket, b: net.Socket, callback?: PipeCallback): PooledPipe;
export function pipe(a: net.Socket, b: net.Socket, options: PipeOptions, callback?: PipeCallback): PooledPipe;
export function pipe(a: net.Socket, b: net.Socket, options?: PipeOptions | PipeCallback, callback?: PipeCallback): PooledPipe {
  if (typeof options === 'function') {
    callback = options;
    options = undefined;
  }
  const ra = unconsumed('a', a);
  const rb = unconsumed('b', b);
  if (a === b) throw invalidValue('b', 'must be another socket than a', b);
  if (options !== undefined && (options === null || typeof options !== 'object')) throw invalidType('options', 'of type object', options);
  const hwm = options?.highWaterMark;
  if (hwm !== undefined) checkInteger('options.highWaterMark', hwm, 0, Number.MAX_SAFE_INTEGER);
  if (callback !== undefined && typeof callback !== 'function') throw invalidType('callback', 'of type function', callback);
  return new Pipe(a, ra, b, rb, hwm, callback);
}

function unconsumed(name: string, socket: net.Socket): PooledReader {
  const reader = socket instanceof net.Socket ? readers.get(socket) : undefined;
  if (!reader) throw invalidValue(name, 'must be a socket from connect(), createSocket() or adopt()', socket);
  if (reader.consumed) throw invalidValue(name, 'must have been made without read options (it already has an onData)', socket);
  if (socket.destroyed) throw invalidValue(name, 'must not be destroyed', socket);
  return reader;
}

class Pipe implements PooledPipe {
  bytesAToB = 0;
  bytesBToA = 0;
  readonly #a: net.Socket;
  readonly #b: net.Socket;
  readonly #callback: PipeCallback | undefined;
  #error: Error | null = null;
  #open = 2;          // sockets not closed yet
  #writing = 0;       // chunks handed to a write that has not completed
  #finished = false;

  constructor(a: net.Socket, ra: PooledReader, b: net.Socket, rb: PooledReader, hwm: number | undefined, callback: PipeCallback | undefined) {
    this.#a = a;
    this.#b = b;
    this.#callback = callback;
    a.allowHalfOpen = b.allowHalfOpen = true;
    this.#direction(a, ra, b, hwm, (n) => (this.bytesAToB += n));
    this.#direction(b, rb, a, hwm, (n) => (this.bytesBToA += n));
  }

  destroy(err?: Error): void {
    if (err && !this.#error) this.#error = err;
    const reset = (err as NodeJS.ErrnoException | undefined)?.code === 'ECONNRESET';
    for (const s of [this.#a, this.#b]) {
      if (s.destroyed) continue;
      // Not after end(): a reset then fails (EINVAL) and leaves the socket open.
      if (reset && !s.writableEnded && typeof s.resetAndDestroy === 'function') {
        try {
          s.resetAndDestroy();
          continue;
        } catch {
          // not a TCP socket: a plain close below
        }
      }
      s.destroy();
    }
  }

  // One way: what `src` reads is written to `dst`.
  #direction(src: net.Socket, reader: PooledReader, dst: net.Socket, hwm: number | undefined, count: (n: number) => void): void {
    const limit = Math.max(dst.writableHighWaterMark, hwm ?? 2 * reader.pool.objectSize);
    let held = false;
    const drained = () => {
      held = false;
      reader.hold(false);
    };
    src.on('end', () => {
      if (!dst.destroyed) dst.end();
    });
    src.on('error', (err) => this.destroy(err));
    src.on('close', () => {
      this.#open--;
      if (!(src.readableEnded && src.writableFinished)) this.destroy();
      this.#settle();
    });
    reader.consume((chunk, done) => {
      if (dst.destroyed || dst.writableEnded) return done(); // torn down: nowhere to go
      this.#writing++;
      count(chunk.length);
      const ok = writePooled(dst, chunk, () => {
        this.#writing--;
        done();
        this.#settle();
      });
      // Full: stop reading the source (it keeps no object meanwhile) until
      // the destination has written everything (limit >= its high-water
      // mark, so write() said false and 'drain' will come).
      if (!ok && !held && dst.writableLength >= limit) {
        held = true;
        reader.hold(true);
        dst.once('drain', drained);
      }
    });
  }

  #settle(): void {
    if (this.#finished || this.#open > 0 || this.#writing > 0) return;
    this.#finished = true;
    const callback = this.#callback;
    if (callback) process.nextTick(callback, this.#error);
  }
}

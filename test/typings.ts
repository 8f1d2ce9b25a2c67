// Compiles, or the published typings are wrong. Never run.
import { ObjectPool, codes, net, type PoolDescriptor, type PoolStats, type ReleaseInfo, type ErrorCode, type PooledReadOptions, type Lease, type LeakReport, type WaitOptions, type PipeOptions, type PooledPipe } from 'objpool';
import nodeNet = require('node:net');
import { collectPoolMetrics, type PoolMetrics } from 'objpool/metrics';
import { channels, type CreatedEvent, HandleChannel, type ChannelDescriptor, type ChannelOptions } from 'objpool';
import { PoolSet, PoolSetChannel, type PoolSetOptions, type PoolSetStats, type PoolSetDescriptor, type PoolSetChannelDescriptor, type ProcessPoolSetDescriptor, type ProcessPoolSetChannelDescriptor, type SizeClass, type Fallback } from 'objpool';
import promClient = require('prom-client');

const pool = new ObjectPool({ capacity: 8, objectSize: 64, align: 16, slots: 2, checked: true, init: (obj: Buffer, h: number) => obj.fill(h) });
const h: number = pool.pop();
pool.push(h);
const out = new Uint32Array(4);
const n: number = pool.popMany(out, 4);
pool.pushMany(out, n);
const buf: Buffer = pool.buffer(0);
const maybe: Buffer | null = pool.acquire();
if (maybe) pool.release(maybe);
const s: PoolStats = pool.stats();
const d: PoolDescriptor = pool.descriptor;
const other: ObjectPool = ObjectPool.attach(d);
const fromMem = ObjectPool.fromBuffer(new SharedArrayBuffer(1024), { objectSize: 64 });
const fromObjs = ObjectPool.fromBuffers([Buffer.alloc(8), new Uint8Array(8)], { slots: 1, checked: false });
const done: Promise<void> = pool.close((obj: Buffer, info: ReleaseInfo) => { void obj; void info.handle; void info.user; void info.element; });
const code: ErrorCode = codes.DOUBLE_PUSH;
const props: [number, number, number, number, boolean] = [pool.capacity, pool.objectSize, pool.stride, pool.slots, pool.closed];
const read: PooledReadOptions = { onData: (chunk: Buffer, release: () => void) => { void chunk; release(); }, whenEmpty: 'pause' };
const reader = new net.PooledReader(pool, read);
const sock: nodeNet.Socket = reader.attach(nodeNet.connect({ port: 1, onread: reader.onread }));
const client: nodeNet.Socket = net.connect(pool, { port: 1 }, read);
const wrote: boolean = net.writePooled(client, buf, (err?: Error | null) => void err);
const pauses: number = reader.pauses;
const cached = new ObjectPool({ capacity: 64, objectSize: 8, cache: 8, zero: true, leaks: { sample: 1 / 64, onLeak: (r: LeakReport) => void [r.handle, r.heldMs, r.stack] } });
const attached: ObjectPool = ObjectPool.attach(cached.descriptor, { cache: 0, leaks: {} });
const counts: [number, number] = [cached.stats().cached, cached.stats().waiting];
const wait: WaitOptions = { signal: AbortSignal.timeout(10), timeout: 5 };
const waited: Promise<number> = cached.popAsync(wait);
const acquired: Promise<Buffer> = cached.acquireAsync();
const lease: Lease | null = cached.lease();
if (lease) { const lh: number = lease.handle; const lb: Buffer = lease.buffer; lease.release(); void [lh, lb]; }
function scoped(): void {
  using held = cached.lease();
  if (held) held.buffer.fill(0);
}
async function disposed(): Promise<void> {
  await using p = new ObjectPool({ capacity: 2, objectSize: 8 });
  p.push(p.pop());
}
const a2: nodeNet.Socket = net.connect(pool, { port: 1 });
const b2: nodeNet.Socket = net.createSocket(pool, {});
const piped: PooledPipe = net.pipe(a2, b2, { highWaterMark: 1 << 20 } as PipeOptions, (err: Error | null) => void err);
const moved: number = piped.bytesAToB + piped.bytesBToA;
piped.destroy();
void moved;
const named = new ObjectPool({ capacity: 2, objectSize: 8, name: 'rx' });
const name: string | null = named.name;
const dname: string | null = named.descriptor.name;
const figures: number[] = [s.exhausted, s.waits, s.waitTimeouts, s.waitAborts, s.waitSeconds, s.leaks, s.released];
const metrics: PoolMetrics = collectPoolMetrics({ register: new promClient.Registry(), pools: [named], prefix: 'app_' });
const names: readonly string[] = metrics.names;
metrics.unregister();
const channel: string = channels.exhausted;
const onCreated = (m: CreatedEvent): boolean => m.attached && m.pool.capacity > 0 && m.name !== '';
const hc: HandleChannel = named.channel({ capacity: 8 });
const cd: ChannelDescriptor = hc.descriptor;
const hc2: HandleChannel = HandleChannel.attach(cd, named);
const sentOne: boolean = hc.send(named.pop());
const sentMany: number = hc.sendMany(new Uint32Array(2), 1);
const gotOne: number = hc2.receive();
const gotMany: number = hc2.receiveMany(new Uint32Array(2));
const gotAsync: Promise<number> = hc.receiveAsync({ timeout: 10, signal: AbortSignal.timeout(5) });
const chanFigures: [number, number, boolean] = [hc.capacity, hc.size, hc.closed];
async function drainChannel(c: HandleChannel): Promise<number> { let n = 0; for await (const h of c) n += h; c.close(); return n; }
const chanOpts: ChannelOptions = { capacity: 4 };
void [buf, s, other, fromMem, fromObjs, done, code, props, sock, wrote, pauses, attached, counts, waited, acquired, scoped, disposed, name, dname, figures, names, channel, onCreated,
  sentOne, sentMany, gotOne, gotMany, gotAsync, chanFigures, drainChannel, chanOpts];
// @ts-expect-error send takes a handle (a number)
hc.send('1');
// @ts-expect-error capacity is required
new ObjectPool({ objectSize: 8 });
// @ts-expect-error fromBuffer takes no capacity
ObjectPool.fromBuffer(new ArrayBuffer(8), { objectSize: 8, capacity: 1 });

// PoolSet: several sizes.
const set: PoolSet = new PoolSet({ classes: [{ objectSize: 512, capacity: 8 }, { objectSize: 4096, capacity: 4 }], fallback: 'larger', zero: true, cache: 2 });
const gen: PoolSet = new PoolSet({ min: 256, max: 65536, bytes: 1 << 20, name: 'sizes' });
const setBuf: Buffer | null = set.acquire(300);
if (setBuf) set.release(setBuf);
const setH: number = set.pop(100);
set.push(setH);
const setView: Buffer = set.buffer(set.pop(1));
const setClass: { class: number; handle: number } = set.classOf(set.pop(1));
const setAsync: Promise<Buffer> = set.acquireAsync(10, { timeout: 5 });
const setLease: Lease | null = set.lease(10);
const setStats: PoolSetStats = set.stats();
const perClass: number = setStats.classes[0]!.objectSize;
const setD: PoolSetDescriptor = set.descriptor;
const setAgain: PoolSet = PoolSet.attach(setD, { cache: 0 });
const classPool: ObjectPool = set.poolFor(4096);
const setCh: PoolSetChannel = set.channel({ capacity: 8 });
const setChD: PoolSetChannelDescriptor = setCh.descriptor;
const setCh2: PoolSetChannel = PoolSetChannel.attach(setChD, setAgain);
const setGot: Promise<number> = setCh2.receiveAsync({ timeout: 5 });
const sizesOf: readonly number[] = set.sizes;
const fb: Fallback = set.fallback;
const sc: SizeClass = { objectSize: 1, capacity: 1 };
const pso: PoolSetOptions = { classes: [sc] };
// A process-shared set: plain JSON descriptors (null for a thread set).
const pset: PoolSet = new PoolSet({ classes: [sc], processShared: true });
const psetD: ProcessPoolSetDescriptor | null = pset.processDescriptor;
const psetView: PoolSet = PoolSet.attachProcess(psetD!, { cache: 0 });
const psetAny: PoolSet = PoolSet.attach(psetD!);
const psetChD: ProcessPoolSetChannelDescriptor | null = pset.channel().processDescriptor;
const psetCh: PoolSetChannel = PoolSetChannel.attachProcess(psetChD!, psetView);
const isProc: boolean = pset.processShared;
void [gen, setView, setClass, setAsync, setLease, perClass, classPool, setCh.send(1), setGot, sizesOf, fb, pso, set.close(), psetAny, psetCh, isProc];
// @ts-expect-error acquire takes a size
set.acquire();

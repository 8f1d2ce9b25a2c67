// objpool/metrics: Prometheus metrics of pools through prom-client (an
// optional peer dependency, loaded only here).
//
//   const client = require('prom-client');
//   require('objpool/metrics').collectPoolMetrics({ register: client.register });
//
// Every scrape reads each pool's stats() (a walk of its free lists: cheap,
// off the pop/push path). Counters come from the pool's shared metadata, so
// they count what every thread did; gauges are the pool's state now.
import { ObjectPool, metaOf } from './pool';
import { native } from './native';
import { codes, invalidType, poolError } from './errors';

type PromClient = typeof import('prom-client');

function promClient(): PromClient {
  try {
    return require('prom-client') as PromClient;
  } catch (err) {
    if ((err as { code?: string }).code !== 'MODULE_NOT_FOUND') throw err;
    throw poolError(codes.NO_PROM_CLIENT, 'objpool/metrics needs prom-client: npm install prom-client');
  }
}

// The pools made or attached in this thread and still alive, whenever they
// were made (before this module loaded too), in the order they were made:
// the default set a collector reports. The addon holds each weakly.
function livePools(): ObjectPool[] {
  return native.views().filter((v): v is ObjectPool => v instanceof ObjectPool);
}

export interface PoolMetricsOptions {
  /** The prom-client registry to register with; default prom-client's global `register`. */
  register?: import('prom-client').Registry;
  /** Report these pools only; default: every pool made or attached in this thread since objpool/metrics was loaded. */
  pools?: readonly ObjectPool[];
  /** Prefix of every metric name; default 'objpool_'. */
  prefix?: string;
}

export interface PoolMetrics {
  /** The metric names registered, with the prefix. */
  readonly names: readonly string[];
  /** Removes the metrics from the registry. */
  unregister(): void;
}

type StatKey = keyof ReturnType<ObjectPool['stats']>;
// [name, type, help, stats() field]
const METRICS: readonly [string, 'gauge' | 'counter', string, StatKey][] = [
  ['capacity', 'gauge', 'Objects in the pool, in use or not.', 'capacity'],
  ['available', 'gauge', 'Objects in the pool now, every thread\'s cache included.', 'available'],
  ['in_use', 'gauge', 'Objects out of the pool now (in some thread\'s hands).', 'inUse'],
  ['cached', 'gauge', 'Objects held in the per-thread caches now.', 'cached'],
  ['waiting', 'gauge', 'Pending popAsync()/acquireAsync() calls now, in every thread.', 'waiting'],
  ['exhausted_total', 'counter', 'Pops that found the pool empty.', 'exhausted'],
  ['waits_total', 'counter', 'popAsync()/acquireAsync() calls that had to wait.', 'waits'],
  ['wait_timeouts_total', 'counter', 'Waits that gave up on their timeout.', 'waitTimeouts'],
  ['wait_aborts_total', 'counter', 'Waits that gave up on their abort signal.', 'waitAborts'],
  ['wait_seconds_total', 'counter', 'Time spent in waits that have ended, in seconds.', 'waitSeconds'],
  ['leaks_total', 'counter', 'Objects reported leaked (leak detection).', 'leaks'],
  ['released_total', 'counter', 'Objects released by close().', 'released'],
  ['recovered_total', 'counter', 'Objects taken back from processes that died (process-shared pools).', 'recovered'],
];

/**
 * Registers gauges and counters for pools with a prom-client registry, each
 * labelled `pool` by the pool's name (`unnamed-N` for a pool without one;
 * pools that share a name are summed). Instances of one pool in this thread
 * are counted once.
 */
export function collectPoolMetrics(options: PoolMetricsOptions = {}): PoolMetrics {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'of type object', options);
  const client = promClient();
  const register = options.register ?? client.register;
  const prefix = options.prefix ?? 'objpool_';
  if (typeof prefix !== 'string') throw invalidType('options.prefix', 'of type string', prefix);
  const given = options.pools === undefined ? null : [...options.pools];
  if (given !== null && !given.every((p) => p instanceof ObjectPool)) throw invalidType('options.pools', 'an array of ObjectPool', options.pools);

  // Labels of pools without a name, by pool (its metadata), in the order first seen.
  // By metadata (or a process-shared pool's token: a few bytes a pool, kept).
  const unnamed = new WeakMap<SharedArrayBuffer, string>();
  const unnamedProcess = new Map<string, string>();
  let nextUnnamed = 0;
  // One scrape's view, each pool once with its label and stats: every
  // metric's collect() of one scrape reads the same one (a registry calls
  // them all synchronously, one after the other, as a scrape starts; the
  // next microtask forgets it).
  let snapshot: { label: string; stats: ReturnType<ObjectPool['stats']> }[] | null = null;
  const rows = () => {
    if (snapshot !== null) return snapshot;
    const byMeta = new Map<SharedArrayBuffer | string, ObjectPool>();
    for (const pool of given ?? livePools()) if (!byMeta.has(pool[metaOf])) byMeta.set(pool[metaOf], pool);
    snapshot = [...byMeta].map(([meta, pool]) => {
      let label = pool.name;
      if (label === null) {
        label = (typeof meta === 'string' ? unnamedProcess.get(meta) : unnamed.get(meta)) ?? `unnamed-${++nextUnnamed}`;
        if (typeof meta === 'string') unnamedProcess.set(meta, label);
        else unnamed.set(meta, label);
      }
      return { label, stats: pool.stats() };
    });
    queueMicrotask(() => { snapshot = null; });
    return snapshot;
  };

  const metrics = METRICS.map(([suffix, type, help, field]) => {
    const config = {
      name: prefix + suffix, help, labelNames: ['pool'] as const, registers: [register],
      collect(this: { reset(): void; inc(labels: { pool: string }, v: number): void }) {
        this.reset();
        for (const { label, stats } of rows()) this.inc({ pool: label }, stats[field] as number);
      },
    };
    return type === 'gauge' ? new client.Gauge(config) : new client.Counter(config);
  });
  return {
    names: metrics.map((_, i) => prefix + METRICS[i]![0]),
    unregister() {
      for (const [suffix] of METRICS) register.removeSingleMetric(prefix + suffix);
    },
  };
}

/**
 * objpool: a scalable lock-free pool of fixed-size objects for Node.js,
 * shareable across worker threads. See README.md.
 */
export { ObjectPool } from './pool';
export type { PoolOptions, ViewOptions, PoolDescriptor, PoolStats, ReleaseInfo, ReleaseCallback, WaitOptions, Lease } from './pool';
export type { LeakOptions, LeakReport } from './leaks';
export { codes } from './errors';
export type { ErrorCode, ObjectPoolError } from './errors';
export * as net from './net';
export type { PooledReadOptions, WhenEmpty, OnRead } from './net';
